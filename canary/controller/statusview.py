"""What `canary status` shows, as data: one `DeploymentView` per guarded Deployment, read from the cluster.

The model is the stable schema of `canary status -o json|yaml` (`apiVersion: canary.mop.dev/status-view/v1`):
fields are only ever added. Everything comes from what the controller wrote (the status annotation,
its Events) and what Kubernetes reports (ReplicaSets, Pods); nothing is computed twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field

from canary.config.loader import SLO_CONFIGMAP_LABEL, load_configmap
from canary.config.slo import ServiceSLO, ServiceSLOSpec, default_slo
from canary.controller.annotations import BASELINE, AnnotationError, is_enabled, parse_annotations
from canary.controller.status import CanaryStatus, read_status
from canary.evidence.model import RollbackEvidence
from canary.judge.model import CheckResult, Phase
from canary.kube.bodies import Body, DeploymentBody, PodOwner, ReplicaSetBody
from canary.kube.deployments import label_selector, owned_replicasets, revision, template_hash
from canary.kube.wire import JsonObject
from canary.report import waiting_for
from canary.vocabulary import CanaryPhase, FreezeCause

MAX_DECISIONS = 5
CONTROLLER_COMPONENT = "mop-canary"


class CheckView(BaseModel):
    name: str
    result: Phase
    canary: float | None = None
    baseline: float | None = None
    limit: float | None = None
    unit: str = ""
    confidence: float | None = None
    """1 - p-value of the test behind the result, when the judge ran one (0..1)."""
    samples: float | None = None
    reason: str = ""
    lower: float | None = None
    upper: float | None = None
    """Anytime-valid bounds of the canary's value (judge v2), when the check has them."""
    detect_seconds: float | None = None
    """At the current traffic, the expected time until a breach of 2x the limit would be detected."""
    promote_seconds: float | None = None
    """At the current traffic and estimate, the expected time until this check allows promotion."""


class ReplicaSetView(BaseModel):
    name: str
    revision: int | None = None
    role: Literal["canary", "stable", "old"]
    images: list[str] = Field(default_factory=list)
    replicas: int = 0
    ready: int = 0


class PodView(BaseModel):
    name: str
    replicaset: str | None = None
    phase: str = ""
    ready: bool = False
    restarts: int = 0


class DecisionView(BaseModel):
    """One Event the controller recorded on the Deployment (its decisions and why)."""

    at: datetime | None = None
    type: str = "Normal"
    reason: str = ""
    message: str = ""
    count: int = 1


class NotificationView(BaseModel):
    type: str
    revision: str
    at: datetime | None = None
    reason: str = ""


class BaselineView(BaseModel):
    name: str
    found: bool = True
    images: list[str] = Field(default_factory=list)
    replicas: int = 0
    ready: int = 0


class DeploymentView(BaseModel):
    namespace: str
    name: str
    mode: str | None = None
    phase: CanaryPhase | None = None
    """None until the controller has seen the Deployment (see `reason`)."""
    since: datetime | None = None
    """When the current phase (or analysis) started."""
    reason: str = ""
    """Why it is in this phase: the controller's last message, or why there is no status."""
    revision: str = ""
    images: list[str] = Field(default_factory=list)
    baseline: BaselineView | None = None
    """Canary mode: the Deployment this one is compared with (and promoted into)."""
    slo: str | None = None
    interval_seconds: float | None = None
    checks_passed: int = 0
    checks_needed: int | None = None
    checks_failed: int = 0
    failed_limit: int | None = None
    last_verdict: Phase | None = None
    last_check_at: datetime | None = None
    forecast: str = ""
    """What happens next if nothing changes, e.g. `promoted after 3 more passed checks (~1m30s)`."""
    checks: list[CheckView] = Field(default_factory=list)
    replicasets: list[ReplicaSetView] = Field(default_factory=list)
    pods: list[PodView] = Field(default_factory=list)
    decisions: list[DecisionView] = Field(default_factory=list)
    pending_notifications: list[NotificationView] = Field(default_factory=list)
    evidence: RollbackEvidence | None = None
    """Detail view: root-cause evidence of the last rollback (routes, failing downstream call, traces, logs)."""
    warnings: list[str] = Field(default_factory=list)
    """What could not be read (e.g. Events the user may not list), so the view is known to be partial."""


