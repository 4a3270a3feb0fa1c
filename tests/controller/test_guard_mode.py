"""Guard mode end to end: the production controller against the simulated cluster and a real
Prometheus scraping generated traffic. Each test uses its own namespace."""

from __future__ import annotations

from canary.controller.status import CanaryStatus
from canary.vocabulary import CanaryPhase
from tests.controller.harness import Cluster, wait_for

ENABLED = {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"}


def setup(env: Cluster, ns: str, name: str = "checkout", **annotations: str) -> str:
    env.namespace(ns)
    env.slo(ns, "checkout", service=name)
    env.deployment(ns, name, "v1", annotations={**ENABLED, **annotations})
    env.wait_phase(ns, name, "Succeeded")
    return name


def test_bad_canary_is_held_then_rolled_back_within_failed_checks(env: Cluster) -> None:
    ns = env.namespace("guard-bad")
    with env.controller():
        name = setup(env, ns)
        stable = env.status(ns, name)
        assert stable is not None
        env.set_image(ns, name, "bad")
        analysing = env.wait_phase(ns, name, "Analysing")
        assert env.get(ns, name)["spec"].get("paused") is True, "the rollout is held at its first step"
        assert analysing.template_hash != stable.template_hash
        rolled = env.wait_phase(ns, name, "RollingBack", "RolledBack")
        assert rolled.checks_failed == 2, "rolled back after exactly failedChecks consecutive failures"
        assert analysing.template_hash in rolled.rejected
        assert rolled.last_verdict is not None and rolled.last_verdict.phase.value == "fail"
        assert any(c.name == "availability" and c.result.value == "fail" for c in rolled.last_verdict.checks)
        assert env.image(ns, name) == "v1", "the previous pod template is written back"
        env.wait_phase(ns, name, "RolledBack")
        assert len(env.wait_events(ns, name, "RolledBack")) == 1
        assert not env.get(ns, name)["spec"].get("paused")


def test_healthy_canary_is_promoted_and_completes(env: Cluster) -> None:
    ns = env.namespace("guard-healthy")
    with env.controller():
        name = setup(env, ns)
        env.set_image(ns, name, "v2")
        env.wait_phase(ns, name, "Analysing")
        promoting = env.wait_phase(ns, name, "Promoting", "Succeeded")
        assert promoting.checks_passed >= 3 and promoting.checks_failed == 0
        done = env.wait_phase(ns, name, "Succeeded")
        assert done.stable_hash == done.template_hash
        assert env.image(ns, name) == "v2"
        dep = env.get(ns, name)
        assert dep["status"].get("updatedReplicas") == dep["spec"]["replicas"]
        assert env.wait_events(ns, name, "Promoted")


def test_low_traffic_canary_is_never_rolled_back(env: Cluster) -> None:
    ns = env.namespace("guard-quiet")
    with env.controller():
        name = setup(env, ns)
        env.set_image(ns, name, "quiet")
        env.wait_phase(ns, name, "Analysing")
        writes = env.writes_to(ns, name)
        st = wait_for("six checks on the quiet canary", lambda: _looked(env, ns, name, 6))
        assert env.writes_to(ns, name) - writes <= 8, "one status write per check, no write loop in between"
        assert st is not None and st.phase is CanaryPhase.ANALYSING and st.checks_failed == 0
        assert st.last_verdict is not None and st.last_verdict.phase.value == "inconclusive"
        assert env.image(ns, name) == "quiet"


def _looked(env: Cluster, ns: str, name: str, looks: int) -> CanaryStatus | None:
    st = env.status(ns, name)
    return st if st is not None and st.looks >= looks else None


def test_template_changed_mid_analysis_restarts_the_analysis(env: Cluster) -> None:
    ns = env.namespace("guard-retemplate")
    with env.controller():
        name = setup(env, ns)
        env.set_image(ns, name, "bad")
        first = env.wait_phase(ns, name, "Analysing")
        env.set_image(ns, name, "v2")

        def restarted() -> bool:
            st = env.status(ns, name)
            return st is not None and st.template_hash != first.template_hash
        wait_for("a new analysis of the new template", restarted)
        st = env.wait_phase(ns, name, "Promoting", "Succeeded", timeout=120)
        assert st.checks_failed == 0 and env.image(ns, name) == "v2"
        assert first.template_hash not in st.rejected


def test_rejected_template_reapplied_is_frozen_once(env: Cluster) -> None:
    ns = env.namespace("guard-reapply")
    with env.controller():
        name = setup(env, ns)
        env.set_image(ns, name, "bad")
        env.wait_phase(ns, name, "RolledBack")
        env.set_image(ns, name, "bad")  # a GitOps tool re-syncs the rejected template
        frozen = env.wait_phase(ns, name, "Frozen")
        assert frozen.freeze_cause is not None and frozen.freeze_cause.value == "rejected-template"
        assert env.get(ns, name)["spec"].get("paused") is True
        env.set_image(ns, name, "v1")
        env.set_image(ns, name, "bad")  # and again
        env.wait_phase(ns, name, "Frozen")
        assert len(env.wait_events(ns, name, "RolledBack")) == 1, "never rolled back in a loop"
        assert env.image(ns, name) == "bad"


def test_invalid_annotation_is_reported_and_nothing_changes(env: Cluster) -> None:
    ns = env.namespace("guard-invalid")
    env.slo(ns, "checkout", service="checkout")
    with env.controller():
        env.deployment(ns, "broken", "v1", annotations={**ENABLED, "canary.mop.dev/failed-checks": "many"})
        env.deployment(ns, "unknown-slo", "v1", annotations={"canary.mop.dev/enabled": "true",
                                                              "canary.mop.dev/slo": "nope"})
        st = env.wait_phase(ns, "broken", "Invalid")
        assert "canary.mop.dev/failed-checks" in st.message
        (event,) = env.wait_events(ns, "broken", "InvalidConfig")
        assert event["type"] == "Warning" and "canary.mop.dev/failed-checks" in event["message"]
        st2 = env.wait_phase(ns, "unknown-slo", "Invalid")
        assert "nope" in st2.message
        assert not env.get(ns, "broken")["spec"].get("paused")
        # A ServiceSLO its author almost surely got wrong (99.5% written as a fraction) is refused, and the
        # Deployment that names it says why, with the ConfigMap and the field.
        env.slo(ns, "fraction", service="checkout", objectives={"availability": 0.995})
        env.deployment(ns, "fraction-slo", "v1", annotations={**ENABLED, "canary.mop.dev/slo": "fraction"})
        st3 = env.wait_phase(ns, "fraction-slo", "Invalid")
        assert f"ConfigMap {ns}/slo-fraction" in st3.message and "spec.objectives.availability" in st3.message
        assert "did you mean 99.5?" in st3.message


def test_deployments_without_the_annotation_are_never_touched(env: Cluster) -> None:
    ns = env.namespace("guard-untouched")
    env.sim.clear_requests()
    with env.controller():
        env.deployment(ns, "plain", "v1")
        env.deployment(ns, "optout", "v1", annotations={"canary.mop.dev/enabled": "false"})
        setup(env, ns, "guarded")
        env.set_image(ns, "plain", "bad")
        env.set_image(ns, "optout", "bad")
        env.set_image(ns, "guarded", "v2")
        wait_for("checks on the guarded canary", lambda: _looked(env, ns, "guarded", 2))
        assert env.writes_to(ns, "guarded") > 0
        assert env.writes_to(ns, "plain") == 0 and env.writes_to(ns, "optout") == 0
        for name in ("plain", "optout"):
            annotations = env.get(ns, name)["metadata"].get("annotations") or {}
            assert "canary.mop.dev/status" not in annotations
            assert not env.events(ns, name)
