"""TempoServer against a real Tempo: loaded with the very spans that were pushed to Tempo 3.1, it must
answer every recorded request (tests/fixtures/tempo/) in the recorded shape, with the recorded
series, values, traces and error messages. Then its own behaviour: faults, limits, tenants, bounds."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from canary.sources.traceql import quote
from canary_testkit.tempo import (
    Fault,
    Span,
    SpanKind,
    SpanStatus,
    TempoServer,
    TraceQLError,
    go_duration,
    log2_quantile,
    parse,
    recorded_spans,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tempo"
"""Answers recorded from a real Tempo 3.1, copied into the repository (see its README.md)."""
NOT_ANSWERS = {
    "ingest_summary.json": "a summary of the data set, not an answer",
    "ingested_spans.json": "the data set itself (loaded into the server)",
    "otlp_http_json_push.json": "OTLP ingestion is not simulated: spans come in through add_spans",
    "gotcha_backdated_spans_query_range_count.json": "recorded on another, discarded data set",
}
ANSWERS = sorted(p.name for p in FIXTURES.glob("*.json") if p.name not in NOT_ANSWERS)
FULL_SEARCH = "search_canary_errors.json"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(now=1795562324.0)


@pytest.fixture(scope="module")
def recorded(clock: Clock) -> Iterator[TempoServer]:
    with TempoServer(clock=clock) as server:
        server.add_spans(recorded_spans(fixture("ingested_spans.json")))
        yield server


def get_as_recorded(server: TempoServer, clock: Clock, name: str) -> tuple[httpx.Response, dict[str, Any]]:
    """Send the fixture's request (same path and query string) at the moment it was sent to Tempo."""
    recorded_fixture = fixture(name)
    clock.now = recorded_fixture["captured_at_unix"]
    url = httpx.URL(recorded_fixture["request"]["url"])
    return httpx.get(server.url + url.raw_path.decode(), timeout=10), recorded_fixture


# --- structural comparison ------------------------------------------------------------------------


def label_map(labels: list[dict[str, Any]]) -> dict[str, Any]:
    return {label["key"]: label["value"] for label in labels}


def assert_close(mine: float, tempo: float, where: str) -> None:
    """Equal but for the last floating-point digit (Tempo sums 1/step increments)."""
    assert mine == pytest.approx(tempo, rel=1e-12, abs=0), where


def assert_same_series(mine: dict[str, Any], tempo: dict[str, Any], name: str) -> None:
    assert ("series" in mine) == ("series" in tempo), f"{name}: `series` key presence"
    mine_series, tempo_series = mine.get("series", []), tempo.get("series", [])
    assert [s["labels"] for s in mine_series] == [s["labels"] for s in tempo_series], name
    for ours, theirs in zip(mine_series, tempo_series, strict=True):
        where = f"{name} {label_map(theirs['labels'])}"
        if "samples" in theirs:
            assert [s["timestampMs"] for s in ours["samples"]] == [s["timestampMs"] for s in theirs["samples"]], where
            for a, b in zip(ours["samples"], theirs["samples"], strict=True):
                assert ("value" in a) == ("value" in b), f"{where} at {b['timestampMs']}: zero values are omitted"
                assert_close(a.get("value", 0), b.get("value", 0), f"{where} at {b['timestampMs']}")
        else:
            assert set(ours) == set(theirs), where
            assert_close(ours.get("value", 0), theirs.get("value", 0), where)


def assert_exemplars(mine: dict[str, Any], params: dict[str, str], trace_ids: set[str], name: str) -> None:
    """Tempo picks exemplars at random; check their shape, the limits asked for, and that they are real."""
    exemplars = [e for s in mine.get("series", []) for e in s.get("exemplars", [])]
    if "with(exemplars=false)" in params.get("q", ""):
        assert exemplars == [], name
    if params.get("exemplars") == "1":
        assert len(exemplars) == 1, name
    for exemplar in exemplars:
        assert set(exemplar) == {"labels", "value", "timestampMs"}, name
        assert exemplar["timestampMs"].isdigit() and isinstance(exemplar["value"], int | float), name
        assert label_map(exemplar["labels"])["trace:id"]["stringValue"] in trace_ids, name


