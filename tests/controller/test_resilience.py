"""What must hold when things go wrong: a backend down, a controller killed mid-analysis, write
conflicts, a leader that dies, manual aborts."""

from __future__ import annotations

import re
import threading
import time

import httpx

from canary_testkit.slack import Reply
from tests.controller.harness import Cluster, wait_for

ENABLED = {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"}


def guarded(env: Cluster, ns: str, **annotations: str) -> None:
    env.namespace(ns)
    env.slo(ns, "checkout", service="checkout", slack=True)
    env.deployment(ns, "checkout", "v1", annotations={**ENABLED, **annotations})


def test_controller_killed_mid_analysis_resumes_with_the_same_counts_and_rolls_back_once(env: Cluster) -> None:
    ns = "res-restart"
    guarded(env, ns, **{"canary.mop.dev/failed-checks": "3"})
    with env.controller() as first:
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "bad")
        wait_for("one failed check", lambda: (s := env.status(ns, "checkout")) is not None and s.checks_failed == 1)
        first.stop(release_lease=False)  # killed: nothing more is written by it
        before = env.status(ns, "checkout")
        assert before is not None and before.checks_failed in (1, 2)
        assert before.cumulative is not None and before.cumulative.red is not None
    # A new process reads the counts and the evidence back from the annotation.
    with env.controller():
        rolled = env.wait_phase(ns, "checkout", "RolledBack")
        assert rolled.checks_failed == 3
        assert rolled.looks >= before.looks + 1
        kept = rolled.cumulative
        assert kept is not None and kept.red is not None and kept.red.canary is not None
        assert kept.since == before.cumulative.since, "the evidence goes on from the same start"
        assert kept.increments >= before.cumulative.increments
        assert before.cumulative.red.canary is not None
        assert kept.red.canary.requests >= before.cumulative.red.canary.requests
        # the undo can complete at once (the stable ReplicaSet still runs its pods): let the message be
        # delivered and recorded before this process stops, as a graceful stop after it would
        wait_for("the rollback message recorded as delivered",
                 lambda: (s := env.status(ns, "checkout")) is not None and not s.outbox and s.delivered)
    with env.controller():  # and a third start repeats nothing
        wait_for("a resync", lambda: True)
        env.wait_phase(ns, "checkout", "RolledBack")
    assert len(env.wait_events(ns, "checkout", "RolledBack")) == 1
    assert len([m for m in env.slack_messages(ns, "checkout") if "rolled back" in m["text"]]) == 1


def test_conflicting_write_on_rollback_is_retried_and_rolls_back_once(env: Cluster) -> None:
    ns = "res-conflict"
    guarded(env, ns)
    with env.controller():
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "Analysing")
        env.sim.fail_next(f"PATCH /apis/apps/v1/namespaces/{ns}/deployments/checkout", status=409, times=2)
        env.wait_phase(ns, "checkout", "RolledBack")
        assert env.image(ns, "checkout") == "v1"
        assert len(env.wait_events(ns, "checkout", "RolledBack")) == 1


def test_abort_annotation_rolls_back_now(env: Cluster) -> None:
    ns = "res-abort"
    guarded(env, ns, **{"canary.mop.dev/successful-checks": "50"})
    with env.controller():
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "v2")
        env.wait_phase(ns, "checkout", "Analysing")
        env.annotate(ns, "checkout", {"canary.mop.dev/abort": "true"})
        st = env.wait_phase(ns, "checkout", "RollingBack", "RolledBack")
        assert st.checks_failed == 0, "aborted by hand, not by a failed check"
        assert env.image(ns, "checkout") == "v1"
        assert "canary.mop.dev/abort" not in env.get(ns, "checkout")["metadata"]["annotations"]


def test_leader_failover_within_the_lease(env: Cluster) -> None:
    ns = "res-leader"
    guarded(env, ns)
    lease = {"leader_elect": True, "lease_duration_seconds": 3, "renew_deadline_seconds": 2,
             "retry_period_seconds": 0.5, "lease_namespace": env.identity.namespace}
    with env.controller(identity="a", **lease) as a, env.controller(identity="b", **lease) as b:
        leaders = wait_for("one leader", lambda: [x for x in (a, b) if x.runtime.is_leader] or None)
        assert len(leaders) == 1
        (leader,) = leaders
        standby = b if leader is a else a
        env.wait_phase(ns, "checkout", "Succeeded")
        ready = httpx.get(f"http://127.0.0.1:{standby.health.port}/readyz").text
        assert "standby" in ready
        leader.stop(release_lease=False)  # dies without releasing the Lease
        wait_for("the standby to take over", lambda: standby.runtime.is_leader, timeout=15)
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "RolledBack")