class StatusView(BaseModel):
    """The document `canary status -o json|yaml` prints."""

    api_version: Literal["canary.mop.dev/status-view/v1"] = Field(
        "canary.mop.dev/status-view/v1", alias="apiVersion")
    kind: Literal["CanaryStatusList"] = "CanaryStatusList"
    generated_at: datetime = Field(alias="generatedAt")
    items: list[DeploymentView]

    model_config = {"populate_by_name": True}


# -- pure: from objects to the view --------------------------------------------------------------


def _seconds(value: float) -> str:
    from canary.config.units import format_duration

    return format_duration(max(value, 1.0))


def forecast(status: CanaryStatus, spec: ServiceSLOSpec | None) -> str:
    """What the controller will do next if the checks keep coming out as the last one did."""
    phase = status.phase
    if phase is CanaryPhase.WAITING:
        return "analysis starts when the new pods are ready"
    if phase is CanaryPhase.FROZEN:
        return {
            FreezeCause.REJECTED: "frozen: this template was rolled back before; apply a new one (or retry)",
            FreezeCause.BACKEND: "frozen while the metrics backend is down; analysis resumes when it answers",
            FreezeCause.PAUSED: "paused by the rollback action; resume it by hand",
        }.get(status.freeze_cause or FreezeCause.BACKEND, "frozen")
    if phase is CanaryPhase.INVALID:
        return "nothing happens until the annotation or SLO is fixed"
    if phase is CanaryPhase.PROMOTING:
        return "being promoted"
    if phase is CanaryPhase.ROLLING_BACK:
        return "being rolled back"
    if phase is CanaryPhase.SUCCEEDED:
        return "done: promoted"
    if phase is CanaryPhase.ROLLED_BACK:
        return "done: rolled back"
    if spec is None:
        return ""
    analysis = spec.analysis
    to_promote = max(analysis.successful_checks - status.checks_passed, 0)
    to_fail = max(analysis.failed_checks - status.checks_failed, 1)
    last = status.last_verdict.phase if status.last_verdict else None
    if last is Phase.FAIL:
        return (f"rolled back after {to_fail} more failed check{'s' * (to_fail > 1)} "
                f"(~{_seconds(to_fail * analysis.interval)})")
    if last is Phase.ERROR:
        left = max(analysis.backend_error_limit - status.backend_errors, 1)
        return (f"{analysis.on_backend_failure.value} after {left} more backend error{'s' * (left > 1)} "
                f"(~{_seconds(left * analysis.interval)})")
    if last is Phase.INCONCLUSIVE:
        return f"waiting for evidence: {waiting_for(status.last_verdict)}"
    manual = status.mode.value == "canary" and spec.promote.value == "manual"
    if manual and to_promote == 0:
        return "waiting for a manual promotion (canary promote NAMESPACE/NAME)"
    return (f"{'ready to promote' if manual else 'promoted'} after {to_promote} more passed "
            f"check{'s' * (to_promote != 1)} (~{_seconds(to_promote * analysis.interval)})"
            + (", then waits for a manual promotion" if manual else ""))


def _check_view(check: CheckResult) -> CheckView:
    return CheckView(
        name=check.name, result=check.result, canary=check.canary, baseline=check.baseline, limit=check.threshold,
        unit=check.unit, confidence=None if check.p_value is None else 1.0 - check.p_value, samples=check.samples,
        reason=check.reason, lower=check.lower, upper=check.upper, detect_seconds=check.detect_seconds,
        promote_seconds=check.promote_seconds,
    )


def _since(status: CanaryStatus) -> datetime | None:
    if status.phase in (CanaryPhase.WAITING, CanaryPhase.ANALYSING) and status.started_at is not None:
        return status.started_at
    return status.updated_at or status.started_at


ACTIVE_PHASES = frozenset({CanaryPhase.WAITING, CanaryPhase.ANALYSING, CanaryPhase.PROMOTING, CanaryPhase.FROZEN,
                           CanaryPhase.ROLLING_BACK})


def _replicaset_views(
    deployment: JsonObject, replicasets: list[JsonObject], status: CanaryStatus | None
) -> list[ReplicaSetView]:
    """Newest revision first, as `kubectl argo rollouts get` lists them. The current template is the canary
    while it is under analysis; the stable one is the last known good (else the newest older one)."""
    current = template_hash(deployment)
    under_analysis = status is not None and status.phase in ACTIVE_PHASES
    stable = (status.stable_hash if status else "") or (
        next((template_hash(rs) for rs in reversed(replicasets) if template_hash(rs) != current), "")
        if under_analysis else current)
    out = []
    for rs in reversed(replicasets):
        h = template_hash(rs)
        role: Literal["canary", "stable", "old"] = (
            "canary" if h == current and under_analysis else "stable" if h in (stable, current) else "old")
        st = rs.get("status") or {}
        out.append(ReplicaSetView(
            name=Body(rs).name, revision=revision(rs), role=role, images=list(PodOwner(rs).images),
            replicas=ReplicaSetBody(rs).spec_replicas, ready=int(st.get("readyReplicas") or 0),
        ))
    return out


