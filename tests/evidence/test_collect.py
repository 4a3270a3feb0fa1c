"""Evidence from the recorded system (tests/fixtures/tempo-evidence/ and tests/fixtures/loki/, served by the
Tempo and Loki test servers at the recording's time): it names the README's ground truth, with a bounded
number of queries, and every backend failure becomes a note, never an exception."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from canary.evidence import EvidenceCollector, queries
from canary.evidence.text import evidence_lines
from canary.samples import Target, Workload
from canary.sources.loki import LokiSettings, LokiSource
from canary.sources.tempo import TempoSettings, TempoSource
from canary_testkit.loki import Fault as LokiFault
from canary_testkit.loki import LokiServer, recorded_lines
from canary_testkit.tempo import Fault as TempoFault
from canary_testkit.tempo import TempoServer, otlp_spans

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
START, END = 1796005500, 1796005860
NOW = END + 51.0
"""When the recorded queries ran."""
CANARY_RS, STABLE_RS = "checkout-7f8e9a1b2", "checkout-6d5f7c9b8"
TARGET = Target(
    key="shop/checkout",
    service="checkout",
    canary=Workload(namespace="shop", deployment="checkout", replicaset=CANARY_RS),
    baseline=(Workload(namespace="shop", deployment="checkout", replicaset=STABLE_RS),),
    window=END - START,
)


def load(path: str) -> dict[str, Any]:
    return json.loads((FIXTURES / path).read_text())


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[TempoServer, LokiServer]]:
    with TempoServer(clock=lambda: NOW) as tempo, LokiServer(clock=lambda: NOW) as loki:
        tempo.add_spans(otlp_spans(load("tempo-evidence/ingested_spans.json")))
        loki.add_lines(recorded_lines(load("loki/ingested_log_lines.json")))
        yield tempo, loki


def collector(tempo: TempoServer | None, loki: LokiServer | None, timeout: float = 5.0) -> EvidenceCollector:
    return EvidenceCollector(
        TempoSource(TempoSettings(url=tempo.url, timeout_seconds=timeout), clock=lambda: NOW) if tempo else None,
        LokiSource(LokiSettings(url=loki.url, timeout_seconds=timeout)) if loki else None,
        deadline_seconds=30,
    )


def ground_truth() -> tuple[set[str], dict[str, str]]:
    """The canary's failing trace ids and the pod each failed on."""
    failing = [t for t in load("tempo-evidence/ingest_summary.json")["failing_traces"] if t["replicaset"] == CANARY_RS]
    return {t["traceId"] for t in failing}, {t["traceId"]: t["pod"] for t in failing}


def test_evidence_names_the_ground_truth_with_a_bounded_number_of_queries(
    servers: tuple[TempoServer, LokiServer],
) -> None:
    tempo, loki = servers
    evidence, records = collector(tempo, loki).collect(TARGET, datetime.fromtimestamp(END + 30, UTC))
    assert evidence.notes == ()
    # where: the canary's POST /api/checkout (18/70), not GET /api/cart (0/68); stable 2/249 and 3/213
    [regressed] = evidence.regressed_routes
    assert regressed.route == "POST /api/checkout"
    assert (regressed.canary_errors, regressed.canary_requests) == (18, 70)
    assert (regressed.baseline_errors, regressed.baseline_requests) == (2, 249)
    cart = next(r for r in evidence.routes if r.route == "GET /api/cart")
    assert not cart.regressed and (cart.canary_errors, cart.canary_requests, cart.baseline_errors) == (0, 68, 3)
    # what failed downstream: 18 INSERT orders deadlocks below canary requests, none below stable ones,
    # whose own failures (payments 503, statement timeout) are listed as the baseline's
    cause = evidence.cause
    assert cause is not None
    assert (cause.service, cause.span, cause.message, cause.canary, cause.baseline) == (
        "checkout",
        "INSERT orders",
        "deadlock detected",
        18,
        0,
    )
    baseline_only = {(d.service, d.span, d.message) for d in evidence.downstream if d.canary == 0}
    assert baseline_only == {
        ("checkout", "INSERT orders", "canceling statement due to statement timeout"),
        ("checkout", "POST /v1/charges", ""),
        ("payments", "POST /v1/charges", "upstream card network unavailable"),
    }
    # which traces and log lines: real failing canary traces, and their lines from the canary pod
    failing, pods = ground_truth()
    traces = [t.trace_id for t in evidence.traces]
    assert len(traces) >= 2 and set(traces) <= failing
    assert evidence.logs and all(log.trace_id in traces for log in evidence.logs)
    assert all(log.pod == pods[log.trace_id] and "deadlock detected" in log.line for log in evidence.logs)
    # bounded: 5 Tempo and 2 Loki queries here, whatever the number of routes
    assert [r.backend.value for r in records].count("tempo") == 5
    assert [r.backend.value for r in records].count("loki") == 2
    assert all(r.error is None for r in records)
    assert evidence.summary().startswith("POST /api/checkout 25.7% errors (18/70) vs 0.8% (2/249) | cause: ")


