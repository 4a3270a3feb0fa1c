"""The demo's whole world on 127.0.0.1: the simulated Kubernetes API, a Tempo-compatible endpoint, a
traffic generator, a real Prometheus scraping it, a Slack webhook receiver and the production
controller (`ControllerApp`, as `canary run` builds it) pointed at them. All stopped by `stop()`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr

from canary.config.slo import ServiceSLO
from canary.controller.app import ControllerApp
from canary.controller.executor import NotificationSink
from canary.controller.settings import ControllerSettings
from canary.controller.status import CanaryStatus, read_status
from canary.evidence.enrich import EnrichingNotifications
from canary.notify.destinations import Destination, SinkKind, destinations_for
from canary.notify.events import CanaryEvent
from canary.notify.notifier import Notifier
from canary.notify.settings import DeliveryPolicy, RenderSettings
from canary.rbac import secret_grant
from canary_testkit.demo import scenario as sc
from canary_testkit.demo.record import Recorder
from canary_testkit.kube import KubeSim
from canary_testkit.kube.identity import ControllerIdentity, install_controller_identity
from canary_testkit.ledger import MemoryLedger
from canary_testkit.loki import LokiServer
from canary_testkit.prometheus import PrometheusServer
from canary_testkit.slack import SlackSim
from canary_testkit.tempo import TempoServer
from canary_testkit.traffic import TrafficGenerator

log = logging.getLogger(__name__)
T = TypeVar("T")
DELIVERY = DeliveryPolicy(min_interval=1.0, timeout=5.0, backoff_base=0.5, backoff_cap=5.0, max_age=60.0)
"""Slack pacing as in production (one message a second); retries short enough for the demo."""


class DemoStartError(RuntimeError):
    """A piece of the demo could not start; the message names the piece and says why."""


class Endpoints(BaseModel):
    """Where each piece listens (all on 127.0.0.1), for the report and `--keep`."""

    model_config = ConfigDict(frozen=True)

    kubernetes: str
    prometheus: str
    tempo: str
    traffic: str
    slack: str
    """The receiver's address without the webhook path (the URL is a credential)."""
    controller: str
    """The controller's /metrics endpoint."""
    kubeconfig: str

    def ports(self) -> list[int]:
        urls = (self.kubernetes, self.prometheus, self.tempo, self.traffic, self.slack, self.controller)
        return [int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]) for url in urls]


class MirroredNotifications:
    """The controller's notification sink, plus a copy of every Slack message to one more webhook
    (`--slack-webhook`), through a second Notifier with its own delivery ledger."""

    def __init__(self, primary: NotificationSink, mirror: Notifier, url: str) -> None:
        self.primary = primary
        self.mirror = mirror
        self.url = SecretStr(url)

    def _copies(self, event: CanaryEvent, slo: ServiceSLO) -> list[Destination]:
        return [
            Destination(kind=SinkKind.SLACK, url=self.url, channel=d.channel, mention=d.mention)
            for d in destinations_for(event, slo) if d.kind is SinkKind.SLACK
        ]

    def destinations(self, event: CanaryEvent, slo: ServiceSLO) -> list[object]:
        return [*self.primary.destinations(event, slo), *self._copies(event, slo)]

    def publish(self, event: CanaryEvent, slo: ServiceSLO) -> None:
        self.primary.publish(event, slo)
        self.mirror.publish(event, self._copies(event, slo))


@dataclass
class DemoEnvironment:
    """Everything running. Build it with `start_environment`; `stop()` stops it all."""

    sim: KubeSim
    prometheus: PrometheusServer
    slack: SlackSim
    controller: ControllerApp
    endpoints: Endpoints
    mirror: Notifier | None
    mirrored: list[str]
    """Keys of the events delivered to the mirror webhook."""
    identity: ControllerIdentity
    """The controller runs as the ServiceAccount of manifests/, with exactly its RBAC rules."""
    _stack: ExitStack

    def stop(self) -> None:
        """Stop every piece, newest first. Safe to call twice."""
        self._stack.close()

    def refused(self) -> list[str]:
        """kube-apiserver's message for every request of the controller that RBAC refused."""
        return [d.message for d in self.sim.denials_for(self.identity.user)]

    # -- the cluster, as a user with kubectl would change it --------------------------------------

    def configure(self, pace: sc.Pace) -> None:
        """The `shop` namespace, the Slack Secret (readable by the controller through the Role and RoleBinding
        of `canary rbac grant-secrets`) and the ServiceSLO ConfigMap."""
        self.sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": sc.NAMESPACE}})
        self.sim.create({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": sc.SLACK_SECRET, "namespace": sc.NAMESPACE},
            "stringData": {"url": self.slack.url},
        })
        account = (self.identity.namespace, self.identity.service_account)
        for obj in secret_grant(sc.NAMESPACE, [sc.SLACK_SECRET], account):
            self.sim.apply(obj, manager="canary", force=True)
        self.sim.create({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"slo-{sc.DEPLOYMENT}", "namespace": sc.NAMESPACE,
                         "labels": {"canary.mop.dev/slo-config": "true"}},
            "data": {"slo.yaml": yaml.safe_dump(sc.slo_document(pace), sort_keys=False)},
        })

    def slo_loaded(self) -> bool:
        """Whether the controller has read the ServiceSLO (a Deployment naming it before then is Invalid)."""
        return self.controller.slos.get(sc.NAMESPACE, sc.DEPLOYMENT) is not None

    def deploy(self) -> None:
        """`checkout` at v1, guarded by its ServiceSLO."""
        labels = {"app": sc.DEPLOYMENT}
        self.sim.create({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": sc.DEPLOYMENT, "namespace": sc.NAMESPACE,
                         "annotations": {"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": sc.DEPLOYMENT}},
            "spec": {
                "replicas": sc.REPLICAS,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels},
                             "spec": {"containers": [{"name": "app", "image": f"{sc.IMAGE}:v1"}]}},
            },
        })

    def deployment(self) -> dict[str, Any]:
        obj = self.sim.get("apps/v1", "deployments", sc.NAMESPACE, sc.DEPLOYMENT)
        if obj is None:
            raise RuntimeError(f"Deployment {sc.NAMESPACE}/{sc.DEPLOYMENT} is gone")
        return obj

    def set_image(self, tag: str) -> None:
        """`kubectl set image deployment/checkout app=shop/checkout:TAG`."""
        self.sim.patch("apps/v1", "deployments", sc.NAMESPACE, sc.DEPLOYMENT, {
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"{sc.IMAGE}:{tag}"}]}}}
        }, patch_type="application/strategic-merge-patch+json")

    def image(self) -> str:
        return str(self.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]).rsplit(":", 1)[1]

    def status(self) -> CanaryStatus | None:
        return read_status(self.deployment()["metadata"].get("annotations"))[0]


