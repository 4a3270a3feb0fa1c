"""A whole cluster on 127.0.0.1 for the controller tests: the simulated Kubernetes API, a traffic
generator serving OBI metrics for whatever ReplicaSets exist, and a real Prometheus scraping it.
The controller under test is the production ControllerApp pointed at them, running as the ServiceAccount
of `manifests/` with exactly the RBAC rules rendered from there: a request that RBAC refuses fails the test."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from canary.controller.app import ControllerApp
from canary.controller.settings import ControllerSettings
from canary.controller.status import CanaryStatus, read_status
from canary.notify.settings import DeliveryPolicy
from canary.rbac import secret_grant
from canary_testkit.kube import KubeSim
from canary_testkit.kube.identity import ControllerIdentity, install_controller_identity
from canary_testkit.prometheus import PrometheusServer
from canary_testkit.slack import SlackSim
from canary_testkit.traffic import Profile, TrafficGenerator

T = TypeVar("T")
HEALTHY = Profile(rps_per_replica=25, error_ratio=0.002, latency=((0.02, 0.99), (0.1, 0.01)))
PROFILES = {
    "v1": HEALTHY,
    "v2": HEALTHY,
    "v3": HEALTHY,
    "bad": Profile(rps_per_replica=25, error_ratio=0.35, latency=((0.02, 1.0),)),
    "slow": Profile(rps_per_replica=25, error_ratio=0.002, latency=((1.5, 1.0),)),
    "quiet": Profile(rps_per_replica=0.05, error_ratio=0.5, latency=((0.02, 1.0),)),
}
SLO_TEMPLATE = {
    "apiVersion": "canary.mop.dev/v1alpha1",
    "kind": "ServiceSLO",
    "spec": {
        "objectives": {"availability": 99, "latencyP99": "500ms"},
        "analysis": {"interval": "2s", "window": "8s", "minRequests": 30, "successfulChecks": 3, "failedChecks": 2,
                     "backendErrorLimit": 2},
    },
}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90.0, every: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


@dataclass
class Cluster:
    sim: KubeSim
    traffic: TrafficGenerator
    prometheus: PrometheusServer
    slack: SlackSim
    kubeconfig: Path
    """The admin's kubeconfig (what a user runs `canary status|abort|promote` with)."""
    identity: ControllerIdentity
    controller_kubeconfig: Path
    """The controller's: its ServiceAccount token."""

    # -- objects ---------------------------------------------------------------------------------

    def namespace(self, name: str) -> str:
        if self.sim.get("v1", "namespaces", None, name) is None:
            self.sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name

    def slo(self, namespace: str, name: str, service: str, *, slack: bool = False, **spec: Any) -> None:
        """A ServiceSLO ConfigMap; with `slack`, notifications go to the Slack sim through a Secret that the
        controller may read by the Role and RoleBinding `canary rbac grant-secrets` makes."""
        if slack:
            self.sim.create({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"slack-{name}", "namespace": namespace},
                "stringData": {"url": self.slack.url},
            })
            for obj in secret_grant(namespace, [f"slack-{name}"], (self.identity.namespace,
                                                                  self.identity.service_account)):
                self.sim.apply(obj, manager="canary", force=True)
            spec["notify"] = {"slack": {"webhookSecretRef": {"name": f"slack-{name}", "key": "url"},
                                        "channel": f"#{service}", "mention": "@oncall"}}
        doc = {**SLO_TEMPLATE, "metadata": {"name": name}, "spec": {**SLO_TEMPLATE["spec"], "service": service, **spec}}
        self.sim.create({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"slo-{name}", "namespace": namespace,
                         "labels": {"canary.mop.dev/slo-config": "true"}},
            "data": {"slo.yaml": yaml.safe_dump(doc)},
        })

    def deployment(
        self, namespace: str, name: str, image: str, *, replicas: int = 4, app: str | None = None,
        annotations: dict[str, str] | None = None, strategy: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        labels = {"app": app or name, "deployment": name}
        return self.sim.create({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                **({"strategy": strategy} if strategy else {}),
                "template": {"metadata": {"labels": labels},
                             "spec": {"containers": [{"name": "app", "image": f"shop/{app or name}:{image}"}]}},
            },
        })

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.sim.get("apps/v1", "deployments", namespace, name)
        assert obj is not None, f"Deployment {namespace}/{name} is gone"
        return obj

    def image(self, namespace: str, name: str) -> str:
        return str(self.get(namespace, name)["spec"]["template"]["spec"]["containers"][0]["image"]).rsplit(":", 1)[1]

    def set_image(self, namespace: str, name: str, image: str) -> None:
        app = self.get(namespace, name)["spec"]["template"]["metadata"]["labels"]["app"]
        self.sim.patch("apps/v1", "deployments", namespace, name, {
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"shop/{app}:{image}"}]}}}
        }, patch_type="application/strategic-merge-patch+json")

    def annotate(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        self.sim.patch("apps/v1", "deployments", namespace, name, {"metadata": {"annotations": annotations}})

    def status(self, namespace: str, name: str) -> CanaryStatus | None:
        return read_status(self.get(namespace, name)["metadata"].get("annotations"))[0]

    def phase(self, namespace: str, name: str) -> str | None:
        st = self.status(namespace, name)
        return st.phase.value if st else None

    def wait_phase(self, namespace: str, name: str, *phases: str, timeout: float = 90.0) -> CanaryStatus:
        def probe() -> CanaryStatus | None:
            st = self.status(namespace, name)
            return st if st is not None and st.phase.value in phases else None

        was = self.phase(namespace, name)
        try:
            return wait_for(f"{namespace}/{name} in phase {'/'.join(phases)}", probe, timeout)
        except AssertionError as exc:
            st = self.status(namespace, name)
            seen = f"{st.phase.value}, {st.looks} looks, {st.message!r}" if st else "no status"
            raise AssertionError(f"{exc} (it was {was} when the wait began; now {seen})") from None

    def slack_messages(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages if f"{namespace}/{name}" in str(m.get("text", ""))]

    def roll_out(self, namespace: str, name: str, image: str, *phases: str, timeout: float = 120.0) -> CanaryStatus:
        """Change the image, then wait until the analysis of the new template reaches one of `phases`."""
        before = self.status(namespace, name)
        self.set_image(namespace, name, image)

        def probe() -> CanaryStatus | None:
            st = self.status(namespace, name)
            moved = st is not None and (before is None or st.started_at != before.started_at)
            return st if moved and st is not None and st.phase.value in phases else None

        return wait_for(f"{namespace}/{name} on {image} in phase {'/'.join(phases)}", probe, timeout)

    def events(self, namespace: str, name: str, reason: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.sim.list("v1", "events", namespace)
            if e.get("involvedObject", {}).get("name") == name and (reason is None or e.get("reason") == reason)
        ]

    def wait_events(self, namespace: str, name: str, reason: str) -> list[dict[str, Any]]:
        """The Events with `reason`, once there is at least one (they are recorded right after the write)."""
        return wait_for(f"a {reason} Event on {namespace}/{name}", lambda: self.events(namespace, name, reason))

    def writes_to(self, namespace: str, name: str) -> int:
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        return sum(1 for r in self.sim.requests if r.method in ("PUT", "PATCH", "POST") and r.path == path)

    # -- the controller --------------------------------------------------------------------------

    def settings(self, **overrides: Any) -> ControllerSettings:
        values: dict[str, Any] = {
            "mimir_url": self.prometheus.url, "kubeconfig": str(self.controller_kubeconfig), "listen_host": "127.0.0.1",
            "listen_port": 0, "resync_seconds": 5.0, "log_format": "text", "min_interval_seconds": 1.0, **overrides,
        }
        return ControllerSettings(**values)

    @contextmanager
    def controller(self, **overrides: Any) -> Iterator[ControllerApp]:
        app = ControllerApp(self.settings(**overrides), delivery=DeliveryPolicy(min_interval=0.05, backoff_base=0.1,
                                                                                 backoff_cap=0.5))
        logger = logging.getLogger("canary")
        level = logger.level
        logger.setLevel(logging.INFO)  # as `canary run` logs: every INFO line (decisions, checks) is built
        denied = len(self.sim.denials_for(self.identity.user))
        app.start(sync_timeout=10)
        try:
            yield app
        finally:
            app.stop()
            logger.setLevel(level)
        refused = self.sim.denials_for(self.identity.user)[denied:]
        assert not refused, "RBAC refused the controller:\n" + "\n".join(d.message for d in refused)


@contextmanager
def cluster(tmp: Path) -> Iterator[Cluster]:
    with KubeSim(rollout_step_seconds=0.5) as sim:
        kubeconfig = sim.write_kubeconfig(tmp / "kubeconfig")
        identity = install_controller_identity(sim)
        controller_kubeconfig = sim.write_kubeconfig(tmp / "controller-kubeconfig", token=identity.token)
        with TrafficGenerator(sim, PROFILES, default=HEALTHY, seed=7) as traffic, PrometheusServer(
            scrape_configs=[traffic.scrape_config()], scrape_interval="1s"
        ) as prometheus, SlackSim() as slack:
            yield Cluster(sim, traffic, prometheus, slack, kubeconfig, identity, controller_kubeconfig)