def test_structural_queries_are_answered_like_the_recorded_tempo(servers: tuple[TempoServer, LokiServer]) -> None:
    """The test server gives the recorded answers to the recorded structural queries (values and labels)."""
    tempo, _ = servers

    def series(body: dict[str, Any]) -> list[tuple[str, Any]]:
        return sorted((json.dumps(s["labels"], sort_keys=True), s.get("value", 0)) for s in body.get("series", []))

    for name in (
        "query_instant_struct_count_by_statusMessage.json",
        "query_instant_struct_stable_count_by_service_name.json",
        "query_instant_count_by_rs_route.json",
        "query_instant_error_count_by_rs_route.json",
    ):
        recorded = load(f"tempo-evidence/{name}")
        answer = httpx.get(tempo.url + recorded["request"]["path"], params=recorded["request"]["params"])
        assert answer.status_code == 200
        assert series(answer.json()) == series(recorded["body"]), name
    for name in (
        "search_struct_descendant_error_select.json",
        "search_struct_child_error.json",
        "search_struct_stable_descendant_error_select.json",
    ):
        recorded = load(f"tempo-evidence/{name}")
        answer = httpx.get(tempo.url + "/api/search", params=recorded["request"]["params"]).json()

        def spans(body: dict[str, Any]) -> list[tuple[str, str, str]]:
            return sorted(
                (
                    t["traceID"].rjust(32, "0"),
                    s["spanID"],
                    json.dumps(sorted((a["key"], json.dumps(a["value"])) for a in s.get("attributes", []))),
                )
                for t in body["traces"]
                for s in t["spanSets"][0]["spans"]
            )

        assert spans(answer) == spans(recorded["body"]), name
    refused = load("tempo-evidence/error_search_struct_syntax_triple_gt.json")
    answer = httpx.get(tempo.url + "/api/search", params=refused["request"]["params"])
    assert (answer.status_code, answer.text) == (400, refused["body"])


def test_every_query_pins_the_namespace_and_escapes_names() -> None:
    hostile = Target(
        key="x",
        service='checkout" || true || "',
        window=60,
        canary=Workload(namespace='shop"}', deployment="checkout", replicaset='rs" || "'),
        baseline=(Workload(namespace="shop", deployment="checkout", replicaset="old"),),
    )
    from canary_testkit.tempo import parse

    for text in (
        queries.route_counts(hostile, errors=True),
        queries.downstream_counts(hostile, hostile.baseline),
        queries.failing_downstream_search(hostile),
        queries.failing_requests_search(hostile),
    ):
        parsed = parse(text)
        assert parsed.filter is not None and "resource.k8s.namespace.name" in text
        assert '"checkout\\" || true || \\""' in text