def _pod_views(pods: list[JsonObject], replicasets: list[JsonObject]) -> list[PodView]:
    uids = {Body(rs).metadata.get("uid"): Body(rs).name for rs in replicasets}
    out = []
    for pod in pods:
        refs = Body(pod).metadata.get("ownerReferences") or []
        owner = next((uids[r.get("uid")] for r in refs if r.get("uid") in uids),
                     None)
        if owner is None:
            continue
        st = pod.get("status") or {}
        statuses = st.get("containerStatuses") or []
        out.append(PodView(
            name=Body(pod).name, replicaset=owner, phase=str(st.get("phase") or ""),
            ready=bool(statuses) and all(c.get("ready") for c in statuses),
            restarts=sum(int(c.get("restartCount") or 0) for c in statuses),
        ))
    return out


def _decision_views(events: list[JsonObject]) -> list[DecisionView]:
    def at(event: JsonObject) -> str:
        created = Body(event).metadata.get("creationTimestamp")
        return str(event.get("lastTimestamp") or event.get("eventTime") or created or "")

    ours = [e for e in events if CONTROLLER_COMPONENT in (e.get("reportingComponent"),
                                                          (e.get("source") or {}).get("component"))]
    newest = sorted(ours, key=at, reverse=True)[:MAX_DECISIONS]
    return [
        DecisionView(at=at(e) or None, type=str(e.get("type") or "Normal"), reason=str(e.get("reason") or ""),
                     message=str(e.get("message") or ""), count=int(e.get("count") or 1))
        for e in newest
    ]


def resolve_spec(deployment: JsonObject, slos: dict[tuple[str, str], ServiceSLO]) -> tuple[ServiceSLO | None,
                                                                                      ServiceSLOSpec | None]:
    """The SLO a Deployment names (or the embedded default) with its annotation overrides; None when unknown."""
    ns, name = Body(deployment).namespace, Body(deployment).name
    try:
        ann = parse_annotations(Body(deployment).annotations)
        slo = slos.get((ns, ann.slo)) if ann.slo else default_slo(service=name, namespace=ns)
        return slo, ann.apply(slo.spec) if slo else None
    except AnnotationError:
        return None, None


def build_view(
    deployment: JsonObject, replicasets: list[JsonObject], pods: list[JsonObject], events: list[JsonObject],
    slos: dict[tuple[str, str], ServiceSLO], detail: bool,
) -> DeploymentView:
    ns, name = Body(deployment).namespace, Body(deployment).name
    status, problem = read_status(Body(deployment).annotations)
    slo, spec = resolve_spec(deployment, slos)
    view = DeploymentView(
        namespace=ns, name=name, revision=str(revision(deployment) or ""), images=list(PodOwner(deployment).images),
        slo=slo.ref if slo else None, interval_seconds=spec.analysis.interval if spec else None,
        checks_needed=spec.analysis.successful_checks if spec else None,
        failed_limit=spec.analysis.failed_checks if spec else None,
    )
    if status is None:
        view.reason = problem or "not seen by the controller yet"
    else:
        view.mode = status.mode.value
        view.phase = status.phase
        view.since = _since(status)
        view.reason = status.message
        view.revision = status.revision or view.revision
        view.checks_passed, view.checks_failed = status.checks_passed, status.checks_failed
        view.last_verdict = status.last_verdict.phase if status.last_verdict else None
        view.last_check_at = status.last_check_at
        view.forecast = forecast(status, spec)
        view.pending_notifications = [
            NotificationView(type=e.type.value, revision=e.revision, at=e.at, reason=e.reason) for e in status.outbox
        ]
    if detail:
        if status is not None and status.last_verdict is not None:
            view.checks = [_check_view(c) for c in status.last_verdict.checks]
        view.replicasets = _replicaset_views(deployment, replicasets, status)
        view.pods = _pod_views(pods, replicasets)
        view.decisions = _decision_views(events)
        view.evidence = status.evidence if status is not None else None
    return view


# -- I/O: read the cluster ------------------------------------------------------------------------


def _plain(api_client: ApiClient, obj: Any) -> JsonObject:
    data: JsonObject = api_client.sanitize_for_serialization(obj)
    return data