def _start(what: str, start: Callable[[], T], hint: str = "") -> T:
    try:
        return start()
    except Exception as err:
        raise DemoStartError(f"cannot start {what}: {err}{hint}") from err


def start_environment(
    pace: sc.Pace, profiles_by_tag: dict[str, Any], recorder: Recorder, workdir: Path, *,
    metrics_port: int = 0, slack_webhook: str | None = None,
) -> DemoEnvironment:
    """Start every piece (on failure, stop those already started and raise DemoStartError)."""
    stack = ExitStack()
    try:
        sim = _start("the simulated Kubernetes API",
                     lambda: KubeSim(rollout_step_seconds=pace.rollout_step).start())
        stack.callback(sim.stop)
        kubeconfig = sim.write_kubeconfig(workdir / "kubeconfig", namespace=sc.NAMESPACE)
        identity = install_controller_identity(sim)
        controller_kubeconfig = sim.write_kubeconfig(workdir / "controller-kubeconfig", token=identity.token)
        # no 30 s query-end cutoff: the story is shorter than that, and the rollback evidence is about its last seconds
        tempo = _start("the Tempo endpoint", lambda: TempoServer(query_end_cutoff_seconds=0).start())
        stack.callback(tempo.stop)
        loki = _start("the Loki endpoint", lambda: LokiServer().start())
        stack.callback(loki.stop)
        traffic = _start("the traffic generator", lambda: TrafficGenerator(
            sim, profiles_by_tag, default=sc.HEALTHY, tempo=tempo, loki=loki, seed=7,
            rps_per_replica=pace.rps_per_replica,
        ).start())
        stack.callback(traffic.stop)
        scrape = {**traffic.scrape_config(), "scrape_interval": pace.scrape_interval,
                  "scrape_timeout": pace.scrape_interval}
        prometheus = _start("Prometheus", lambda: PrometheusServer(
            scrape_configs=[scrape], scrape_interval=pace.scrape_interval).start())
        stack.callback(prometheus.stop)
        slack = _start("the Slack webhook receiver", lambda: SlackSim().start())
        stack.callback(slack.stop)
        settings = ControllerSettings(
            mimir_url=prometheus.url, tempo_url=tempo.url, loki_url=loki.url, tempo_end_cutoff_seconds=0,
            kubeconfig=str(controller_kubeconfig),
            listen_host="127.0.0.1", listen_port=metrics_port, resync_seconds=pace.resync,
            cluster_name="demo", log_format="text", min_interval_seconds=min(5.0, pace.interval),
        )
        what, hint = "the controller", ""
        if metrics_port:
            what = f"the controller's metrics endpoint on 127.0.0.1:{metrics_port}"
            hint = " (choose another --metrics-port, or 0 for a free one)"
        app = _start(what, lambda: ControllerApp(settings, delivery=DELIVERY, on_decision=recorder.hook), hint)
        mirror = None
        mirrored: list[str] = []
        if slack_webhook is not None:
            mirror = Notifier(MemoryLedger(), render=RenderSettings(cluster="demo"), policy=DELIVERY,
                              on_delivered=lambda event, sink: mirrored.append(str(event.key)))
            mirror.start()
            stack.callback(mirror.close)
            if isinstance(app.notifications, EnrichingNotifications):  # the mirror gets the enriched messages too
                app.notifications.inner = MirroredNotifications(app.notifications.inner, mirror, slack_webhook)
            else:
                app.executor.notifications = MirroredNotifications(app.executor.notifications, mirror,
                                                                     slack_webhook)
        stack.callback(app.stop)
        _start("the controller", lambda: app.start(sync_timeout=10))
        endpoints = Endpoints(
            kubernetes=sim.url, prometheus=prometheus.url, tempo=tempo.url, traffic=traffic.url,
            slack=f"http://127.0.0.1:{slack.port}", controller=f"http://127.0.0.1:{app.health.port}/metrics",
            kubeconfig=str(kubeconfig),
        )
    except BaseException:
        with contextlib.suppress(Exception):
            stack.close()
        raise
    return DemoEnvironment(sim, prometheus, slack, app, endpoints, mirror, mirrored, identity, stack)