def test_metrics_and_health_endpoints(env: Cluster) -> None:
    ns = "res-metrics"
    guarded(env, ns)
    with env.controller() as app:
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "RolledBack")
        base = f"http://127.0.0.1:{app.health.port}"
        assert httpx.get(base + "/healthz").status_code == 200
        assert httpx.get(base + "/readyz").status_code == 200
        text = httpx.get(base + "/metrics").text
        assert f'canary_rollbacks_total{{action="undo",deployment="checkout",namespace="{ns}"}} 1.0' in text
        assert "canary_backend_query_seconds_bucket" in text
        assert 'canary_canaries{phase="RolledBack"}' in text
        # per Deployment: phase, checks by result, last values, decision time; gone with the Deployment
        series = f'deployment="checkout",namespace="{ns}"'
        assert f'canary_phase{{{series},phase="RolledBack"}} 1.0' in text
        assert f'canary_phase{{{series},phase="Analysing"}} 0.0' in text
        def value(name: str) -> float:
            match = re.search(re.escape(name) + r" ([0-9.e+-]+)\n", text)
            assert match, f"no {name} in /metrics"
            return float(match.group(1))

        assert value(f'canary_checks_total{{{series},result="fail"}}') >= 2
        assert value(f'canary_last_value{{check="availability",{series}}}') > 0.1, "the bad canary's error rate"
        assert f"canary_decision_seconds_count{{{series}}}" in text
        assert f"canary_phase_since_timestamp_seconds{{{series}}}" in text
        env.sim.delete("apps/v1", "deployments", ns, "checkout")
        wait_for("the Deployment's series to go", lambda: series not in httpx.get(base + "/metrics").text)


def test_undelivered_rollback_message_is_sent_once_after_a_restart(env: Cluster) -> None:
    ns = "res-slack-down"
    guarded(env, ns)
    env.slack.set_default(Reply.server_error())
    try:
        with env.controller():
            env.wait_phase(ns, "checkout", "Succeeded")
            env.set_image(ns, "checkout", "bad")
            rolled = env.wait_phase(ns, "checkout", "RolledBack")
            assert [e.type.value for e in rolled.outbox] == ["rolled-back"], "due, not delivered"
            assert env.image(ns, "checkout") == "v1", "the rollback never waits for Slack"
    finally:
        env.slack.set_default(Reply.ok())
    with env.controller():
        (message,) = wait_for("the message after the restart", lambda: env.slack_messages(ns, "checkout"))
        assert "rolled back" in message["text"]
        wait_for("the delivery recorded", lambda: (s := env.status(ns, "checkout")) is not None and not s.outbox)
    with env.controller():
        env.wait_phase(ns, "checkout", "RolledBack")
    assert len(env.slack_messages(ns, "checkout")) == 1


def test_a_message_sent_while_the_controller_stops_is_recorded_and_never_sent_again(env: Cluster) -> None:
    """A clean stop (a rolling update of the controller) waits for the message under way and records its
    delivery while it still leads, so the next leader does not send it a second time."""
    ns = "res-stop-sending"
    guarded(env, ns)
    env.slack.set_default(Reply.hang_up())  # Slack holds the request until released
    try:
        with env.controller() as app:
            env.wait_phase(ns, "checkout", "Succeeded")
            env.set_image(ns, "checkout", "bad")
            env.wait_phase(ns, "checkout", "RolledBack")
            assert env.slack.wait_for(1, 30), "the rollback message is on its way"
            stopping = threading.Thread(target=app.stop)
            stopping.start()
            time.sleep(0.5)  # the stop has begun while Slack still holds the message
            env.slack.release()
            stopping.join(30)
            assert not stopping.is_alive()
            status = env.status(ns, "checkout")
            assert status is not None and not status.outbox, "recorded as delivered before the lease was let go"
            assert [str(k).split("|")[0].rsplit(":", 1)[1] for k in status.delivered] == ["rolled-back"]
    finally:
        env.slack.set_default(Reply.ok())
    with env.controller():
        env.wait_phase(ns, "checkout", "RolledBack")
        wait_for("a look at every guarded Deployment", lambda: True)
    assert len([m for m in env.slack_messages(ns, "checkout") if "rolled back" in m["text"]]) == 1


def test_slack_refusing_the_channel_is_a_warning_event(env: Cluster) -> None:
    ns = "res-slack-404"
    guarded(env, ns)
    env.slack.set_default(Reply.channel_not_found())
    try:
        with env.controller():
            env.wait_phase(ns, "checkout", "Succeeded")
            env.set_image(ns, "checkout", "bad")
            env.wait_phase(ns, "checkout", "RolledBack")
            (event,) = env.wait_events(ns, "checkout", "NotificationFailed")
            assert event["type"] == "Warning" and "channel_not_found" in event["message"]
            assert env.slack.url not in event["message"], "the webhook URL is a secret"
    finally:
        env.slack.set_default(Reply.ok())