class StatusReader:
    """Reads what `canary status` shows through the real client (list/get only)."""

    def __init__(self, api_client: ApiClient, timeout: float = 30.0) -> None:
        self.client = api_client
        self.timeout = timeout
        """Seconds each request may take (connect and read), so an unreachable API server is an error, not a
        hang."""
        self.apps = AppsV1Api(api_client)
        self.core = CoreV1Api(api_client)

    def _items(self, listed: Any) -> list[JsonObject]:
        return [_plain(self.client, item) for item in listed.items]

    def _optional(self, what: str, namespace: str | None, call: Callable[[], Any],
                  warnings: list[str]) -> list[JsonObject]:
        """A list the view can do without: a 403 becomes a warning shown with the view."""
        try:
            return self._items(call())
        except ApiException as exc:
            if exc.status != 403:
                raise
            where = f" in namespace {namespace}" if namespace else ""
            warnings.append(f"not allowed to list {what}{where} ({exc.status} {exc.reason}): not shown")
            return []

    def _slos(self, namespace: str | None, warnings: list[str]) -> dict[tuple[str, str], ServiceSLO]:
        kw: dict[str, Any] = {"label_selector": f"{SLO_CONFIGMAP_LABEL}=true", "_request_timeout": self.timeout}
        configmaps = self._optional(
            "ConfigMaps", namespace,
            lambda: (self.core.list_namespaced_config_map(namespace, **kw) if namespace
                     else self.core.list_config_map_for_all_namespaces(**kw)),
            warnings,
        )
        out: dict[tuple[str, str], ServiceSLO] = {}
        for cm in configmaps:
            for slo in load_configmap(cm).slos:
                out[(slo.metadata.namespace or "", slo.metadata.name)] = slo
        return out

    def list(self, namespace: str | None) -> list[DeploymentView]:
        t = self.timeout
        listed = (self.apps.list_namespaced_deployment(namespace, _request_timeout=t) if namespace
                  else self.apps.list_deployment_for_all_namespaces(_request_timeout=t))
        guarded = [d for d in self._items(listed) if is_enabled(Body(d).annotations)]
        warnings: list[str] = []
        slos = self._slos(namespace, warnings) if guarded else {}
        views = [build_view(d, [], [], [], slos, detail=False) for d in guarded]
        for view in views:
            view.warnings = warnings
        return sorted(views, key=lambda v: (v.namespace, v.name))

    def get(self, namespace: str, name: str) -> DeploymentView | None:
        """The detail view of one Deployment; None when it does not exist."""
        t = self.timeout
        try:
            deployment = _plain(self.client, self.apps.read_namespaced_deployment(name, namespace, _request_timeout=t))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        kw: dict[str, Any] = {"label_selector": label_selector(DeploymentBody(deployment).spec.get("selector")) or None,
              "_request_timeout": t}
        warnings: list[str] = []
        replicasets = owned_replicasets(deployment, self._optional(
            "ReplicaSets", namespace, lambda: self.apps.list_namespaced_replica_set(namespace, **kw), warnings))
        pods = self._optional("Pods", namespace, lambda: self.core.list_namespaced_pod(namespace, **kw), warnings)
        events = self._optional("Events", namespace, lambda: self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.kind=Deployment,involvedObject.name={name}",
            _request_timeout=t), warnings)
        view = build_view(deployment, replicasets, pods, events, self._slos(namespace, warnings), detail=True)
        view.baseline = self._baseline(deployment, namespace)
        view.warnings = warnings
        return view

    def _baseline(self, deployment: JsonObject, namespace: str) -> BaselineView | None:
        name = Body(deployment).annotations.get(BASELINE, "").strip()
        if not name:
            return None
        try:
            baseline = _plain(self.client, self.apps.read_namespaced_deployment(name, namespace,
                                                                                _request_timeout=self.timeout))
        except ApiException as exc:
            if exc.status in (403, 404):
                return BaselineView(name=name, found=False)
            raise
        st = baseline.get("status") or {}
        return BaselineView(name=name, images=list(PodOwner(baseline).images),
                            replicas=DeploymentBody(baseline).spec_replicas,
                            ready=int(st.get("readyReplicas") or 0))


def status_document(items: list[DeploymentView]) -> dict[str, Any]:
    """The `-o json|yaml` document."""
    view = StatusView(generated_at=datetime.now(UTC), items=items)
    data: dict[str, Any] = view.model_dump(mode="json", by_alias=True)
    return data
