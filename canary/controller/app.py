"""Wire the controller together: informers, leader election, runtime, notifier, health server.

`ControllerApp(settings).start()` is `canary run`; the demo and the tests build the same object
against the simulated cluster, so they run exactly the production code.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from kubernetes.client import ApiClient, CoreV1Api

from canary.analysis import Analyzer, Outcome
from canary.config.slo import Metrics, NotifyEvent
from canary.controller.configure import Configurator
from canary.controller.executor import DecisionHook, Executor
from canary.controller.http import HealthServer
from canary.controller.machine import Decision, Effect
from canary.controller.metrics import ControllerMetrics
from canary.controller.outbox import Outbox, StatusChange, pending
from canary.controller.reconciler import Reconciler
from canary.controller.runtime import Runtime
from canary.controller.settings import ControllerSettings
from canary.controller.slostore import SLOStore
from canary.controller.status import CanaryStatus
from canary.evidence.collect import EvidenceCollector
from canary.evidence.enrich import EnrichingNotifications
from canary.kube.bodies import DeploymentBody
from canary.kube.client import load_api_client
from canary.kube.deployments import Deployments, owned_replicasets
from canary.kube.events import EventRecorder
from canary.kube.informer import CONFIGMAPS, DEPLOYMENTS, REPLICASETS, Informer
from canary.kube.leader import LeaderElector, default_identity
from canary.kube.wire import JsonObject
from canary.notify.destinations import SecretLocation
from canary.notify.events import CanaryEvent
from canary.notify.notifier import Notifier, SLONotifications
from canary.notify.secrets import SecretResolver
from canary.notify.settings import DeliveryPolicy, RenderSettings
from canary.sources.base import TraceSource
from canary.sources.loki import LokiSettings, LokiSource
from canary.sources.mimir import MimirSettings, MimirSource
from canary.sources.sampling import AnalysedTraceSource, SamplingPublisher
from canary.sources.tempo import TempoSettings, TempoSource

log = logging.getLogger(__name__)

SLO_SELECTOR = "canary.mop.dev/slo-config"
STOP_FLUSH_SECONDS = 10.0
"""A clean stop waits at most this long for the worker to record the deliveries made while stopping."""
MAX_SOURCES = 16
"""Mimir sources kept for distinct SLO `metrics` settings (each holds a connection pool)."""


class InformerCache:
    """The Runtime's Cache over the Deployment and ReplicaSet informers."""

    def __init__(self, deployments: Informer, replicasets: Informer) -> None:
        self._deployments = deployments
        self._replicasets = replicasets

    def deployments(self, namespace: str | None = None) -> list[JsonObject]:
        return self._deployments.list(namespace)

    def deployment(self, namespace: str, name: str) -> JsonObject | None:
        return self._deployments.get(namespace, name)

    def replicasets_of(self, deployment: JsonObject) -> list[JsonObject]:
        return owned_replicasets(deployment, self._replicasets.list(DeploymentBody(deployment).namespace))

    def replicasets(self) -> list[JsonObject]:
        return self._replicasets.list()


