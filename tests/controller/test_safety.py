"""A rejected release stops serving and stays stopped: re-applies, a GitOps agent, a controller that
starts mid-rollout, stuck canaries and manual requests. The production controller against the
simulated cluster (whose rollouts step every 0.5 s) and a real Prometheus; each test has its own
namespace. Pod counts are read from the sim's ReplicaSets, as a user would read `kubectl get rs`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from typer.testing import CliRunner

from canary.cli import app
from canary.kube.deployments import template_hash
from tests.controller.harness import Cluster, wait_for

ENABLED = {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout"}
runner = CliRunner()


def ready_pods(env: Cluster, ns: str, name: str, image: str) -> int:
    """Ready pods of Deployment `name` running `image` (e.g. "bad"), summed over its ReplicaSets."""
    total = 0
    for rs in env.sim.list("apps/v1", "replicasets", ns):
        owners = [r.get("name") for r in rs["metadata"].get("ownerReferences") or []]
        containers = rs["spec"]["template"]["spec"]["containers"]
        if name in owners and containers[0]["image"].endswith(f":{image}"):
            total += int((rs.get("status") or {}).get("readyReplicas") or 0)
    return total


def scale_writes(env: Cluster, ns: str) -> int:
    prefix = f"/apis/apps/v1/namespaces/{ns}/replicasets/"
    return sum(1 for r in env.sim.requests if r.method == "PATCH" and r.path.startswith(prefix))


def write_log(env: Cluster, ns: str) -> list[str]:
    """The writes to the namespace's Deployments and ReplicaSets, oldest first (for failure messages)."""
    prefix = f"/apis/apps/v1/namespaces/{ns}/"
    return [f"{r.method} {r.path.removeprefix(prefix)}" for r in env.sim.requests
            if r.method in ("PUT", "PATCH", "POST") and r.path.startswith(prefix)]


def setup(env: Cluster, ns: str, name: str = "checkout", **slo: Any) -> None:
    env.namespace(ns)
    env.slo(ns, "checkout", service=name, slack=True, **slo)
    env.deployment(ns, name, "v1", annotations=ENABLED)
    env.wait_phase(ns, name, "Succeeded")


def cli(env: Cluster, *args: str) -> Any:
    return runner.invoke(app, [*args, "--kubeconfig", str(env.kubeconfig)])


def test_rejected_template_applied_again_has_no_ready_pod_within_seconds_and_stays_at_zero(env: Cluster) -> None:
    ns = env.namespace("safe-reapply")
    with env.controller():
        setup(env, ns)
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "RollingBack", "RolledBack")
        wait_for("no ready pod of the rolled-back template", lambda: ready_pods(env, ns, "checkout", "bad") == 0,
                 timeout=5, every=0.05)
        env.wait_phase(ns, "checkout", "RolledBack")
        for attempt in range(2):  # a re-apply, then another after a good release in between
            writes = env.writes_to(ns, "checkout") + scale_writes(env, ns)
            env.set_image(ns, "checkout", "bad")
            wait_for("no ready pod of the rejected template", lambda: ready_pods(env, ns, "checkout", "bad") == 0,
                     timeout=5, every=0.05)
            reaction = env.writes_to(ns, "checkout") + scale_writes(env, ns) - writes
            # The re-apply itself, one Deployment write (pause + status), one ReplicaSet scale, the Slack
            # delivery noted (and at most one retry of a write that met a 409 Conflict with it).
            assert reaction <= 4, (f"{reaction} writes: contained by its reaction to one watch event, not a loop: "
                                   f"{write_log(env, ns)[-reaction:]}")
            frozen = env.wait_phase(ns, "checkout", "Frozen")
            assert frozen.freeze_cause is not None and frozen.freeze_cause.value == "rejected-template"
            wait_for("the stable ReplicaSet back at full size", lambda: ready_pods(env, ns, "checkout", "v1") == 4)
            settled = env.writes_to(ns, "checkout") + scale_writes(env, ns)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:  # stays at 0 while rollouts keep stepping
                assert ready_pods(env, ns, "checkout", "bad") == 0
                time.sleep(0.1)
            assert env.writes_to(ns, "checkout") + scale_writes(env, ns) - settled <= 1, "no write loop"
            assert env.image(ns, "checkout") == "bad", "the applied spec is left as applied: nothing fights it"
            if attempt == 0:
                env.set_image(ns, "checkout", "v1")
                env.wait_phase(ns, "checkout", "Succeeded")
                assert not env.get(ns, "checkout")["spec"].get("paused"), "the known-good template resumes"
        assert len(env.wait_events(ns, "checkout", "RolledBack")) == 1, "never rolled back in a loop"


