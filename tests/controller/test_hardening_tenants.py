"""One tenant never hurts another (issue 10): a hostile status annotation, an SLO claimed from another
namespace and a neighbour whose queries fail leave every other canary its verdicts."""

from __future__ import annotations

import httpx
import yaml

from tests.controller.harness import SLO_TEMPLATE, Cluster, wait_for

ENABLED = {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"}
DEEP = "[" * 1000 + "]" * 1000


def test_a_hostile_status_annotation_on_an_unrelated_deployment_stops_nothing(env: Cluster) -> None:
    ns = env.namespace("hard-hostile")
    env.slo(ns, "checkout", service="checkout")
    env.deployment(ns, "checkout", "v1", annotations=ENABLED)
    env.deployment(ns, "unrelated", "v1", annotations={"canary.mop.dev/status": DEEP})
    env.deployment(ns, "opted-in", "v1", annotations={**ENABLED, "canary.mop.dev/status": DEEP})
    with env.controller() as app:
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "RolledBack")
        assert env.image(ns, "checkout") == "v1", "the guarded Deployment is still guarded"
        assert app.runtime.alive
        assert httpx.get(f"http://127.0.0.1:{app.health.port}/healthz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{app.health.port}/metrics").status_code == 200
    unrelated = env.get(ns, "unrelated")["metadata"]["annotations"]
    assert unrelated["canary.mop.dev/status"] == DEEP, "a Deployment that did not opt in is never written"


def test_an_slo_claimed_from_another_namespace_is_an_error_not_a_takeover(env: Cluster) -> None:
    ns = env.namespace("hard-shop")
    attacker = env.namespace("aaa-attacker")
    hostile = {**SLO_TEMPLATE, "metadata": {"name": "checkout", "namespace": ns},
               "spec": {**SLO_TEMPLATE["spec"], "service": "checkout", "objectives": {"availability": 100},
                        "analysis": {"interval": "2s", "window": "8s", "minRequests": 1, "failedChecks": 1}}}
    env.sim.create({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "takeover", "namespace": attacker, "labels": {"canary.mop.dev/slo-config": "true"}},
        "data": {"slo.yaml": yaml.safe_dump(hostile)},
    })
    env.slo(ns, "checkout", service="checkout")
    env.deployment(ns, "checkout", "v1", annotations=ENABLED)
    with env.controller() as app:
        env.wait_phase(ns, "checkout", "Succeeded")
        st = env.roll_out(ns, "checkout", "v2", "Succeeded", "RolledBack")
        assert st.phase.value == "Succeeded" and env.image(ns, "checkout") == "v2", st.message
        errors = [str(e) for e in app.slos.errors()]
        assert any("ConfigMap aaa-attacker/takeover" in e and "metadata.namespace" in e for e in errors), errors
    assert env.get(ns, "checkout")["spec"]["replicas"] == 4


def test_a_neighbour_whose_queries_fail_leaves_a_healthy_canary_its_verdicts(env: Cluster) -> None:
    ns = env.namespace("hard-neighbour")
    env.slo(ns, "checkout", service="checkout")
    broken = "sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name, le) (nosuchfunc(x[$window]))"
    env.slo(ns, "broken", service="broken",
            metrics={"preset": "custom", "queries": {"requests": broken, "errors": broken, "latencyBuckets": broken}},
            analysis={**SLO_TEMPLATE["spec"]["analysis"], "onBackendFailure": "rollback"})  # type: ignore[dict-item]
    env.deployment(ns, "checkout", "v1", annotations=ENABLED)
    env.deployment(ns, "broken", "v1", annotations={"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "broken"})
    with env.controller():
        env.wait_phase(ns, "checkout", "Succeeded")
        env.wait_phase(ns, "broken", "Succeeded")
        env.set_image(ns, "broken", "v2")
        st = env.roll_out(ns, "checkout", "v2", "Succeeded", "RolledBack", "Frozen")
        assert st.phase.value == "Succeeded", st.message
        assert st.last_verdict is not None and st.last_verdict.phase.value == "pass"
        neighbour = wait_for("the neighbour's backend error", lambda: (
            (s := env.status(ns, "broken")) is not None and s.last_verdict is not None and s))
        assert neighbour.last_verdict is not None and neighbour.last_verdict.phase.value == "error"
        assert "nosuchfunc" in neighbour.last_verdict.message
