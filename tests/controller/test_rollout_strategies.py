"""Guard mode under the deployment controller's real rollout semantics (as the simulated cluster now
rolls out): with `maxSurge: 1` the canary ReplicaSet starts with its surge pod; with `maxSurge: 0,
maxUnavailable: 1` old pods go first and it starts at 0, and a paused Deployment never rolls forward,
so the controller holds the rollout only once the canary has a pod. A `Recreate` Deployment has no
canary step: Invalid in guard mode, and left alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controller.harness import Cluster, wait_for

ENABLED = {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"}


def replicas_by_image(env: Cluster, ns: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for rs in env.sim.list("apps/v1", "replicasets", ns):
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
        out[image] = out.get(image, 0) + int(rs["spec"].get("replicas", 0))
    return out


def strategy(max_surge: int, max_unavailable: int) -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}}


@pytest.mark.parametrize(("max_surge", "max_unavailable"), [(1, 0), (0, 1)], ids=["maxSurge1", "maxSurge0"])
def test_the_canary_gets_a_pod_is_analysed_and_rolled_back(
    env: Cluster, max_surge: int, max_unavailable: int
) -> None:
    ns = env.namespace(f"strategy-surge-{max_surge}")
    env.slo(ns, "checkout", service="checkout")
    env.deployment(ns, "checkout", "v1", annotations=ENABLED, strategy=strategy(max_surge, max_unavailable))
    with env.controller():
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "Analysing")
        assert env.get(ns, "checkout")["spec"].get("paused") is True, "held once the canary has a pod"
        held = replicas_by_image(env, ns)
        assert held["bad"] >= 1, held
        assert 4 <= held["bad"] + held["v1"] <= 4 + max_surge, held
        rolled = env.wait_phase(ns, "checkout", "RolledBack")
        assert rolled.checks_failed == 2 and rolled.last_verdict is not None
        assert rolled.last_verdict.phase.value == "fail"
        assert env.image(ns, "checkout") == "v1"
        wait_for("no pod left on the rejected template", lambda: replicas_by_image(env, ns)["bad"] == 0)
        assert replicas_by_image(env, ns)["v1"] == 4


def test_a_recreate_deployment_is_invalid_in_guard_mode_and_left_alone(env: Cluster) -> None:
    ns = env.namespace("strategy-recreate")
    env.slo(ns, "checkout", service="checkout")
    env.deployment(ns, "checkout", "v1", annotations=ENABLED, strategy={"type": "Recreate"})
    with env.controller():
        invalid = env.wait_phase(ns, "checkout", "Invalid")
        assert "spec.strategy.type: Recreate" in invalid.message and "RollingUpdate" in invalid.message
        (event,) = env.wait_events(ns, "checkout", "InvalidConfig")
        assert event["type"] == "Warning" and "Recreate" in event["message"]
        env.set_image(ns, "checkout", "v2")
        wait_for("the rollout completes untouched", lambda: replicas_by_image(env, ns).get("v2") == 4)
        assert not env.get(ns, "checkout")["spec"].get("paused")