@contextmanager
def gitops_agent(env: Cluster, ns: str, name: str, every: float) -> Iterator[dict[str, str]]:
    """An Argo CD-like agent: server-side-applies the Git spec (`git["image"]`) every `every` seconds
    with field manager argocd-controller and --force-conflicts, like a self-healing Application."""
    git = {"image": "v1"}
    stop = threading.Event()

    def manifest() -> dict[str, Any]:
        labels = {"app": name, "deployment": name}
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "annotations": ENABLED,
                         "labels": {"argocd.argoproj.io/instance": "shop"}},
            "spec": {"replicas": 4, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": f"shop/{name}:{git['image']}"}]}}},
        }

    def loop() -> None:
        while not stop.wait(every):
            env.sim.apply(manifest(), manager="argocd-controller", force=True)

    env.sim.apply(manifest(), manager="argocd-controller", force=True)
    agent = threading.Thread(target=loop, daemon=True)
    agent.start()
    try:
        yield git
    finally:
        stop.set()
        agent.join(timeout=5)


def test_gitops_agent_reapplying_the_rejected_spec_gets_no_write_loop_and_no_rejected_pod(env: Cluster) -> None:
    """Time compressed 10x: the agent applies every 0.5 s (5 s in Argo CD/Flux terms) for 12 s (2 minutes)."""
    ns = env.namespace("safe-gitops")
    env.slo(ns, "checkout", service="checkout", slack=True)
    with env.controller(), gitops_agent(env, ns, "checkout", every=0.5) as git:
        env.wait_phase(ns, "checkout", "Succeeded")
        git["image"] = "bad"  # a bad commit lands in Git
        rolled = env.wait_phase(ns, "checkout", "RollingBack", "RolledBack")
        assert "Git still holds the rejected template" in rolled.message and "Argo CD" in rolled.message
        env.wait_phase(ns, "checkout", "RolledBack")
        wait_for("no ready pod of the rejected template", lambda: ready_pods(env, ns, "checkout", "bad") == 0)
        path_writes, rs_writes = env.writes_to(ns, "checkout"), scale_writes(env, ns)
        start = time.monotonic()
        while time.monotonic() - start < 12:
            assert ready_pods(env, ns, "checkout", "bad") == 0, "the rejected template serves no traffic"
            time.sleep(0.1)
        writes = env.writes_to(ns, "checkout") - path_writes + scale_writes(env, ns) - rs_writes
        assert writes <= 2, f"{writes} writes in a compressed 2 minutes while Git re-applies every 5 s"
        assert env.image(ns, "checkout") == "bad", "the controller does not write the template back over Git"
        assert ready_pods(env, ns, "checkout", "v1") == 4, "the stable ReplicaSet serves at full size"
        (event,) = env.wait_events(ns, "checkout", "RolledBack")
        assert "Git still holds the rejected template" in event["message"]
        messages = wait_for("the Slack message", lambda: env.slack_messages(ns, "checkout"))
        assert any("Git still holds the rejected template" in str(m) for m in messages)
        git["image"] = "v1"  # the revert lands in Git
        st = env.wait_phase(ns, "checkout", "Succeeded")
        assert st.stable_hash == st.template_hash and not env.get(ns, "checkout")["spec"].get("paused")


def test_controller_started_mid_rollout_of_a_bad_revision_rolls_it_back(env: Cluster) -> None:
    ns = env.namespace("safe-midway")
    env.slo(ns, "checkout", service="checkout")
    env.deployment(ns, "checkout", "v1", annotations=ENABLED)
    wait_for("v1 rolled out", lambda: ready_pods(env, ns, "checkout", "v1") == 4)
    stable = template_hash(env.get(ns, "checkout"))
    env.set_image(ns, "checkout", "bad")
    env.sim.patch("apps/v1", "deployments", ns, "checkout", {"spec": {"paused": True}})  # kubectl rollout pause
    assert ready_pods(env, ns, "checkout", "bad") > 0 and ready_pods(env, ns, "checkout", "v1") > 0
    with env.controller():
        first = env.wait_phase(ns, "checkout", "Waiting", "Analysing", "RollingBack", "RolledBack")
        assert first.stable_hash == stable and first.template_hash != stable, "the new revision is not adopted"
        env.wait_phase(ns, "checkout", "RolledBack")
        assert env.image(ns, "checkout") == "v1"
        wait_for("no ready pod of the bad revision", lambda: ready_pods(env, ns, "checkout", "bad") == 0)
    fresh = env.namespace("safe-settled")
    env.slo(fresh, "checkout", service="checkout")
    env.deployment(fresh, "checkout", "v2", annotations=ENABLED)
    wait_for("v2 rolled out", lambda: ready_pods(env, fresh, "checkout", "v2") == 4)
    with env.controller():
        st = env.wait_phase(fresh, "checkout", "Succeeded")
        assert st.stable_hash == template_hash(env.get(fresh, "checkout")), "a rolled-out Deployment is adopted"