@pytest.mark.parametrize(
    ("tempo_fault", "loki_fault", "notes"),
    [
        (
            TempoFault.HTTP_500,
            None,
            ["routes: tempo http error", "downstream: tempo http error", "failing traces: tempo http error"],
        ),
        (TempoFault.PARTIAL, None, ["routes: tempo limit error"]),
        (TempoFault.HTTP_400, LokiFault.HTTP_400, ["routes: tempo http error: GET /api/metrics/query: HTTP 400: "
                                                   "invalid TraceQL query: simulated refusal",
                                                   "error log lines: loki http error"]),
        (None, LokiFault.GARBAGE, ["log lines of the traces: loki malformed error"]),
        (None, LokiFault.HANG, ["log lines of the traces: loki timeout error"]),
    ],
)
def test_a_failing_backend_is_a_note_and_the_rest_is_kept(
    tempo_fault: TempoFault | None, loki_fault: LokiFault | None, notes: list[str]
) -> None:
    with TempoServer(clock=lambda: NOW) as tempo, LokiServer(clock=lambda: NOW, hang_seconds=3) as loki:
        tempo.add_spans(otlp_spans(load("tempo-evidence/ingested_spans.json")))
        loki.add_lines(recorded_lines(load("loki/ingested_log_lines.json")))
        tempo.inject(tempo_fault)
        loki.inject(loki_fault)
        evidence, _ = collector(tempo, loki, timeout=0.5).collect(TARGET, datetime.fromtimestamp(END + 30, UTC))
        loki.inject(None)
    for note in notes:
        assert any(n.startswith(note) for n in evidence.notes), (note, evidence.notes)
    if tempo_fault is None:
        assert evidence.cause is not None and evidence.traces, "Tempo's evidence is kept when Loki fails"
        assert evidence.logs == ()
    if loki_fault is None and tempo_fault is TempoFault.HTTP_500:
        assert evidence.routes == () and evidence.traces == ()
    assert "note: " + evidence.notes[0] in evidence_lines(evidence)


def test_without_tempo_and_loki_it_says_so() -> None:
    evidence, records = collector(None, None).collect(TARGET, datetime.fromtimestamp(END, UTC))
    assert records == [] and evidence.empty
    assert evidence.notes == ("Tempo is not configured: no routes, downstream cause or traces",)
    assert evidence.summary() == (
        "no root-cause evidence found (Tempo is not configured: no routes, downstream cause or traces)"
    )


def test_a_latency_breach_is_broken_down_by_route_p99_with_slow_example_traces() -> None:
    """Synthetic spans: the canary's POST /api/orders takes 900 ms, everything else 20-40 ms."""
    from canary_testkit.tempo import Span, SpanStatus

    def spans(rs: str, route: str, method: str, seconds: float, count: int, offset: int) -> list[Span]:
        return [
            Span(trace_id=f"{offset + i:032x}", span_id=f"{offset + i:016x}", service="checkout", namespace="shop",
                 deployment="checkout", replicaset=rs, http_method=method, http_route=route, http_status=200,
                 status=SpanStatus.UNSET, start_ns=(START + 10 + i) * 10**9,
                 end_ns=(START + 10 + i) * 10**9 + int(seconds * 1e9))
            for i in range(count)
        ]

    with TempoServer(clock=lambda: NOW) as tempo:
        tempo.add_spans(spans(CANARY_RS, "/api/orders", "POST", 0.9, 40, 1_000)
                        + spans(CANARY_RS, "/api/items", "GET", 0.02, 40, 2_000)
                        + spans(STABLE_RS, "/api/orders", "POST", 0.04, 120, 3_000)
                        + spans(STABLE_RS, "/api/items", "GET", 0.02, 120, 4_000))
        evidence, records = collector(tempo, None).collect(TARGET, datetime.fromtimestamp(END + 30, UTC), latency=True)
    [slow] = evidence.regressed_routes
    assert slow.route == "POST /api/orders" and slow.canary_p99 is not None and slow.baseline_p99 is not None
    assert slow.canary_p99 >= 0.5 > 0.1 >= slow.baseline_p99
    assert slow.text().startswith("POST /api/orders p99 ")
    items = next(r for r in evidence.routes if r.route == "GET /api/items")
    assert not items.regressed
    assert len(evidence.traces) == 5 and all(t.cause == "slow request /api/orders" for t in evidence.traces)
    assert all(int(t.trace_id, 16) in range(1_000, 1_040) for t in evidence.traces)
    assert evidence.traceql is not None and "duration >= " in evidence.traceql
    assert len(records) == 6
