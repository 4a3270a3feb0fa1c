"""`canary analyze --tempo-url ... --loki-url ... -o json|text` on the recorded system (tests/fixtures/
tempo-evidence/, tests/fixtures/loki/): the canary's POST /api/checkout fails through `INSERT orders`
(deadlock detected), the stable ReplicaSet is healthy. The evidence must name that ground truth.

The recorded spans and log lines are replayed as if they had just happened (every timestamp shifted by
the same amount, ids unchanged); Prometheus holds OBI series with the recorded request and error counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from canary.cli import app
from canary_testkit.loki import Fault as LokiFault
from canary_testkit.loki import LokiServer, recorded_lines
from canary_testkit.prometheus import PrometheusServer
from canary_testkit.tempo import Fault as TempoFault
from canary_testkit.tempo import TempoServer, otlp_spans
from tests.promdata import DataRange, Traffic, openmetrics

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED_START, RECORDED_END = 1796005500, 1796005860
SLO = """apiVersion: canary.mop.dev/v1alpha1
kind: ServiceSLO
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  objectives: {availability: 99, latencyP99: 5s}
  analysis: {window: 7m, minRequests: 50}
"""
CANARY, STABLE = "checkout-7f8e9a1b2", "checkout-6d5f7c9b8"
runner = CliRunner()


def load(path: str) -> dict[str, Any]:
    return json.loads((FIXTURES / path).read_text())


@dataclass
class Recorded:
    prometheus: PrometheusServer
    tempo: TempoServer
    loki: LokiServer
    failing: set[str]
    """Ids of the canary's failing traces (ground truth)."""


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    rng = DataRange.ending_now(minutes=30, lag=60)
    shift_ns = int((rng.end - RECORDED_END) * 1e9)
    window = RECORDED_END - RECORDED_START
    traffic = [  # the recorded checkout server spans per ReplicaSet and route (README ground truth)
        Traffic("shop", "checkout", rs, "checkout", rps=requests / window, error_ratio=errors / requests, age=age,
                route=route)
        for rs, age in ((STABLE, None), (CANARY, window))
        for route, requests, errors in (
            (("GET", "/api/cart"), *({STABLE: (213, 3), CANARY: (68, 0)}[rs])),
            (("POST", "/api/checkout"), *({STABLE: (249, 2), CANARY: (70, 18)}[rs])),
        )
    ]
    summary = load("tempo-evidence/ingest_summary.json")
    failing = {t["traceId"] for t in summary["failing_traces"] if t["replicaset"] == CANARY}
    with PrometheusServer(openmetrics=openmetrics(traffic, rng)) as prometheus, TempoServer() as tempo, \
            LokiServer() as loki:
        tempo.add_spans(otlp_spans(load("tempo-evidence/ingested_spans.json"), shift_ns))
        loki.add_lines(recorded_lines(load("loki/ingested_log_lines.json"), shift_ns))
        # the data must be older than Tempo's 30 s query-end cutoff
        time.sleep(max(0.0, rng.end + 31 - time.time()))
        yield Recorded(prometheus, tempo, loki, failing)


def analyze(env: Recorded, tmp_path: Path, *args: str) -> tuple[int, str]:
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO)
    result = runner.invoke(app, [
        "analyze", "-n", "shop", "-d", "checkout", "--slo", str(slo), "--mimir-url", env.prometheus.url,
        "--tempo-url", env.tempo.url, "--loki-url", env.loki.url, "--timeout", "3", *args,
    ])
    return result.exit_code, result.output


def test_json_names_the_route_the_downstream_call_the_traces_and_their_log_lines(
    recorded: Recorded, tmp_path: Path
) -> None:
    code, output = analyze(recorded, tmp_path, "-o", "json")
    assert code == 1, output
    document = json.loads(output)
    assert document["verdict"]["phase"] == "fail"
    evidence = document["evidence"]
    # routes from Mimir's OBI series (http_route): increase() extrapolates counts, the ratios are the recorded ones
    assert evidence["routes_source"] == "mimir"
    routes = {r["route"]: r for r in evidence["routes"]}
    checkout, cart = routes["POST /api/checkout"], routes["GET /api/cart"]
    assert checkout["regressed"] and not cart["regressed"]
    assert checkout["canary_errors"] / checkout["canary_requests"] == pytest.approx(18 / 70, abs=0.01)
    assert checkout["baseline_errors"] / checkout["baseline_requests"] == pytest.approx(2 / 249, abs=0.005)
    assert cart["canary_errors"] == 0 and cart["canary_requests"] > 0
    cause = evidence["downstream"][0]
    assert (cause["service"], cause["span"], cause["message"], cause["canary"], cause["baseline"]) == (
        "checkout", "INSERT orders", "deadlock detected", 18, 0,
    )
    traces = [t["trace_id"] for t in evidence["traces"]]
    assert len(traces) >= 2 and set(traces) <= recorded.failing
    assert all(t["cause"] == "checkout INSERT orders: deadlock detected" for t in evidence["traces"])
    logs = evidence["logs"]
    assert len(logs) >= 2
    for line in logs:
        assert line["trace_id"] in traces and line["pod"] == "checkout-7f8e9a1b2-p8lp8"
        assert "deadlock detected" in line["line"] and f"trace_id={line['trace_id']}" in line["line"]
    assert evidence["notes"] == []


def test_text_output_reads_the_same_evidence(recorded: Recorded, tmp_path: Path) -> None:
    code, output = analyze(recorded, tmp_path, "-o", "text")
    assert code == 1, output
    assert "routes (canary vs baseline, from mimir):" in output
    assert "REGRESSED POST /api/checkout 25.7% errors" in output
    assert 'checkout span "INSERT orders": deadlock detected (18 canary vs 0 baseline)' in output
    assert "checkout-7f8e9a1b2-p8lp8" in output


def test_tempo_refusing_and_loki_down_are_notes_and_the_verdict_stands(recorded: Recorded, tmp_path: Path) -> None:
    recorded.tempo.inject(TempoFault.HTTP_500, paths=("/api/search",))
    recorded.loki.inject(LokiFault.GARBAGE)
    try:
        code, output = analyze(recorded, tmp_path, "-o", "json")
    finally:
        recorded.tempo.inject(None)
        recorded.loki.inject(None)
    assert code == 1, output
    evidence = json.loads(output)["evidence"]
    assert evidence["routes"] and evidence["downstream"], "what Tempo did answer is kept"
    assert evidence["traces"] == [] and evidence["logs"] == []
    notes = "\n".join(evidence["notes"])
    assert "failing traces: tempo http error: GET /api/search: HTTP 500" in notes
    assert "error log lines: loki malformed error" in notes
