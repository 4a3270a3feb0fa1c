"""`canary status` rendered from the simulated cluster through the real client: the list with its reason
column, the detail view (ReplicaSets, checks, forecast, decisions from Events, pending notifications),
the stable `-o json|yaml` schema and `--watch`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import CoreV1Api
from typer.testing import CliRunner

from canary.cli import app
from canary.config.slo import NotifyEvent
from canary.controller.status import STATUS_ANNOTATION, CanaryStatus
from canary.controller.statusview import StatusView
from canary.judge.model import CheckResult, Phase, Verdict
from canary.kube.events import EventRecorder
from canary.notify.events import CanaryEvent
from canary.vocabulary import CanaryPhase, Mode
from canary_testkit.kube import KubeSim

runner = CliRunner()
SCHEMA = Path(__file__).parent / "status_view_schema.json"
SLO_CONFIGMAP = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "slos", "namespace": "shop", "labels": {"canary.mop.dev/slo-config": "true"}},
    "data": {"slo.yaml": "apiVersion: canary.mop.dev/v1alpha1\nkind: ServiceSLO\nmetadata: {name: checkout}\nspec:\n"
                         "  service: checkout\n  analysis: {interval: 30s, successfulChecks: 6, failedChecks: 2}\n"},
}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeSim, str]]:
    with KubeSim(rollout_step_seconds=None) as sim:
        sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        yield sim, str(sim.write_kubeconfig(tmp_path / "kubeconfig"))


def deployment(sim: KubeSim, name: str, annotations: dict[str, str], image: str = "shop/checkout:v1") -> dict[str, Any]:
    labels = {"app": name}
    return sim.create({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
                       "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                                "template": {"metadata": {"labels": labels},
                                             "spec": {"containers": [{"name": "app", "image": image}]}}}})


def failing_status(started: datetime) -> CanaryStatus:
    verdict = Verdict(phase=Phase.FAIL, message="availability 91% < 99.5%", checks=(
        CheckResult(name="availability", result=Phase.FAIL, reason="91% of requests succeeded", canary=0.91,
                    baseline=0.999, threshold=0.995, unit="ratio", samples=1200, p_value=0.001),
        CheckResult(name="latency-p99", result=Phase.PASS, reason="p99 fine", canary=0.21, baseline=0.2,
                    threshold=0.5, unit="s", samples=1200),
    ))
    pending = CanaryEvent(type=NotifyEvent.ROLLED_BACK, namespace="shop", deployment="checkout", revision="2",
                          mode=Mode.GUARD, service="checkout", slo="shop/checkout", reason="availability 91%",
                          at=started + timedelta(seconds=60))
    return CanaryStatus(phase=CanaryPhase.ANALYSING, mode=Mode.GUARD, revision="2", checks_passed=1, checks_failed=1,
                        last_verdict=verdict, last_check_at=started + timedelta(seconds=60), started_at=started,
                        updated_at=started + timedelta(seconds=60), message="1 failed check: availability 91% < 99.5%",
                        outbox=[pending])


def rolled_out_twice(sim: KubeSim, kubeconfig: str) -> None:
    """checkout at revision 2 (v2) with the v1 ReplicaSet still there, a status and two controller Events."""
    sim.create(SLO_CONFIGMAP)
    deployment(sim, "checkout", {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"})
    current = sim.get("apps/v1", "deployments", "shop", "checkout")
    assert current is not None
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "shop/checkout:v2"
    sim.update(current)
    sim.step_rollouts()
    current = sim.get("apps/v1", "deployments", "shop", "checkout")
    assert current is not None
    started = datetime.now(UTC) - timedelta(minutes=2)
    current["metadata"]["annotations"][STATUS_ANNOTATION] = failing_status(started).to_annotation()
    sim.update(current)
    recorder = EventRecorder(sim.api_client())
    recorder.record(current, "Normal", "AnalysisStarted", "analysing revision 2 against revision 1")
    recorder.record(current, "Warning", "CheckFailed", "availability 91% < 99.5% (p=0.001)")


def test_list_shows_phase_checks_and_reason(cluster: tuple[KubeSim, str]) -> None:
    sim, kubeconfig = cluster
    rolled_out_twice(sim, kubeconfig)
    deployment(sim, "fresh", {"canary.mop.dev/enabled": "true"})
    deployment(sim, "broken", {"canary.mop.dev/enabled": "true", STATUS_ANNOTATION: "{not json"})
    deployment(sim, "plain", {})
    result = runner.invoke(app, ["status", "--kubeconfig", kubeconfig, "-n", "shop"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "REASON" in lines[1]
    row = next(line for line in lines if line.strip().startswith("shop/checkout"))
    assert "Analysing" in row and "guard" in row and "1/6 ✔ 1/2 ✖" in row and "fail" in row
    assert "1 failed check: availability 91% < 99.5%" in row
    assert "not seen by the controller yet" in next(line for line in lines if "shop/fresh" in line)
    assert "not a valid status" in result.output
    assert "plain" not in result.output
    wide = runner.invoke(app, ["status", "--kubeconfig", kubeconfig, "-n", "shop", "-o", "wide"])
    row = next(line for line in wide.output.splitlines() if line.strip().startswith("shop/checkout"))
    assert "shop/checkout:v2" in row and "rolled back after 1 more" in row  # wide columns wrap


def pod_of(sim: KubeSim, replicaset: dict[str, Any], name: str, ready: bool, restarts: int = 0) -> None:
    """A Pod as the ReplicaSet controller and the kubelet would report it (the simulator makes none)."""
    rs_meta = replicaset["metadata"]
    sim.create({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "shop", "labels": rs_meta.get("labels") or {},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                  "name": rs_meta["name"], "uid": rs_meta["uid"],
                                                  "controller": True}]},
                "spec": {"containers": [{"name": "app", "image": "shop/checkout"}]}})
    CoreV1Api(sim.api_client()).patch_namespaced_pod_status(name, "shop", {"status": {
        "phase": "Running", "containerStatuses": [{"name": "app", "ready": ready, "restartCount": restarts,
                                                   "image": "shop/checkout", "imageID": "", "started": True}]}})


def test_detail_view_shows_revisions_checks_forecast_decisions_and_pending_messages(
    cluster: tuple[KubeSim, str],
) -> None:
    sim, kubeconfig = cluster
    rolled_out_twice(sim, kubeconfig)
    canary_rs = next(rs for rs in sim.list("apps/v1", "replicasets", "shop")
                     if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/checkout:v2")
    pod_of(sim, canary_rs, "checkout-v2-a", ready=True)
    pod_of(sim, canary_rs, "checkout-v2-b", ready=False, restarts=3)
    result = runner.invoke(app, ["status", "shop/checkout", "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "◌ Analysing" in out and "(since " in out and "SLO:" in out and "shop/checkout" in out
    assert "1/6 ✔ 1/2 ✖ every 30s" in out
    assert "Next:" in out and "rolled back after 1 more failed check (~30s)" in out
    availability = next(line for line in out.splitlines() if line.strip().startswith("availability"))
    assert "✖ fail" in availability and "91%" in availability and "99.9%" in availability
    assert "99.5%" in availability and "99.9%" in availability.split("99.5%")[0] and "1200" in availability
    latency = next(line for line in out.splitlines() if line.strip().startswith("latency-p99"))
    assert "✔ pass" in latency and "210ms" in latency and "500ms" in latency
    revisions = [line for line in out.splitlines() if "# revision:" in line]
    assert len(revisions) == 2
    assert "revision:2" in revisions[0] and "canary" in revisions[0] and "shop/checkout:v2" in revisions[0]
    assert "revision:1" in revisions[1] and "stable" in revisions[1] and "shop/checkout:v1" in revisions[1]
    rs = sim.get("apps/v1", "replicasets", "shop", revisions[0].split("ReplicaSet ")[1].split()[0])
    assert rs is not None and f"{rs['status']['readyReplicas']}/{rs['spec']['replicas']} ready" in revisions[0]
    pods = [line for line in out.splitlines() if "Pod checkout-v2" in line]
    assert len(pods) == 2 and "✔ Pod checkout-v2-a  Running" in pods[0]
    assert "◌ Pod checkout-v2-b  Running  restarts:3" in pods[1]
    assert out.index("# revision:2") < out.index("Pod checkout-v2-a") < out.index("# revision:1")
    assert "CheckFailed" in out and "availability 91% < 99.5% (p=0.001)" in out and "AnalysisStarted" in out
    assert "Pending notifications" in out and "rolled-back (revision 2" in out
    same = runner.invoke(app, ["status", "checkout", "-n", "shop", "--kubeconfig", kubeconfig])
    assert same.exit_code == 0 and "rolled back after 1 more failed check" in same.output


def test_json_and_yaml_follow_the_stable_schema(cluster: tuple[KubeSim, str]) -> None:
    sim, kubeconfig = cluster
    rolled_out_twice(sim, kubeconfig)
    listed = runner.invoke(app, ["status", "--kubeconfig", kubeconfig, "-o", "json"])
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.output)
    assert document["apiVersion"] == "canary.mop.dev/status-view/v1" and document["kind"] == "CanaryStatusList"
    (item,) = document["items"]
    assert item["phase"] == "Analysing" and item["checks_needed"] == 6 and item["last_verdict"] == "fail"
    StatusView.model_validate(document)
    one = runner.invoke(app, ["status", "shop/checkout", "--kubeconfig", kubeconfig, "-o", "yaml"])
    (detail,) = yaml.safe_load(one.output)["items"]
    assert [rs["role"] for rs in detail["replicasets"]] == ["canary", "stable"]
    assert detail["checks"][0]["confidence"] == pytest.approx(0.999)
    assert detail["checks"][0]["limit"] == 0.995
    assert detail["pending_notifications"][0]["type"] == "rolled-back"
    assert {d["reason"] for d in detail["decisions"]} == {"AnalysisStarted", "CheckFailed"}
    # The schema is a contract for scripts: a change here must be deliberate (fields are only added).
    assert StatusView.model_json_schema(by_alias=True) == json.loads(SCHEMA.read_text())


def test_watch_redraws_until_stopped(cluster: tuple[KubeSim, str]) -> None:
    """--watch with a 0.1 s interval and the hidden --updates bound instead of Ctrl-C."""
    sim, kubeconfig = cluster
    rolled_out_twice(sim, kubeconfig)
    result = runner.invoke(app, ["status", "-w", "--interval", "0.1", "--updates", "2", "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    assert "shop/checkout" in result.output
    streamed = runner.invoke(
        app, ["status", "-w", "-o", "json", "--interval", "0.1", "--updates", "2", "--kubeconfig", kubeconfig])
    decoder, text, documents = json.JSONDecoder(), streamed.output.strip(), []
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    assert len(documents) == 3 and all(d["items"][0]["name"] == "checkout" for d in documents)


def test_status_errors_are_one_line(cluster: tuple[KubeSim, str]) -> None:
    _, kubeconfig = cluster
    missing = runner.invoke(app, ["status", "shop/nope", "--kubeconfig", kubeconfig])
    assert missing.exit_code == 4 and "Deployment shop/nope not found" in missing.output
    bad_ref = runner.invoke(app, ["status", "a/b/c", "--kubeconfig", kubeconfig])
    assert bad_ref.exit_code == 4 and "NAMESPACE/NAME" in bad_ref.output
    bad_output = runner.invoke(app, ["status", "-o", "xml", "--kubeconfig", kubeconfig])
    assert bad_output.exit_code == 4 and "Traceback" not in bad_output.output


def test_a_user_who_may_not_list_events_still_gets_the_view(cluster: tuple[KubeSim, str], tmp_path: Path) -> None:
    """RBAC as a developer often has it: Deployments, ReplicaSets and Pods readable; Events and ConfigMaps not."""
    sim, kubeconfig = cluster
    rolled_out_twice(sim, kubeconfig)
    sim.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "viewer", "namespace": "shop"},
                "rules": [{"apiGroups": ["apps"], "resources": ["deployments", "replicasets"],
                           "verbs": ["get", "list"]},
                          {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
    sim.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "viewer", "namespace": "shop"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
                "subjects": [{"kind": "User", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"}]})
    limited = str(sim.write_kubeconfig(tmp_path / "dev", token=sim.user_token("dev")))
    result = runner.invoke(app, ["status", "shop/checkout", "--kubeconfig", limited])
    assert result.exit_code == 0, result.output
    assert "◌ Analysing" in result.output and "# revision:2" in result.output
    assert "not allowed to list Events in namespace shop (403 Forbidden): not shown" in result.output
    assert "not allowed to list ConfigMaps" in result.output
    listed = runner.invoke(app, ["status", "-n", "shop", "--kubeconfig", limited])
    assert listed.exit_code == 0 and "shop/checkout" in listed.output
    everywhere = runner.invoke(app, ["status", "--kubeconfig", limited])  # may not list across namespaces
    assert everywhere.exit_code == 3 and "403 Forbidden" in everywhere.output and "Traceback" not in everywhere.output


def test_watch_outlives_a_deleted_deployment(cluster: tuple[KubeSim, str]) -> None:
    """The Deployment is deleted once the first frame has read it: the watch says so in place and goes on."""
    sim, kubeconfig = cluster
    rolled_out_twice(sim, kubeconfig)
    sim.clear_requests()
    path = "/apis/apps/v1/namespaces/shop/deployments/checkout"

    def delete_after_first_read() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(r.path == path for r in sim.requests):
            time.sleep(0.02)
        sim.delete("apps/v1", "deployments", "shop", "checkout")

    deleter = threading.Thread(target=delete_after_first_read)
    deleter.start()
    result = runner.invoke(app, ["status", "shop/checkout", "-w", "--interval", "1", "--updates", "1",
                                 "--kubeconfig", kubeconfig])
    deleter.join()
    assert result.exit_code == 0, result.output
    assert "Deployment shop/checkout not found (retrying every 1s)" in result.output


def test_the_forecast_says_what_happens_next() -> None:
    """The forecast is pure: a status and the SLO spec in, one line out."""
    from canary.config.slo import ServiceSLOSpec
    from canary.controller.status import FreezeCause
    from canary.controller.statusview import forecast

    spec = ServiceSLOSpec.model_validate({"service": "s", "analysis": {"interval": "30s", "successfulChecks": 5,
                                                                       "failedChecks": 3}})
    analysing = CanaryStatus(phase=CanaryPhase.ANALYSING, mode=Mode.GUARD, checks_passed=2)
    assert forecast(analysing, spec) == "promoted after 3 more passed checks (~1m30s)"
    failing = failing_status(datetime.now(UTC)).model_copy(update={"checks_failed": 1})
    assert forecast(failing, spec) == "rolled back after 2 more failed checks (~1m)"
    manual = ServiceSLOSpec.model_validate({"service": "s", "promote": "manual",
                                            "analysis": {"successfulChecks": 2}})
    canary = CanaryStatus(phase=CanaryPhase.ANALYSING, mode=Mode.CANARY, checks_passed=2)
    assert forecast(canary, manual) == "waiting for a manual promotion (canary promote NAMESPACE/NAME)"
    frozen = CanaryStatus(phase=CanaryPhase.FROZEN, mode=Mode.GUARD, freeze_cause=FreezeCause.BACKEND)
    assert "metrics backend is down" in forecast(frozen, spec)
    assert forecast(CanaryStatus(phase=CanaryPhase.ROLLED_BACK, mode=Mode.GUARD), spec) == "done: rolled back"


def test_canary_mode_shows_the_baseline(cluster: tuple[KubeSim, str]) -> None:
    sim, kubeconfig = cluster
    deployment(sim, "cart", {}, image="shop/cart:v1")
    st = CanaryStatus(phase=CanaryPhase.ANALYSING, mode=Mode.CANARY, started_at=datetime.now(UTC))
    deployment(sim, "cart-canary", {"canary.mop.dev/enabled": "true", "canary.mop.dev/baseline": "cart",
                                    STATUS_ANNOTATION: st.to_annotation()}, image="shop/cart:v2")
    deployment(sim, "lost-canary", {"canary.mop.dev/enabled": "true", "canary.mop.dev/baseline": "lost"})
    sim.step_rollouts()
    result = runner.invoke(app, ["status", "shop/cart-canary", "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("Baseline:"))
    cart = sim.get("apps/v1", "deployments", "shop", "cart")
    assert cart is not None
    assert f"Deployment cart  {cart['status'].get('readyReplicas', 0)}/3 ready" in line and "shop/cart:v1" in line
    document = json.loads(runner.invoke(app, ["status", "shop/cart-canary", "-o", "json", "--kubeconfig",
                                              kubeconfig]).output)
    assert document["items"][0]["baseline"]["images"] == ["shop/cart:v1"]
    lost = runner.invoke(app, ["status", "shop/lost-canary", "--kubeconfig", kubeconfig])
    assert "Baseline:      Deployment lost not found" in lost.output


def test_an_undecided_canary_shows_its_estimates_bounds_and_time_to_a_decision() -> None:
    """Judge v2: an inconclusive check says why the canary waits, in `canary status`'s forecast."""
    import sys
    from pathlib import Path

    from canary.config.slo import ServiceSLOSpec
    from canary.controller.statusview import forecast
    from canary.judge import judge

    sys.path.insert(0, str(Path(__file__).parents[1] / "judge"))
    from judge_samples import measurement, red

    spec = ServiceSLOSpec.model_validate({"service": "s", "objectives": {"availability": 99.5}})
    verdict = judge(measurement(red(300, 1), red(300, 1)), spec)
    quiet = CanaryStatus(phase=CanaryPhase.ANALYSING, mode=Mode.GUARD, last_verdict=verdict)
    text = forecast(quiet, spec)
    assert text.startswith("waiting for evidence: availability 0.33% [0.00%, ")
    assert "promotion in ~" in text and "a 2x breach would be caught in ~" in text


