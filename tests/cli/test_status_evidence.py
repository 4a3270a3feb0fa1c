"""`canary status NS/NAME` shows the root-cause evidence of the last rollback, kept in the status annotation,
and `-o json` carries it as data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from test_status import cluster, deployment, runner  # noqa: F401 - `cluster` is a fixture
from typer.testing import CliRunner

from canary.cli import app
from canary.controller.status import STATUS_ANNOTATION, CanaryStatus
from canary.evidence.model import Downstream, Evidence, LogRef, RollbackEvidence, RouteStat, TraceRef
from canary.vocabulary import CanaryPhase, Mode
from canary_testkit.kube import KubeSim

TRACE = "c204ed7b2857fbc0c66cd5b356750c85"


def rolled_back(at: datetime) -> CanaryStatus:
    evidence = Evidence(
        start=at - timedelta(minutes=6), end=at, routes_source="tempo",
        routes=(RouteStat(route="POST /api/checkout", canary_requests=70, canary_errors=18, baseline_requests=249,
                          baseline_errors=2, regressed=True),),
        downstream=(Downstream(service="checkout", span="INSERT orders", message="deadlock detected", canary=18),),
        traces=(TraceRef(trace_id=TRACE, at=at, cause="checkout INSERT orders: deadlock detected"),),
        logs=(LogRef(at=at, pod="checkout-7f8e9a1b2-p8lp8", trace_id=TRACE,
                     line=f'level=error error="deadlock detected" trace_id={TRACE}'),),
        notes=("error log lines: loki timeout error: no answer within 10s",),
    )
    return CanaryStatus(phase=CanaryPhase.ROLLED_BACK, mode=Mode.GUARD, revision="2", template_hash="aaa",
                        stable_hash="aaa", rejected=["bbb"], message="rollback complete: the stable version runs again",
                        evidence=RollbackEvidence(revision="bbb", at=at, evidence=evidence))


def test_detail_and_json_show_the_last_rollbacks_evidence(cluster: tuple[KubeSim, str]) -> None:  # noqa: F811
    sim, kubeconfig = cluster
    status = rolled_back(datetime.now(UTC) - timedelta(minutes=3))
    deployment(sim, "checkout", {"canary.mop.dev/enabled": "true", STATUS_ANNOTATION: status.to_annotation()})
    result = runner.invoke(app, ["status", "shop/checkout", "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Root cause of the last rollback (template bbb, 3m" in out
    assert "REGRESSED POST /api/checkout 25.7% errors (18/70) vs 0.8% (2/249)" in out
    assert 'checkout span "INSERT orders": deadlock detected (18 canary vs 0 baseline)' in out
    assert TRACE in out and "checkout-7f8e9a1b2-p8lp8" in out and "note: error log lines: loki timeout" in out
    document = json.loads(CliRunner().invoke(app, ["status", "shop/checkout", "--kubeconfig", kubeconfig,
                                                   "-o", "json"]).output)
    (item,) = document["items"]
    assert item["evidence"]["revision"] == "bbb"
    assert item["evidence"]["evidence"]["downstream"][0]["message"] == "deadlock detected"
