"""Root-cause evidence after a rollback, end to end: the production controller, the simulated cluster, a
real Prometheus, and the Tempo and Loki test servers fed by the traffic generator.

The bad version fails 35% of `POST /api/orders` through one downstream call (`INSERT orders`, status
`deadlock detected`), logging each failure with its trace id. Compressed: 2 s checks over 8 s windows,
and Tempo's 30 s query-end cutoff set to 0 on both sides, so evidence about the last seconds exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.controller.status import CanaryStatus
from canary_testkit.kube import KubeSim
from canary_testkit.kube.identity import install_controller_identity
from canary_testkit.loki import Fault as LokiFault
from canary_testkit.loki import LokiServer
from canary_testkit.prometheus import PrometheusServer
from canary_testkit.slack import SlackSim
from canary_testkit.tempo import Fault as TempoFault
from canary_testkit.tempo import TempoServer
from canary_testkit.traffic import Profile, TrafficGenerator
from tests.controller.harness import HEALTHY, Cluster, wait_for

ROUTES = (("GET", "/api/items"), ("POST", "/api/orders"))
DEADLOCK = Profile(
    rps_per_replica=25, error_ratio=0.35, latency=((0.02, 1.0),), failing_routes=("/api/orders",),
    failing_call=("INSERT orders", "deadlock detected"),
)
ENABLED = {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"}


class Evidenced(Cluster):
    tempo: TempoServer
    loki: LokiServer


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evidenced]:
    tmp = Path(tmp_path_factory.mktemp("cluster"))
    with KubeSim(rollout_step_seconds=0.5) as sim, TempoServer(query_end_cutoff_seconds=0) as tempo, \
            LokiServer() as loki:
        kubeconfig = sim.write_kubeconfig(tmp / "kubeconfig")
        identity = install_controller_identity(sim)
        controller_kubeconfig = sim.write_kubeconfig(tmp / "controller-kubeconfig", token=identity.token)
        profiles = {"v1": HEALTHY, "bad": DEADLOCK}
        with TrafficGenerator(sim, profiles, default=HEALTHY, tempo=tempo, loki=loki, seed=11, routes=ROUTES,
                              max_spans_per_second=200) as traffic, \
                PrometheusServer(scrape_configs=[traffic.scrape_config()], scrape_interval="1s") as prometheus, \
                SlackSim() as slack:
            cluster = Evidenced(sim, traffic, prometheus, slack, kubeconfig, identity, controller_kubeconfig)
            cluster.tempo, cluster.loki = tempo, loki
            yield cluster


def roll_back(env: Evidenced, ns: str, **settings: object) -> tuple[CanaryStatus, dict]:  # type: ignore[type-arg]
    """Deploy v1, roll out the deadlocking version, wait for the rollback and its Slack message."""
    env.namespace(ns)
    env.slo(ns, "checkout", service="checkout", slack=True)
    env.deployment(ns, "checkout", "v1", annotations=ENABLED)
    with env.controller(tempo_url=env.tempo.url, loki_url=env.loki.url, tempo_end_cutoff_seconds=0,
                        grafana_external_url="https://grafana.example.com", **settings) as app:
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "RolledBack")
        [message] = wait_for("the rollback message", lambda: [
            m for m in env.slack_messages(ns, "checkout") if "rolled back" in m["text"]
        ], timeout=30)
        status = wait_for("the evidence in the status", lambda: (s := env.status(ns, "checkout")) and s.evidence
                          and s, timeout=30)
        assert app is not None
    return status, message


def texts(message: dict) -> str:  # type: ignore[type-arg]
    out = []
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", [])]
        out += [e["text"] for e in block.get("elements", [])]
    return "\n".join(out)


def test_rollback_message_status_and_event_name_the_route_the_call_the_traces_and_the_logs(env: Evidenced) -> None:
    status, message = roll_back(env, "evidence")
    header = message["blocks"][0]["text"]["text"]
    assert header.startswith("checkout bad rolled back: ") and "of POST /api/orders failing" in header
    body = texts(message)
    assert "POST /api/orders" in body and "GET /api/items" in body
    assert 'checkout span "INSERT orders": deadlock detected' in body
    assert "*Failing traces*" in body and "*Log lines* (canary pods)" in body and "deadlock detected" in body
    assert "`canary retry evidence/checkout`" in body
    assert "https://grafana.example.com/explore?" in body
    assert len(message["blocks"]) <= 50
    # the status annotation keeps the evidence of the rolled-back revision
    assert status.evidence is not None
    evidence = status.evidence.evidence
    assert status.evidence.revision in status.rejected
    [route] = evidence.regressed_routes
    assert route.route == "POST /api/orders"
    assert evidence.cause is not None and (evidence.cause.span, evidence.cause.message) == (
        "INSERT orders", "deadlock detected",
    )
    failing = {t.trace_id for t in evidence.traces}
    assert len(failing) >= 2 and evidence.logs
    assert all(log.trace_id in failing for log in evidence.logs), "the log lines are those of the failing traces"
    assert evidence.notes == ()
    # a short Event says it too
    [event] = env.wait_events("evidence", "checkout", "RollbackEvidence")
    assert "POST /api/orders" in event["message"] and "deadlock detected" in event["message"]
    assert len(event["message"]) < 1024


def test_tempo_and_loki_down_leave_the_rollback_and_its_message_intact_with_a_note(env: Evidenced) -> None:
    """Both backends fail during enrichment (Tempo 500, Loki hanging past the evidence timeout): the
    rollback happens as usual and the message goes out with the checks and a note, within the timeout."""
    env.tempo.inject(TempoFault.HTTP_500, paths=("/api/search", "/api/metrics/query"))
    env.loki.inject(LokiFault.HANG)
    try:
        status, message = roll_back(env, "evidence-down", evidence_timeout_seconds=3, query_timeout_seconds=10)
    finally:
        env.tempo.inject(None)
        env.loki.inject(None)
    body = texts(message)
    assert message["blocks"][0]["text"]["text"].startswith("checkout bad rolled back: ")
    assert "*Breached checks*" in body and "Evidence incomplete:" in body
    assert status.phase.value == "RolledBack" and env.image("evidence-down", "checkout") == "v1"
    assert status.evidence is not None and status.evidence.evidence.notes


def test_a_rollback_nobody_is_told_about_still_keeps_its_evidence(env: Evidenced) -> None:
    """No Slack or webhook in the SLO: the evidence still goes to the status annotation and an Event."""
    ns = env.namespace("evidence-quiet")
    env.slo(ns, "checkout", service="checkout")
    env.deployment(ns, "checkout", "v1", annotations=ENABLED)
    with env.controller(tempo_url=env.tempo.url, loki_url=env.loki.url, tempo_end_cutoff_seconds=0):
        env.wait_phase(ns, "checkout", "Succeeded")
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "RolledBack")
        status = wait_for("the evidence in the status", lambda: (s := env.status(ns, "checkout")) and s.evidence
                          and s, timeout=30)
        [event] = env.wait_events(ns, "checkout", "RollbackEvidence")
    assert status.evidence is not None and status.evidence.revision in status.rejected
    assert status.evidence.evidence.cause is not None and status.evidence.evidence.cause.span == "INSERT orders"
    assert "POST /api/orders" in event["message"]
    assert env.slack_messages(ns, "checkout") == []