def test_a_rolled_back_canary_shows_its_root_cause_evidence(cluster: tuple[KubeSim, str]) -> None:
    from canary.evidence.model import Evidence, LogRef, RollbackEvidence, RouteStat, TraceRef

    sim, kubeconfig = cluster
    now = datetime.now(UTC)
    evidence = Evidence(
        start=now - timedelta(minutes=2), end=now, routes_source="metrics",
        routes=(RouteStat(route="POST /api/orders", canary_requests=400, canary_errors=96, baseline_requests=900,
                          baseline_errors=1, regressed=True),),
        traces=(TraceRef(trace_id="4bf92f3577b34da6a3ce929d0e0e4736", cause="INSERT orders: deadlock"),),
        logs=(LogRef(at=now, pod="checkout-v3-abc", line="ERROR deadlock detected"),),
    )
    st = CanaryStatus(phase=CanaryPhase.ROLLED_BACK, mode=Mode.GUARD, message="rollback complete",
                      updated_at=now, evidence=RollbackEvidence(revision="3f2a", at=now, evidence=evidence))
    deployment(sim, "checkout", {"canary.mop.dev/enabled": "true", STATUS_ANNOTATION: st.to_annotation()})
    result = runner.invoke(app, ["status", "shop/checkout", "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Root cause of the last rollback (template 3f2a, " in out
    assert "REGRESSED" in out and "POST /api/orders" in out
    assert "4bf92f3577b34da6a3ce929d0e0e4736  INSERT orders: deadlock" in out
    assert "checkout-v3-abc: ERROR deadlock detected" in out
    document = json.loads(runner.invoke(app, ["status", "shop/checkout", "-o", "json", "--kubeconfig",
                                              kubeconfig]).output)
    (item,) = document["items"]
    assert item["evidence"]["revision"] == "3f2a"
    assert item["evidence"]["evidence"]["routes"][0]["route"] == "POST /api/orders"
