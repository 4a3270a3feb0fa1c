"""No split brain and no runaway scheduling (issue 10, defects 7 and 8): leadership lost during a tick
writes nothing, two replicas that both lead never count a look twice, intervals have a floor and tick
jobs go with the Deployments that need them."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from canary.controller.app import ControllerApp
from canary.controller.machine import Decision
from canary.controller.status import CanaryStatus
from canary.notify.settings import DeliveryPolicy
from canary_testkit.faults import Fault, FaultConfig, FaultServer
from tests.controller.harness import Cluster, wait_for

ENABLED = {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"}


def test_leadership_lost_mid_tick_writes_nothing(env: Cluster) -> None:
    """The tick's queries are held 3 s by the backend; meanwhile another replica takes the Lease."""
    ns = env.namespace("hard-fence")
    env.slo(ns, "checkout", service="checkout")
    env.deployment(ns, "checkout", "v1", annotations={**ENABLED, "canary.mop.dev/failed-checks": "5"})
    lease = {"leader_elect": True, "lease_duration_seconds": 3, "renew_deadline_seconds": 2,
             "retry_period_seconds": 0.3, "lease_namespace": env.identity.namespace, "lease_name": "fence"}
    with FaultServer(FaultConfig(upstream=env.prometheus.url)) as mimir, \
            env.controller(identity="a", mimir_url=mimir.url, **lease) as app:
        env.wait_phase(ns, "checkout", "Succeeded")
        env.roll_out(ns, "checkout", "bad", "Analysing")
        mimir.configure(FaultConfig(fault=Fault.DELAY, delay=3.0, upstream=env.prometheus.url))
        asked = len(mimir.requests)
        wait_for("a check's query held by the backend", lambda: len(mimir.requests) > asked, timeout=10, every=0.02)
        before, writes = env.status(ns, "checkout"), env.writes_to(ns, "checkout")
        env.sim.patch("coordination.k8s.io/v1", "leases", env.identity.namespace, "fence",
                      {"spec": {"holderIdentity": "b", "leaseDurationSeconds": 600}})
        wait_for("leadership lost", lambda: not app.runtime.is_leader, timeout=5, every=0.05)
        time.sleep(3.5)  # the held queries come back: the tick's decisions must not be written
        assert env.writes_to(ns, "checkout") == writes
        assert env.status(ns, "checkout") == before
        assert env.image(ns, "checkout") == "bad", "no rollback by a replica that no longer leads"


@contextmanager
def replica(env: Cluster, identity: str, seen: list[tuple[str, CanaryStatus]]) -> Iterator[ControllerApp]:
    def hook(_: Any, decision: Decision, status: CanaryStatus, outcome: Any) -> None:
        if outcome is not None:
            seen.append((identity, status))

    app = ControllerApp(env.settings(identity=identity), delivery=DeliveryPolicy(min_interval=0.05),
                        on_decision=hook)
    app.start(sync_timeout=10)
    try:
        yield app
    finally:
        app.stop()


def test_two_leaders_never_count_a_look_twice(env: Cluster) -> None:
    """Two replicas without leader election both lead (a split brain); each tick of each measures."""
    ns = env.namespace("hard-split")
    env.slo(ns, "checkout", service="checkout")
    env.deployment(ns, "checkout", "v1", annotations={**ENABLED, "canary.mop.dev/failed-checks": "50",
                                                      "canary.mop.dev/successful-checks": "50"})
    seen: list[tuple[str, CanaryStatus]] = []
    with replica(env, "a", seen) as a, replica(env, "b", seen) as b:
        env.wait_phase(ns, "checkout", "Succeeded")
        env.roll_out(ns, "checkout", "bad", "Analysing")
        wait_for("six counted looks", lambda: (s := env.status(ns, "checkout")) is not None and s.looks >= 6,
                 timeout=60)
        assert a.runtime.ticks > 3 and b.runtime.ticks > 3, "both replicas kept checking"
        final = env.status(ns, "checkout")
    assert final is not None
    counted = sorted({(s.looks, s.last_check_at) for _, s in seen
                      if s.last_check_at is not None and s.started_at == final.started_at}, key=lambda item: item[0])
    looks = [n for n, _ in counted]
    assert looks == sorted(set(looks)), f"a look number was written twice: {looks}"
    gaps = [(b - a).total_seconds() for (_, a), (_, b) in itertools.pairwise(counted) if a and b]
    assert gaps and min(gaps) >= 1.0, f"two looks within half an interval (2s): {gaps}"


def test_interval_floor_and_tick_jobs_follow_the_deployments(env: Cluster) -> None:
    ns = env.namespace("hard-ticks")
    env.slo(ns, "checkout", service="checkout")
    interval = "canary.mop.dev/interval"
    with env.controller(min_interval_seconds=2.0) as app:
        env.deployment(ns, "fast", "v1", app="checkout", annotations={**ENABLED, interval: "1s"})
        env.deployment(ns, "faster", "v1", annotations={**ENABLED, interval: "500ms"})
        env.deployment(ns, "four", "v1", annotations={**ENABLED, interval: "4s"})
        env.deployment(ns, "nearly-four", "v1", annotations={**ENABLED, interval: "4.0000001s"})
        env.deployment(ns, "tiny", "v1", annotations={**ENABLED, interval: "1ms"})
        wait_for("one job per distinct interval, the fast ones at the floor",
                 lambda: app.runtime.tick_intervals == [2.0, 4.0, 4.0000001])
        assert "shorter than 0.5s" in env.wait_phase(ns, "tiny", "Invalid").message
        env.wait_phase(ns, "nearly-four", "Succeeded")
        env.sim.delete("apps/v1", "deployments", ns, "four")
        wait_for("the job of a deleted Deployment removed", lambda: app.runtime.tick_intervals == [2.0, 4.0000001])
        env.annotate(ns, "nearly-four", {"canary.mop.dev/enabled": "false"})
        wait_for("the job of an opted-out Deployment removed", lambda: app.runtime.tick_intervals == [2.0])
        st = env.roll_out(ns, "fast", "v2", "Succeeded", "RolledBack", timeout=120)
        assert st.phase.value == "Succeeded", "a floored interval still analyses"
