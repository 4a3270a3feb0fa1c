"""Canary mode: a separate canary Deployment compared with its baseline Deployment by name."""

from __future__ import annotations

from tests.controller.harness import Cluster, wait_for


def setup(env: Cluster, ns: str, **annotations: str) -> None:
    env.namespace(ns)
    env.slo(ns, "cart", service="cart", slack=True)
    env.deployment(ns, "cart", "v1", replicas=4, annotations={})
    env.deployment(ns, "cart-canary", "v1", replicas=1, app="cart", annotations={
        "canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "cart", "canary.mop.dev/baseline": "cart",
        **annotations,
    })
    env.wait_phase(ns, "cart-canary", "Succeeded")


def test_bad_canary_is_scaled_to_zero_and_reported(env: Cluster) -> None:
    ns = "canary-bad"
    with env.controller():
        setup(env, ns)
        env.set_image(ns, "cart-canary", "bad")
        rolled = env.wait_phase(ns, "cart-canary", "RollingBack", "RolledBack")
        assert rolled.checks_failed == 2 and rolled.replicas_before == 1
        env.wait_phase(ns, "cart-canary", "RolledBack")
        assert env.get(ns, "cart-canary")["spec"]["replicas"] == 0
        assert env.image(ns, "cart") == "v1", "the baseline is never touched by a rollback"
        (message,) = wait_for("the Slack message", lambda: env.slack_messages(ns, "cart-canary"))
        assert "rolled back" in message["text"] and "availability" in str(message["blocks"])
        # The next rollout gets its replicas back.
        env.set_image(ns, "cart-canary", "v2")
        env.wait_phase(ns, "cart-canary", "Analysing", "Promoting", "Succeeded")
        assert env.get(ns, "cart-canary")["spec"]["replicas"] == 1


def test_healthy_canary_is_copied_into_the_baseline(env: Cluster) -> None:
    ns = "canary-healthy"
    with env.controller():
        setup(env, ns)
        done = env.roll_out(ns, "cart-canary", "v2", "Succeeded")
        assert done.checks_passed >= 3
        assert env.image(ns, "cart") == "v2"
        labels = env.get(ns, "cart")["spec"]["template"]["metadata"]["labels"]
        assert labels["deployment"] == "cart", "the baseline keeps its own pod labels (its selector)"
        assert env.wait_events(ns, "cart-canary", "Promoted")


def test_manual_promotion_waits_for_the_annotation(env: Cluster) -> None:
    ns = "canary-manual"
    env.namespace(ns)
    env.slo(ns, "cart", service="cart", promote="manual")
    env.deployment(ns, "cart", "v1", replicas=4)
    env.deployment(ns, "cart-canary", "v1", replicas=1, app="cart", annotations={
        "canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "cart", "canary.mop.dev/baseline": "cart"})
    with env.controller():
        env.wait_phase(ns, "cart-canary", "Succeeded")
        env.set_image(ns, "cart-canary", "v2")
        waiting = env.wait_phase(ns, "cart-canary", "Promoting", timeout=120)
        assert waiting.checks_passed >= 3
        wait_for("two more checks while waiting", lambda: (s := env.status(ns, "cart-canary")) is not None
                 and s.looks >= waiting.looks + 2)
        assert env.image(ns, "cart") == "v1", "manual: nothing is copied without the annotation"
        env.annotate(ns, "cart-canary", {"canary.mop.dev/promote": "true"})
        env.wait_phase(ns, "cart-canary", "Succeeded")
        assert env.image(ns, "cart") == "v2"
        assert "canary.mop.dev/promote" not in env.get(ns, "cart-canary")["metadata"]["annotations"]