def test_stuck_canary_raises_its_event_message_and_metric_once(env: Cluster) -> None:
    """maxWait compressed to 3 s (default 10 m)."""
    ns = env.namespace("safe-stuck")
    with env.controller() as controller:
        setup(env, ns, analysis={**_analysis(), "maxWait": "3s"})
        env.set_image(ns, "checkout", "quiet")  # too little traffic: every check is inconclusive
        st = env.wait_phase(ns, "checkout", "Analysing")
        stuck = wait_for("the stuck report", lambda: (s := env.status(ns, "checkout")) and s.stuck_at and s)
        assert stuck.phase.value == "Analysing", "onStuck defaults to hold"
        looks = stuck.looks
        wait_for("more checks after the report", lambda: (s := env.status(ns, "checkout")) and s.looks >= looks + 3)
        (event,) = env.events(ns, "checkout", "CanaryStuck")
        assert event["type"] == "Warning" and "minRequests" in event["message"] and "hold" in event["message"]
        stuck_messages = [m for m in env.slack_messages(ns, "checkout") if "stuck" in str(m).lower()]
        assert len(stuck_messages) == 1
        value = controller.metrics.registry.get_sample_value(
            "canary_stuck_total", {"namespace": ns, "deployment": "checkout", "on_stuck": "hold"})
        assert value == 1
        assert st.template_hash == stuck.template_hash


def _analysis() -> dict[str, Any]:
    from tests.controller.harness import SLO_TEMPLATE

    return dict(SLO_TEMPLATE["spec"]["analysis"])  # type: ignore[index]


def test_retry_reanalyses_a_rejected_revision_abort_works_frozen_and_no_request_goes_stale(env: Cluster) -> None:
    ns = env.namespace("safe-requests")
    with env.controller():
        setup(env, ns)
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "RolledBack")
        refused = cli(env, "promote", f"{ns}/checkout")
        assert refused.exit_code == 1
        env.set_image(ns, "checkout", "bad")
        frozen = env.wait_phase(ns, "checkout", "Frozen")
        assert cli(env, "retry", f"{ns}/checkout").exit_code == 0
        again = env.wait_phase(ns, "checkout", "Waiting", "Analysing")
        assert frozen.template_hash not in again.rejected and again.template_hash == frozen.template_hash
        env.wait_phase(ns, "checkout", "RolledBack", timeout=60)  # analysed again, and still bad
        env.set_image(ns, "checkout", "bad")
        env.wait_phase(ns, "checkout", "Frozen")
        assert cli(env, "abort", f"{ns}/checkout").exit_code == 0
        env.wait_phase(ns, "checkout", "RolledBack")
        wait_for("the stable template written back", lambda: env.image(ns, "checkout") == "v1")
        annotations = env.get(ns, "checkout")["metadata"]["annotations"]
        assert not {"canary.mop.dev/abort", "canary.mop.dev/retry"} & set(annotations), "requests are consumed"
        # A promote issued for a revision that is gone never skips the next release's analysis.
        env.annotate(ns, "checkout", {"canary.mop.dev/promote": frozen.template_hash})
        wait_for("the stale request dropped", lambda: env.events(ns, "checkout", "RequestIgnored"))
        env.set_image(ns, "checkout", "v2")
        st = env.wait_phase(ns, "checkout", "Analysing", "Promoting", "Succeeded")
        assert st.phase.value == "Analysing" or st.checks_passed >= 3, "the new release is analysed"


def test_gitops_abort_of_a_fully_rolled_out_revision_brings_the_stable_replicaset_back_first(env: Cluster) -> None:
    """The bad revision already runs every pod (a controller restarted while Promoting, say): under an agent
    the stable ReplicaSet (at 0) is scaled up and the rejected one down, the Deployment paused, nothing
    written over Git."""
    from canary.controller.status import STATUS_ANNOTATION, CanaryPhase, CanaryStatus
    from canary.notify.events import Mode

    ns = env.namespace("safe-gitops-full")
    env.slo(ns, "checkout", service="checkout")
    with gitops_agent(env, ns, "checkout", every=0.5) as git:
        wait_for("v1 rolled out", lambda: ready_pods(env, ns, "checkout", "v1") == 4)
        stable = template_hash(env.get(ns, "checkout"))
        git["image"] = "bad"
        wait_for("bad rolled out fully", lambda: ready_pods(env, ns, "checkout", "bad") == 4
                 and ready_pods(env, ns, "checkout", "v1") == 0)
        bad = template_hash(env.get(ns, "checkout"))
        status = CanaryStatus(phase=CanaryPhase.PROMOTING, mode=Mode.GUARD, template_hash=bad, stable_hash=stable,
                              revision="2")
        env.annotate(ns, "checkout", {STATUS_ANNOTATION: status.to_annotation(), "canary.mop.dev/abort": bad})
        with env.controller():
            rolled = env.wait_phase(ns, "checkout", "RolledBack")
            assert "Git still holds the rejected template" in rolled.message
            wait_for("the stable ReplicaSet serving at full size", lambda: ready_pods(env, ns, "checkout", "v1") == 4)
            assert ready_pods(env, ns, "checkout", "bad") == 0
            assert env.image(ns, "checkout") == "bad" and env.get(ns, "checkout")["spec"].get("paused") is True
