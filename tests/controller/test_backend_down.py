"""Prometheus down: the canary is held (frozen, alert), never rolled back, and no Deployment is
written on a guess. This module stops its own Prometheus, so it has its own cluster."""

from __future__ import annotations

from tests.controller.harness import Cluster, wait_for


def test_backend_down_holds_and_never_rolls_back(env: Cluster) -> None:
    ns = "down"
    env.namespace(ns)
    env.slo(ns, "checkout", service="checkout", slack=True)
    env.deployment(ns, "checkout", "v1",
                   annotations={"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"})
    with env.controller():
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "bad")
        analysing = env.wait_phase(ns, "checkout", "Analysing")
        env.prometheus.stop()
        frozen = env.wait_phase(ns, "checkout", "Frozen")
        assert frozen.freeze_cause is not None and frozen.freeze_cause.value == "backend-down"
        assert frozen.backend_errors >= 2 and frozen.template_hash == analysing.template_hash
        assert frozen.rejected == [], "a backend outage is never a reason to roll back"
        assert env.image(ns, "checkout") == "bad" and env.get(ns, "checkout")["spec"].get("paused") is True
        assert frozen.last_verdict is not None and frozen.last_verdict.phase.value == "error"
        assert "mimir" in frozen.last_verdict.message
        (event,) = env.wait_events(ns, "checkout", "BackendDown")
        assert event["type"] == "Warning"
        wait_for("the backend-down message", lambda: [m for m in env.slack_messages(ns, "checkout")
                                                      if "backend" in m["text"].lower()])
        assert not env.events(ns, "checkout", "RolledBack")