class ControllerApp:
    def __init__(
        self,
        settings: ControllerSettings,
        api_client: ApiClient | None = None,
        *,
        delivery: DeliveryPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_decision: DecisionHook | None = None,
    ) -> None:
        self.settings = s = settings
        self.api_client = api_client or load_api_client(s.kubeconfig, s.context)
        self.identity = s.identity or default_identity()
        self.metrics = ControllerMetrics()
        self.deployments = Deployments(self.api_client, fence=self._leading)
        token = s.bearer_token
        tls = {"ca_file": s.tls_ca_file, "cert_file": s.tls_cert_file, "key_file": s.tls_key_file}
        self._mimir_settings = MimirSettings(
            url=s.mimir_url, tenant=s.tenant, bearer_token=token, verify_tls=s.verify_tls,
            timeout_seconds=s.query_timeout_seconds, **tls,
        )
        self.mimir = MimirSource(self._mimir_settings)
        self._sources: OrderedDict[Metrics, MimirSource] = OrderedDict({self._mimir_settings.metrics: self.mimir})
        tempo = (
            TempoSource(TempoSettings(url=s.tempo_url, tenant=s.tenant, bearer_token=token, verify_tls=s.verify_tls,
                                      timeout_seconds=s.query_timeout_seconds,
                                      end_cutoff_seconds=s.tempo_end_cutoff_seconds, **tls))
            if s.tempo_url else None
        )
        traces: TraceSource | None = tempo
        if tempo is not None and s.trace_sampling_configmap:
            namespace, _, name = s.trace_sampling_configmap.partition("/")
            traces = AnalysedTraceSource(tempo, SamplingPublisher(self.api_client, namespace, name))
        self.loki = (
            LokiSource(LokiSettings(url=s.loki_url, tenant=s.tenant, bearer_token=token, verify_tls=s.verify_tls,
                                    timeout_seconds=s.query_timeout_seconds, **tls))
            if s.loki_url else None
        )
        self.slos = SLOStore()
        self.events = EventRecorder(self.api_client, host=self.identity)
        namespaces = s.namespaces or None
        self.deployment_informer = Informer(
            self.api_client, DEPLOYMENTS, self._on_deployment, namespaces=namespaces, resync_seconds=s.resync_seconds
        )
        self.replicaset_informer = Informer(
            self.api_client, REPLICASETS, self._on_replicaset, namespaces=namespaces, resync_seconds=None
        )
        self.configmap_informer = Informer(
            self.api_client, CONFIGMAPS, self._on_configmap, namespaces=namespaces, label_selector=SLO_SELECTOR,
            resync_seconds=s.resync_seconds,
        )
        self.outbox = Outbox(self.deployment_informer.get, self._submit)
        default_secret = (
            SecretLocation(namespace=s.controller_namespace, name=s.slack_default_secret.name,
                           key=s.slack_default_secret.key)
            if s.slack_default_secret else None
        )
        self.notifier = Notifier(
            self.outbox,
            render=RenderSettings(cluster=s.cluster_name, grafana_url=s.grafana_external_url or s.grafana_url),
            policy=delivery,
            secrets=SecretResolver(CoreV1Api(self.api_client)),
            on_permanent_failure=self._notification_failed,
            registry=self.metrics.registry,
            slack_api_url=s.slack_api_url,
        )
        self.notifications: SLONotifications | EnrichingNotifications = SLONotifications(self.notifier, default_secret)
        if tempo is not None or self.loki is not None:
            # A little under the message's wait, so the collector stops on its own with notes of what it skipped.
            collector = EvidenceCollector(tempo, self.loki, deadline_seconds=s.evidence_timeout_seconds * 0.8,
                                          mimir=self.mimir)
            self.notifications = EnrichingNotifications(
                self.notifications, collector, timeout_seconds=s.evidence_timeout_seconds,
                on_evidence=self.outbox.store_evidence, clock=clock,
            )
        self.configurator = Configurator(self.slos, s.min_interval_seconds)
        self.executor = Executor(self.deployments, self.events, self.notifications, self.metrics, clock,
                                 on_decision=self._decision_hook(on_decision))
        self.reconciler = Reconciler(self.executor, clock)
        self.runtime = Runtime(
            self.configurator, self.reconciler, self.executor,
            Analyzer(self._metrics_source, traces, deadline_seconds=s.tick_deadline_seconds),
            self.slos, self.metrics, InformerCache(self.deployment_informer, self.replicaset_informer), clock=clock,
        )
        self.elector = (
            LeaderElector(
                self.api_client, namespace=s.lease_namespace, name=s.lease_name, identity=self.identity,
                lease_duration_seconds=max(1, round(s.lease_duration_seconds)),
                renew_deadline_seconds=s.renew_deadline_seconds, retry_period_seconds=s.retry_period_seconds,
                on_started_leading=lambda: self._set_leader(True),
                on_stopped_leading=lambda: self._set_leader(False),
            )
            if s.leader_elect else None
        )
        self.health = HealthServer(s.listen_host, s.listen_port, self.metrics.registry, self._healthy, self._ready)
        self._started = False
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, sync_timeout: float = 30.0) -> ControllerApp:
        self.health.start()
        self.mimir.detect()
        for informer in (self.configmap_informer, self.replicaset_informer, self.deployment_informer):
            informer.start()
            if not informer.wait_for_sync(sync_timeout):
                log.warning("%s informer not synced after %gs; carrying on", informer.resource.kind, sync_timeout)
        self.notifier.start()
        self.runtime.start()
        if self.elector is not None:
            self.elector.start()
        else:
            self._set_leader(True)
        self._started = True
        log.info("controller started", extra={"identity": self.identity, "port": self.health.port})
        return self

    def stop(self, release_lease: bool = True) -> None:
        """Stop everything (once); `release_lease=False` simulates a crash for failover tests.

        A clean stop first makes no more decisions, lets the evidence and the messages under way finish
        (bounded), and records their deliveries while it still leads: a message already sent is never
        sent again by the next leader."""
        if self._stopped:
            return
        self._stopped = True
        if release_lease and self.runtime.is_leader:
            self.runtime.quiesce()
            if isinstance(self.notifications, EnrichingNotifications):
                self.notifications.wait_idle(self.settings.evidence_timeout_seconds)
            self.notifier.close()
            if not self.runtime.flush(STOP_FLUSH_SECONDS):
                log.warning("deliveries not all recorded within %gs; the next leader may send them again",
                            STOP_FLUSH_SECONDS)
        if self.elector is not None:
            self.elector.stop(release=release_lease)
        self.runtime.stop()
        for informer in (self.deployment_informer, self.replicaset_informer, self.configmap_informer):
            informer.stop()
        if isinstance(self.notifications, EnrichingNotifications):
            self.notifications.wait_idle(self.settings.evidence_timeout_seconds)
        self.notifier.close()
        self.health.stop()
        if self.loki is not None:
            self.loki.close()
        for source in self._sources.values():
            source.close()

    def __enter__(self) -> ControllerApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- wiring ----------------------------------------------------------------------------------

    def _set_leader(self, leading: bool) -> None:
        log.info("leadership %s", "acquired" if leading else "lost", extra={"identity": self.identity})
        self.runtime.set_leader(leading)
        if leading:
            self._resend_pending()

    def _leading(self) -> bool:
        """The write fence: this replica leads now (and, with leader election, still holds a fresh Lease)."""
        return self.runtime.is_leader and (self.elector is None or self.elector.is_leader)

    def _resend_pending(self) -> None:
        """Notifications decided but not delivered before a restart or failover go out now."""
        try:
            undelivered = pending(self.deployment_informer.list())
        except Exception:
            log.exception("cannot list undelivered notifications; they go out on the next leadership")
            return
        for event in undelivered:
            try:
                deployment = self.deployment_informer.get(event.namespace, event.deployment)
                slo = self.configurator.resolve(DeploymentBody(deployment)).slo if deployment else None
                if slo is not None:
                    self.executor.notifications.publish(event, slo)
            except Exception:
                log.exception("cannot re-send notification %s; the others go out", event.key)

    def _metrics_source(self, metrics: Metrics) -> MimirSource:
        """One Mimir source per distinct SLO `metrics` setting (preset or custom queries), detected once;
        at most MAX_SOURCES are kept (least recently used closed first), the default one always."""
        source = self._sources.get(metrics)
        if source is not None:
            self._sources.move_to_end(metrics)
            return source
        settings = MimirSettings.model_validate({**dict(self._mimir_settings), "metrics": metrics})
        source = self._sources[metrics] = MimirSource(settings)
        source.detect()
        while len(self._sources) > MAX_SOURCES:
            oldest = next(m for m in self._sources if self._sources[m] is not self.mimir)
            self._sources.pop(oldest).close()
        return source

    def _on_deployment(self, kind: str, obj: JsonObject) -> None:
        self.runtime.on_deployment(kind, obj)

    def _on_replicaset(self, kind: str, obj: JsonObject) -> None:
        self.runtime.on_replicaset(kind, obj)

    def _on_configmap(self, kind: str, obj: JsonObject) -> None:
        self.runtime.on_configmap(kind, obj)

    def _submit(self, change: StatusChange) -> None:
        self.runtime.submit(change)

    def _decision_hook(self, user: DecisionHook | None) -> DecisionHook:
        """`user`'s hook, then: a rollback that sends no message still gets its evidence (status, Event)."""

        def hook(deployment: JsonObject, decision: Decision, status: CanaryStatus, outcome: Outcome | None) -> None:
            if user is not None:
                user(deployment, decision, status, outcome)
            notifications = self.notifications
            if not isinstance(notifications, EnrichingNotifications) or outcome is None:
                return
            if decision.transition.effect is not Effect.REJECT:
                return
            revision = decision.status.template_hash
            if any(e.type is NotifyEvent.ROLLED_BACK and e.revision == revision for e in status.outbox):
                return  # the message's enrichment stores it
            target = outcome.measurement.target
            notifications.enrich_only(CanaryEvent(
                type=NotifyEvent.ROLLED_BACK, namespace=target.canary.namespace,
                deployment=DeploymentBody(deployment).name,
                revision=revision, mode=status.mode, service=target.service, slo="", reason=status.message,
                verdict=outcome.verdict, at=self.executor.clock(), target=target,
            ))

        return hook

    def _notification_failed(self, event: CanaryEvent, reason: str) -> None:
        deployment = self.deployment_informer.get(event.namespace, event.deployment)
        if deployment is not None:
            self.events.record(deployment, "Warning", "NotificationFailed", reason)

    def _healthy(self) -> tuple[bool, str]:
        ok = self.runtime.alive
        return ok, "ok" if ok else "worker or scheduler stopped"

    def _ready(self) -> tuple[bool, str]:
        synced = all(i.has_synced for i in (self.deployment_informer, self.replicaset_informer,
                                            self.configmap_informer))
        if not (self._started and synced):
            return False, "informers not synced"
        return True, "leader" if self.runtime.is_leader else "standby"