def normalized_trace(trace: dict[str, Any]) -> dict[str, Any]:
    """A search trace with attribute lists as dicts (Tempo's attribute order varies)."""

    def span(s: dict[str, Any]) -> dict[str, Any]:
        return {**s, "attributes": label_map(s.get("attributes", []))}

    def span_set(ss: dict[str, Any]) -> dict[str, Any]:
        return {**ss, "spans": [span(s) for s in ss["spans"]]}

    return {**trace, "spanSet": span_set(trace["spanSet"]), "spanSets": [span_set(ss) for ss in trace["spanSets"]]}


def shape(value: Any) -> Any:
    """Keys all the way down (attribute lists by key), for answers whose contents legitimately differ."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and set(v) == {"key", "value"} for v in value):
            return sorted((v["key"], tuple(v["value"])) for v in value)
        return [shape(value[0])] if value else []
    return type(value).__name__


def assert_same_search(mine: dict[str, Any], tempo: dict[str, Any], params: dict[str, str], name: str) -> None:
    assert set(mine) == set(tempo) == {"traces", "metrics"}, name
    assert set(mine["metrics"]) == set(tempo["metrics"]), name
    starts = [int(t["startTimeUnixNano"]) for t in mine["traces"]]
    assert starts == sorted(starts, reverse=True), f"{name}: newest first"
    mine_traces = [normalized_trace(t) for t in mine["traces"]]
    tempo_traces = [normalized_trace(t) for t in tempo["traces"]]
    if tempo["metrics"]["completedJobs"] == tempo["metrics"]["totalJobs"] and len(tempo_traces) < int(
        params.get("limit", 20)
    ):
        assert mine_traces == tempo_traces, name
        return
    # Tempo stopped at `limit` traces from the jobs that finished first; the simulator returns the newest.
    assert len(mine_traces) == len(tempo_traces), name
    newest = [t["traceID"] for t in fixture(FULL_SEARCH)["body"]["traces"]][: len(mine_traces)]
    assert [t["traceID"] for t in mine_traces] == newest, name
    for trace in mine["traces"]:
        assert shape(trace) == shape(tempo["traces"][0]), f"{name}: trace {trace['traceID']}"


# --- the recorded answers -------------------------------------------------------------------------


def test_every_recorded_answer_is_compared_or_excluded_for_a_reason() -> None:
    recorded = {p.name for p in FIXTURES.glob("*.json")}
    assert set(NOT_ANSWERS) <= recorded
    assert len(ANSWERS) == len(recorded) - len(NOT_ANSWERS) >= 40


@pytest.mark.parametrize("name", ANSWERS)
def test_answers_the_recorded_request_like_tempo(recorded: TempoServer, clock: Clock, name: str) -> None:
    response, tempo = get_as_recorded(recorded, clock, name)
    assert response.status_code == tempo["status"], response.text
    assert response.headers["content-type"] == tempo["response_content_type"]
    body, path, params = tempo["body"], tempo["request"]["path"], tempo["request"]["params"]
    if isinstance(body, str):
        assert response.text == body
        return
    mine = response.json()
    if path.startswith("/api/metrics/"):
        assert set(mine) == set(body), name
        # inspectedBytes is omitted when 0, as on Tempo's cache hits
        assert set(body["metrics"]) <= set(mine["metrics"]) <= {"inspectedBytes", "completedJobs", "totalJobs"}, name
        assert_same_series(mine, body, name)
        trace_ids = {s["traceId"].lstrip("0") for s in fixture("ingested_spans.json")["spans"]}
        assert_exemplars(mine, params, trace_ids, name)
    elif path == "/api/search":
        assert_same_search(mine, body, params, name)
    elif path.startswith("/api/v2/search/tag/"):
        assert set(mine) == set(body)
        assert sorted(map(json.dumps, mine["tagValues"])) == sorted(map(json.dumps, body["tagValues"]))
    else:
        assert set(mine) == set(body), name


def test_readme_error_rates_from_the_simulated_instant_answers(recorded: TempoServer, clock: Clock) -> None:
    rates = {}
    for name in ("query_instant_rate_by_deployment.json", "query_instant_error_rate_by_deployment.json"):
        response, _ = get_as_recorded(recorded, clock, name)
        rates[name] = {
            label_map(s["labels"])["resource.k8s.deployment.name"]["stringValue"]: s["value"]
            for s in response.json()["series"]
        }
    errors, spans = rates["query_instant_error_rate_by_deployment.json"], rates["query_instant_rate_by_deployment.json"]
    assert errors["checkout"] / spans["checkout"] == pytest.approx(0.01)
    assert errors["checkout-canary"] / spans["checkout-canary"] == pytest.approx(0.20)


# --- TraceQL subset ------------------------------------------------------------------------------


ODD_NAME = 'odd"name\\with\nnewline'


def span(deployment: str = "checkout", **changes: Any) -> Span:
    index = changes.pop("index", 0)
    fields: dict[str, Any] = {
        "trace_id": f"{index + 1:032x}",
        "span_id": f"{index + 1:016x}",
        "start_ns": 1_700_000_000 * 10**9 + index * 10**6,
        "end_ns": 1_700_000_000 * 10**9 + index * 10**6 + 120 * 10**6,
        "service": "checkout",
        "namespace": "shop",
        "deployment": deployment,
        "status": SpanStatus.OK,
        "http_method": "GET",
        "http_route": "/api/cart",
        "http_status": 200,
    }
    return Span(**(fields | changes))


@pytest.fixture
def small() -> Iterator[TempoServer]:
    with TempoServer(clock=lambda: 1_700_000_600.0) as server:
        server.add_spans(
            [
                span("checkout", index=0),
                span("checkout", index=1, status=SpanStatus.ERROR, http_status=500),
                span("checkout-canary", index=2, status=SpanStatus.ERROR, http_status=503),
                span("checkout-canary", index=3, kind=SpanKind.CLIENT),
                span(ODD_NAME, index=4),
            ]
        )
        yield server


def count(server: TempoServer, traceql: str) -> dict[str, int]:
    """count_over_time() by deployment over the whole store, as {deployment: spans}."""
    response = httpx.get(
        f"{server.url}/api/metrics/query",
        params={
            "q": f"{traceql} | count_over_time() by (resource.k8s.deployment.name)",
            "start": "1699999990",
            "end": "1700000100",
        },
    )
    assert response.status_code == 200, response.text
    return {
        label_map(s["labels"])["resource.k8s.deployment.name"].get("stringValue", "<nil>"): s.get("value", 0)
        for s in response.json().get("series", [])
    }


@pytest.mark.parametrize(
    ("traceql", "expected"),
    [
        ("{ }", {"checkout": 2, "checkout-canary": 2, ODD_NAME: 1}),
        ("{ kind = server && status = error }", {"checkout": 1, "checkout-canary": 1}),
        ("{ span:kind = client }", {"checkout-canary": 1}),
        ("{ span.kind = server }", {}),
        (
            '{ resource.k8s.deployment.name = "x" || status = error && kind = server }',
            {"checkout": 1, "checkout-canary": 1},
        ),
        ('{ (resource.k8s.deployment.name = "x" || status = error) && kind = client }', {}),
        ('{ resource.k8s.deployment.name =~ "checkout" }', {"checkout": 2}),
        ('{ resource.k8s.deployment.name !~ "check.*" }', {ODD_NAME: 1}),
        ("{ span.http.response.status_code >= 500 }", {"checkout": 1, "checkout-canary": 1}),
        ('{ span.no.such.attribute != "x" }', {}),
        ("{ span.http.response.status_code = nil }", {}),
        (
            "{ .http.route = `/api/cart` && duration > 100ms && duration < 1s }",
            {"checkout": 2, "checkout-canary": 2, ODD_NAME: 1},
        ),
        (
            f"{{ resource.k8s.deployment.name = {quote(ODD_NAME)} }}",
            {ODD_NAME: 1},
        ),
    ],
)
def test_traceql_subset(small: TempoServer, traceql: str, expected: dict[str, int]) -> None:
    assert count(small, traceql) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ resource.service.name = "checkout" && }', "parse error at line 1, col 41: syntax error: unexpected }"),
        (
            "{ status = error } | rate( by (x)",
            "parse error at line 1, col 28: syntax error: unexpected by, expecting )",
        ),
        ('{ name = "unterminated }', "parse error at line 1, col 10: literal not terminated"),
        ('{ name = "bad \\q escape" }', "parse error at line 1, col 10: invalid char escape"),
        ("{ status = error }\n| rate() by (", "parse error at line 2, col 14: syntax error: unexpected $end"),
        ("", "parse error : syntax error: unexpected $end"),
    ],
)
def test_syntax_errors_read_like_tempo(query: str, message: str) -> None:
    with pytest.raises(TraceQLError) as raised:
        parse(query)
    assert str(raised.value) == message


@given(st.text())
def test_any_quoted_value_parses_back_to_itself(value: str) -> None:
    clean = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    comparison = parse(f"{{ resource.k8s.deployment.name = {quote(value)} }}").filter
    assert comparison is not None and getattr(comparison, "value", None) == ("string", clean)


def test_log2_quantile_and_go_durations_match_tempo() -> None:
    durations = [s["duration_ns"] for s in fixture("ingested_spans.json")["spans"] if s["deployment"] == "checkout"]
    instant = fixture("query_instant_p99_duration_by_deployment.json")["body"]["series"][0]
    assert log2_quantile(0.99, durations) == instant["value"]
    assert [go_duration(n) for n in (0, 999, 135_627_690, 2 * 10**9, 24 * 3600 * 10**9)] == [
        "0s",
        "999ns",
        "135.62769ms",
        "2s",
        "24h0m0s",
    ]


# --- server behaviour ------------------------------------------------------------------------------


def test_search_shows_select_attributes_with_int_values_as_strings(small: TempoServer) -> None:
    response = httpx.get(
        f"{small.url}/api/search",
        params={
            "q": "{ status = error } | select(span.http.response.status_code)",
            "start": "1699999990",
            "end": "1700000100",
        },
    )
    traces = response.json()["traces"]
    assert [t["traceID"] for t in traces] == ["3", "2"]
    attributes = label_map(traces[0]["spanSet"]["spans"][0]["attributes"])
    assert attributes == {"status": {"stringValue": "error"}, "http.response.status_code": {"intValue": "503"}}


def not_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return True
    return False


@pytest.mark.parametrize(
    ("fault", "status", "check"),
    [
        (Fault.HTTP_500, 500, lambda r: "simulated failure" in r.text),
        (Fault.GARBAGE, 200, lambda r: not_json(r.text)),
        (Fault.PARTIAL, 200, lambda r: r.json()["status"] == "PARTIAL" and r.json()["metrics"]["completedJobs"] == 1),
    ],
)
def test_injected_faults(small: TempoServer, fault: Fault, status: int, check: Any) -> None:
    small.inject(fault, paths=["/api/metrics/"])
    params = {"q": "{ } | rate()", "start": "1699999990", "end": "1700000100"}
    response = httpx.get(f"{small.url}/api/metrics/query", params=params)
    assert response.status_code == status
    assert check(response)
    assert httpx.get(f"{small.url}/api/search").status_code == 200, "only the chosen paths are affected"
    small.inject(None)
    assert httpx.get(f"{small.url}/api/metrics/query", params=params).json()["metrics"]["completedJobs"] == 1


def test_hanging_requests_time_out_and_are_released_on_stop() -> None:
    server = TempoServer(hang_seconds=120).start()
    server.inject(Fault.HANG)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/api/search", timeout=0.3)
    answers: list[httpx.Response] = []
    waiter = threading.Thread(target=lambda: answers.append(httpx.get(f"{server.url}/api/search", timeout=60)))
    waiter.start()
    for _ in range(400):
        if len([r for r in server.requests() if r.path == "/api/search"]) == 2:
            break
        waiter.join(timeout=0.05)
    server.stop()
    waiter.join(timeout=30)
    assert not waiter.is_alive() and answers[0].status_code == 503
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/ready", timeout=2)


def test_too_many_series_is_a_partial_answer_like_tempo(small: TempoServer) -> None:
    small.max_series = 2
    response = httpx.get(
        f"{small.url}/api/metrics/query",
        params={"q": "{ } | rate() by (resource.k8s.deployment.name)", "start": "1699999990", "end": "1700000100"},
    )
    answer = response.json()
    assert answer["status"] == "PARTIAL" and len(answer["series"]) == 2
    assert answer["message"].startswith("Response exceeds maximum series limit of 2, a partial response is returned.")


def test_tenants() -> None:
    with TempoServer(tenant="team-a", clock=lambda: 1_700_000_600.0) as server:
        server.add_spans([span()])
        params = {"q": "{ } | count_over_time()", "start": "1699999990", "end": "1700000100"}
        url = f"{server.url}/api/metrics/query"
        assert httpx.get(url, params=params).status_code == 401
        assert "series" not in httpx.get(url, params=params, headers={"X-Scope-OrgID": "team-b"}).json()
        assert httpx.get(url, params=params, headers={"X-Scope-OrgID": "team-a"}).json()["series"][0]["value"] == 1
        assert httpx.get(f"{server.url}/ready").text == "ready\n"


def test_memory_is_bounded_by_retention_and_span_count() -> None:
    with TempoServer(retention_seconds=60, max_spans=3, clock=lambda: 1_700_000_030.0) as server:
        old = span(index=0, start_ns=1_699_999_900 * 10**9, end_ns=1_699_999_901 * 10**9)
        server.add_spans([old, *(span(index=i) for i in range(1, 6))])
        kept = server.store.overlapping(None, None)
        assert [s.span.trace_id for s in kept] == [f"{i:032x}" for i in (4, 5, 6)]


def test_add_spans_is_thread_safe_while_queries_run(small: TempoServer) -> None:
    def writer(offset: int) -> None:
        for batch in range(10):
            small.add_spans(span(index=offset + batch * 50 + i) for i in range(50))

    writers = [threading.Thread(target=writer, args=(10_000 * (n + 1),)) for n in range(4)]
    for thread in writers:
        thread.start()
    for _ in range(5):
        count(small, "{ }")
    for thread in writers:
        thread.join(timeout=30)
    assert len(small.store) == 5 + 4 * 500


def test_span_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match="trace_id"):
        span(trace_id="xyz")
    with pytest.raises(ValidationError, match=r"end_ns \(1\) is before start_ns"):
        span(end_ns=1)


def test_unknown_paths_and_stop() -> None:
    with TempoServer() as server:
        assert httpx.get(f"{server.url}/api/nope").status_code == 404
        port = int(server.url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_instant_end_is_pulled_back_by_whole_seconds_before_the_cutoff() -> None:
    with TempoServer(clock=lambda: 1_700_000_100.5) as server:
        server.add_spans(
            span(index=i, start_ns=second * 10**9, end_ns=second * 10**9 + 10**6)
            for i, second in enumerate((1_700_000_050, 1_700_000_080))
        )
        params = {"q": "{ } | rate()", "start": "1700000000", "end": "1700000100"}
        answer = httpx.get(f"{server.url}/api/metrics/query", params=params).json()
        assert answer["series"][0]["value"] == 1 / 70, "one span in (start, now - 30 s rounded to whole seconds]"
        params["start"] = "1700000075"
        refused = httpx.get(f"{server.url}/api/metrics/query", params=params)
        assert (refused.status_code, refused.text) == (400, "query window falls entirely within query_end_cutoff")
