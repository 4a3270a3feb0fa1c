"""TempoSource over real HTTP.

Parsing is checked against the answers recorded from a real Tempo 3.1 (tests/fixtures/tempo/),
served by a tiny 127.0.0.1 replay server; behaviour that needs live data (hostile names, guard mode,
batching, tenants, partial results, hangs) against TempoServer loaded with the recorded spans.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from canary.samples import Backend, BackendErrorKind, Pair, Target, TraceSample, Workload
from canary.sources import traceql
from canary.sources.tempo import TempoSettings, TempoSource
from canary_testkit.tempo import Fault, Span, SpanStatus, TempoServer, parse, recorded_spans

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tempo"
"""Answers recorded from a real Tempo 3.1, copied into the repository (see its README.md)."""
START, END = 1795561920, 1795562280
"""The window of every recorded metrics and search request."""
AFTER_RECORDING = 1795562325.0
"""When the recorded queries ran: more than 30 s after END."""
TARGET = Target(
    key="shop/checkout-canary",
    service="checkout",
    canary=Workload(namespace="shop", deployment="checkout-canary"),
    baseline=(Workload(namespace="shop", deployment="checkout"),),
    window=END - START,
)
HOSTILE = 'nonexistent" || resource.k8s.deployment.name != "'


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def at(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


# --- replay server ----------------------------------------------------------------------------------


@dataclass
class Route:
    """Answer GETs of `path` (and, when `errors` is set, only error-span queries or only the others)
    with a recorded fixture, optionally transformed; `raw` replaces the body altogether."""

    path: str
    fixture: str
    errors: bool | None = None
    transform: Callable[[Any], Any] | None = None
    raw: bytes | None = None


@dataclass
class Replay:
    routes: list[Route]
    received: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def answer(self, raw_path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        parts = urlsplit(raw_path)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.received.append((parts.path, params, headers))
        for route in self.routes:
            if route.path != parts.path:
                continue
            if route.errors is not None and route.errors != ("status = error" in params.get("q", "")):
                continue
            recorded = fixture(route.fixture)
            expected = {k: v for k, v in recorded["request"]["params"].items() if k in ("start", "end", "step")}
            sent = {k: params.get(k) for k in expected}
            if sent != expected:
                return 404, "text/plain", f"replay: {route.fixture} was recorded for {expected}, got {sent}".encode()
            if route.raw is not None:
                return recorded["status"], recorded["response_content_type"], route.raw
            body = route.transform(copy.deepcopy(recorded["body"])) if route.transform else recorded["body"]
            payload = body if isinstance(body, str) else json.dumps(body)
            return recorded["status"], recorded["response_content_type"], payload.encode()
        return 404, "text/plain", f"replay: no route for {parts.path}".encode()


@pytest.fixture
def replay() -> Iterator[Callable[..., tuple[Replay, str]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(*routes: Route) -> tuple[Replay, str]:
        state = Replay(list(routes))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = state.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return state, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def source(url: str, clock: float = AFTER_RECORDING, **settings: Any) -> TempoSource:
    return TempoSource(TempoSettings(url=url, **settings), clock=lambda: clock)


INSTANT = "/api/metrics/query"
ALL_RATES = Route(INSTANT, "query_instant_rate_by_deployment.json", errors=False)
ERROR_RATES = Route(INSTANT, "query_instant_error_rate_by_deployment.json", errors=True)
EMPTY = "span.kind_attr_query_instant_rate_by_deployment_EMPTY.json"


# --- parsing the recorded answers -----------------------------------------------------------------


def test_error_rates_from_recorded_answers(replay: Callable[..., tuple[Replay, str]]) -> None:
    state, url = replay(ALL_RATES, ERROR_RATES)
    result = source(url, tenant="single-tenant", bearer_token="s3cret").fetch_trace_errors([TARGET], at(END))
    assert result.error is None
    pair = result.values[TARGET.key]
    assert pair.canary is not None and pair.baseline is not None
    assert (pair.canary.spans, pair.canary.error_spans) == (100, 20)
    assert (pair.baseline.spans, pair.baseline.error_spans) == (400, 4)
    assert pair.canary.error_rate == pytest.approx(0.20)
    assert pair.baseline.error_rate == pytest.approx(0.01)
    queries = [params["q"] for path, params, _ in state.received]
    assert [path for path, _, _ in state.received] == [INSTANT, INSTANT]
    assert [q.count("status = error") for q in queries] == [0, 1]
    for q in queries:
        assert "kind = server" in q and "span.kind" not in q
        assert q.endswith("| rate() by (resource.k8s.deployment.name)")
        assert 'resource.k8s.deployment.name = "checkout-canary"' in q
    assert [r.query for r in result.queries] == queries and all(r.backend is Backend.TEMPO for r in result.queries)
    headers = state.received[0][2]
    assert headers["x-scope-orgid"] == "single-tenant" and headers["authorization"] == "Bearer s3cret"


def test_a_missing_error_series_is_zero_errors(replay: Callable[..., tuple[Replay, str]]) -> None:
    _, url = replay(ALL_RATES, Route(INSTANT, EMPTY, errors=True))
    pair = source(url).fetch_trace_errors([TARGET], at(END)).values[TARGET.key]
    assert pair == Pair(canary=TraceSample(spans=100, error_spans=0), baseline=TraceSample(spans=400, error_spans=0))


def test_a_missing_value_is_zero(replay: Callable[..., tuple[Replay, str]]) -> None:
    def omit_stable_value(body: dict[str, Any]) -> dict[str, Any]:
        del body["series"][0]["value"]  # how Tempo writes a 0
        return body

    _, url = replay(ALL_RATES, Route(INSTANT, ERROR_RATES.fixture, errors=True, transform=omit_stable_value))
    pair = source(url).fetch_trace_errors([TARGET], at(END)).values[TARGET.key]
    assert pair.baseline == TraceSample(spans=400, error_spans=0)
    assert pair.canary == TraceSample(spans=100, error_spans=20)


def test_an_instant_answer_without_series_is_no_data(replay: Callable[..., tuple[Replay, str]]) -> None:
    _, url = replay(Route(INSTANT, EMPTY))
    result = source(url).fetch_trace_errors([TARGET], at(END))
    assert result.error is None
    assert result.values == {TARGET.key: Pair(canary=None, baseline=None)}


def test_http_400_quotes_tempos_message(replay: Callable[..., tuple[Replay, str]]) -> None:
    _, url = replay(ALL_RATES, Route(INSTANT, "error_query_instant_syntax_error.json", errors=True))
    result = source(url).fetch_trace_errors([TARGET], at(END))
    error = result.error
    assert error is not None and result.values == {}
    assert (error.backend, error.kind) == (Backend.TEMPO, BackendErrorKind.HTTP)
    assert "HTTP 400: compiling query: parse error at line 1, col 53: syntax error: unexpected $end" in error.reason
    assert error.query == traceql.rate_query([TARGET], errors=True)
    assert [r.error for r in result.queries] == [None, error]


def test_incomplete_jobs_are_an_error_not_a_rate(replay: Callable[..., tuple[Replay, str]]) -> None:
    def one_of_three_jobs(body: dict[str, Any]) -> dict[str, Any]:
        body["metrics"].update(completedJobs=1, totalJobs=3)
        return body

    _, url = replay(ALL_RATES, Route(INSTANT, ERROR_RATES.fixture, errors=True, transform=one_of_three_jobs))
    error = source(url).fetch_trace_errors([TARGET], at(END)).error
    assert error is not None and error.kind is BackendErrorKind.LIMIT
    assert "incomplete result: 1 of 3 jobs completed" in error.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"series": [{"labels": [', "answer is not JSON"),
        (b"<html>502 Bad Gateway</html>", "answer is not JSON"),
        (
            b'{"series": [{"labels": [], "value": "lots"}]}',
            "unexpected answer shape at series[0].value: Input should be a valid number",
        ),
        (b'{"series": [{"labels": [], "value": "NaN"}]}', "series[0] {} value is nan"),
        (b'{"series": [{"labels": [{"key": "k"}], "value": -1}]}', "series[0] {'k': None} value is -1.0"),
    ],
)
def test_garbage_answers_are_malformed(replay: Callable[..., tuple[Replay, str]], body: bytes, reason: str) -> None:
    _, url = replay(Route(INSTANT, ALL_RATES.fixture, raw=body))
    error = source(url).fetch_trace_errors([TARGET], at(END)).error
    assert error is not None and error.kind is BackendErrorKind.MALFORMED
    assert reason in error.reason and "GET /api/metrics/query" in error.reason


def test_example_failing_traces_newest_first(replay: Callable[..., tuple[Replay, str]]) -> None:
    state, url = replay(Route("/api/search", "search_canary_errors.json"))
    ids, error = source(url).example_failing_traces(TARGET, at(END))
    recorded = sorted(
        fixture("search_canary_errors.json")["body"]["traces"], key=lambda t: -int(t["startTimeUnixNano"])
    )
    assert error is None
    assert ids == [t["traceID"].rjust(32, "0") for t in recorded[:5]]
    _, params, _ = state.received[0]
    assert params["q"] == (
        '{ resource.service.name = "checkout" && resource.k8s.namespace.name = "shop" && '
        'resource.k8s.deployment.name = "checkout-canary" && kind = server && status = error }'
    )
    assert (params["start"], params["end"]) == (str(START), str(END))


def test_trace_ids_are_left_padded_to_32_hex_digits(replay: Callable[..., tuple[Replay, str]]) -> None:
    _, url = replay(Route("/api/search", "search_by_span_id_trace_with_leading_zeros.json"))
    ids, error = source(url).example_failing_traces(TARGET, at(END))
    assert (ids, error) == (["00ad4b20d0bc6bb38dde843f3a59c1dd"], None)
    assert ids[0] in {s["traceId"] for s in fixture("ingested_spans.json")["spans"]}


def test_search_that_stopped_early_still_gives_examples(replay: Callable[..., tuple[Replay, str]]) -> None:
    _, url = replay(Route("/api/search", "search_canary_errors_limit3_spss1.json"))
    ids, error = source(url).example_failing_traces(TARGET, at(END))
    starts = {
        t["traceID"].rjust(32, "0"): int(t["startTimeUnixNano"])
        for t in fixture("search_canary_errors.json")["body"]["traces"]
    }
    assert error is None and len(ids) == 3
    assert [starts[i] for i in ids] == sorted((starts[i] for i in ids), reverse=True)


def test_search_errors(replay: Callable[..., tuple[Replay, str]]) -> None:
    _, url = replay(Route("/api/search", "error_search_syntax_error.json"))
    ids, error = source(url).example_failing_traces(TARGET, at(END))
    assert ids == [] and error is not None and error.kind is BackendErrorKind.HTTP
    assert "invalid TraceQL query: parse error at line 1, col 41: syntax error: unexpected }" in error.reason

    _, url = replay(
        Route("/api/search", "search_canary_errors.json", transform=lambda b: {"traces": [{"traceID": "zz"}]})
    )
    ids, error = source(url).example_failing_traces(TARGET, at(END))
    assert ids == [] and error is not None and error.kind is BackendErrorKind.MALFORMED
    assert "traceID 'zz' is not 1 to 32 hex digits" in error.reason


def test_window_moves_back_before_the_end_cutoff(replay: Callable[..., tuple[Replay, str]]) -> None:
    """Asked to end 20 s ago, the source asks Tempo for the same length ending 30 s ago (the replay
    refuses any other window)."""
    state, url = replay(ALL_RATES, ERROR_RATES)
    result = source(url, clock=END + 30).fetch_trace_errors([TARGET], at(END + 10))
    assert result.error is None and result.values[TARGET.key].canary == TraceSample(spans=100, error_spans=20)
    assert {(p["start"], p["end"]) for _, p, _ in state.received} == {(str(START), str(END))}


# --- against TempoServer loaded with the recorded spans ---------------------------------------------


@pytest.fixture(scope="module")
def tempo() -> Iterator[TempoServer]:
    with TempoServer(clock=lambda: AFTER_RECORDING) as server:
        server.add_spans(recorded_spans(fixture("ingested_spans.json")))
        yield server


def test_same_rates_from_the_simulator(tempo: TempoServer) -> None:
    pair = source(tempo.url).fetch_trace_errors([TARGET], at(END)).values[TARGET.key]
    assert pair == Pair(canary=TraceSample(spans=100, error_spans=20), baseline=TraceSample(spans=400, error_spans=4))


def test_a_hostile_name_cannot_widen_the_query(tempo: TempoServer) -> None:
    hostile = Target(
        key="shop/hostile",
        service="checkout",
        canary=Workload(namespace="shop", deployment=HOSTILE),
        baseline=(Workload(namespace="shop", deployment="checkout"),),
        window=END - START,
    )
    result = source(tempo.url).fetch_trace_errors([hostile], at(END))
    assert result.error is None
    assert result.values[hostile.key] == Pair(canary=None, baseline=TraceSample(spans=400, error_spans=4))
    recorded_escaped = fixture("injection_value_escaped_error_rate.json")["request"]["params"]["q"]
    assert f"resource.k8s.deployment.name = {traceql.quote(HOSTILE)}" in recorded_escaped
    ids, error = source(tempo.url).example_failing_traces(hostile, at(END))
    assert (ids, error) == ([], None)


def test_targets_with_different_windows_get_one_query_pair_each(tempo: TempoServer) -> None:
    short = TARGET.model_copy(update={"key": "shop/checkout-canary-2m", "window": 120.0})
    before = len(tempo.requests())
    result = source(tempo.url).fetch_trace_errors([TARGET, short], at(END))
    sent = tempo.requests()[before:]
    assert result.error is None
    assert (
        sorted((r.params["start"], r.params["end"]) for r in sent)
        == [(str(END - 360), str(END))] * 2 + [(str(END - 120), str(END))] * 2
    )
    recorded = fixture("ingested_spans.json")["spans"]
    for deployment, sample in (
        ("checkout-canary", result.values[short.key].canary),
        ("checkout", result.values[short.key].baseline),
    ):
        mine = [s for s in recorded if s["deployment"] == deployment and END - 120 < s["start_ns"] / 1e9 <= END]
        assert sample == TraceSample(spans=len(mine), error_spans=sum(s["error"] for s in mine))


@pytest.mark.parametrize("name", ['we"ird', "back\\slash", "new\nline", "tab\tand\u0001control", "ünïcode ✓"])
def test_odd_names_get_exactly_their_own_spans(name: str) -> None:
    spans = [
        Span(
            trace_id=f"{i + 1:032x}",
            span_id=f"{i + 1:016x}",
            start_ns=(START + 10 + i) * 10**9,
            end_ns=(START + 10 + i) * 10**9 + 5 * 10**7,
            service="checkout",
            namespace="shop",
            deployment=deployment,
            status=SpanStatus.ERROR if i % 4 == 0 else SpanStatus.OK,
        )
        for i, deployment in enumerate([name] * 8 + ["checkout"] * 3)
    ]
    target = Target(
        key="odd",
        service="checkout",
        canary=Workload(namespace="shop", deployment=name),
        baseline=(Workload(namespace="shop", deployment="checkout"),),
        window=END - START,
    )
    with TempoServer(clock=lambda: AFTER_RECORDING) as server:
        server.add_spans(spans)
        pair = source(server.url).fetch_trace_errors([target], at(END)).values["odd"]
        ids, _ = source(server.url).example_failing_traces(target, at(END))
    assert pair == Pair(canary=TraceSample(spans=8, error_spans=2), baseline=TraceSample(spans=3, error_spans=1))
    assert ids == [f"{5:032x}", f"{1:032x}"]
    assert parse(traceql.failing_spans_query(target)).filter is not None


def test_one_query_pair_for_all_targets_in_both_modes() -> None:
    """Canary mode (two Deployments) and guard mode (ReplicaSets of one Deployment), two namespaces."""
    layout = [
        ("shop", "checkout", "checkout-5b6c", 200, 2),
        ("shop", "checkout-canary", "checkout-canary-77aa", 50, 10),
        ("pay", "ledger", "ledger-old", 120, 0),
        ("pay", "ledger", "ledger-new", 40, 8),
    ]
    spans, index = [], 0
    for namespace, deployment, replicaset, total, errors in layout:
        for n in range(total):
            index += 1
            spans.append(
                Span(
                    trace_id=f"{index:032x}",
                    span_id=f"{index:016x}",
                    start_ns=START * 10**9 + index * 10**7,
                    end_ns=START * 10**9 + index * 10**7 + 10**6,
                    service="checkout" if namespace == "shop" else "ledger",
                    namespace=namespace,
                    deployment=deployment,
                    replicaset=replicaset,
                    status=SpanStatus.ERROR if n < errors else SpanStatus.OK,
                )
            )
    canary_mode = TARGET
    guard_mode = Target(
        key="pay/ledger",
        service="ledger",
        canary=Workload(namespace="pay", deployment="ledger", replicaset="ledger-new"),
        baseline=(Workload(namespace="pay", deployment="ledger", replicaset="ledger-old"),),
        window=END - START,
    )
    with TempoServer(clock=lambda: AFTER_RECORDING) as server:
        server.add_spans(spans)
        result = source(server.url).fetch_trace_errors([canary_mode, guard_mode], at(END))
        requests = [r for r in server.requests() if r.path == INSTANT]
    assert result.error is None and len(requests) == 2
    assert result.values[canary_mode.key] == Pair(
        canary=TraceSample(spans=50, error_spans=10), baseline=TraceSample(spans=200, error_spans=2)
    )
    assert result.values[guard_mode.key] == Pair(
        canary=TraceSample(spans=40, error_spans=8), baseline=TraceSample(spans=120, error_spans=0)
    )
    assert (
        requests[0]
        .params["q"]
        .endswith("by (resource.k8s.namespace.name, resource.k8s.deployment.name, resource.k8s.replicaset.name)")
    )


# --- backend trouble ------------------------------------------------------------------------------


def test_tempo_down_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = source(f"http://127.0.0.1:{port}").fetch_trace_errors([TARGET], at(END))
    assert result.error is not None and result.error.kind is BackendErrorKind.CONNECTION
    assert f"cannot reach http://127.0.0.1:{port}" in result.error.reason
    ids, error = source(f"http://127.0.0.1:{port}").example_failing_traces(TARGET, at(END))
    assert ids == [] and error is not None and error.kind is BackendErrorKind.CONNECTION


def test_a_hanging_tempo_is_a_timeout() -> None:
    with TempoServer(hang_seconds=60) as server:
        server.inject(Fault.HANG)
        result = source(server.url, timeout_seconds=0.3).fetch_trace_errors([TARGET], at(END))
    assert result.error is not None and result.error.kind is BackendErrorKind.TIMEOUT
    assert "no answer within 0.3s" in result.error.reason
    assert result.queries[0].error == result.error


@pytest.mark.parametrize(
    ("fault", "kind", "reason"),
    [
        (Fault.HTTP_500, BackendErrorKind.HTTP, "HTTP 500: rpc error: code = Internal desc = simulated failure"),
        (Fault.GARBAGE, BackendErrorKind.MALFORMED, "answer is not JSON"),
        (Fault.PARTIAL, BackendErrorKind.LIMIT, "partial result: simulated partial result"),
    ],
)
def test_faults(tempo: TempoServer, fault: Fault, kind: BackendErrorKind, reason: str) -> None:
    tempo.inject(fault)
    try:
        result = source(tempo.url).fetch_trace_errors([TARGET], at(END))
    finally:
        tempo.inject(None)
    assert result.error is not None and result.error.kind is kind and result.values == {}
    assert reason in result.error.reason


def test_too_many_series_is_a_limit_error(tempo: TempoServer) -> None:
    tempo.max_series = 1
    try:
        error = source(tempo.url).fetch_trace_errors([TARGET], at(END)).error
    finally:
        tempo.max_series = 1000
    assert error is not None and error.kind is BackendErrorKind.LIMIT
    assert "Response exceeds maximum series limit of 1" in error.reason


def test_tenant_header() -> None:
    with TempoServer(tenant="team-a", clock=lambda: AFTER_RECORDING) as server:
        server.add_spans(recorded_spans(fixture("ingested_spans.json")))
        anonymous = source(server.url).fetch_trace_errors([TARGET], at(END))
        team_a = source(server.url, tenant="team-a").fetch_trace_errors([TARGET], at(END))
    assert anonymous.error is not None and "HTTP 401: no org id" in anonymous.error.reason
    assert team_a.values[TARGET.key].canary == TraceSample(spans=100, error_spans=20)
