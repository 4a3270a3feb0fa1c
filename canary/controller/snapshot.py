"""Everything one reconcile needs, gathered once from the informer cache: the Deployment, its
configuration and status, its mode's strategy, the baseline, its ReplicaSets (read from the cache
only when a decision needs them), readiness and whether a rollout has settled. Decisions are made on
a Snapshot; the guarded write then re-reads the Deployment once, and writes only if the template and
the controller's own annotations are still the ones the Snapshot saw."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from canary.analysis import AnalysisRequest, Outcome
from canary.config.slo import RollbackAction, ServiceSLOSpec
from canary.controller.annotations import REQUESTS, Annotations
from canary.controller.configure import Config, Configurator
from canary.controller.machine import Observation
from canary.controller.status import STATUS_ANNOTATION, CanaryStatus, read_status
from canary.controller.strategies import STOPS_SERVING, Strategy
from canary.kube.bodies import DeploymentBody, ReplicaSetBody
from canary.kube.wire import JsonObject
from canary.samples import Target, Workload
from canary.vocabulary import CHECKED_PHASES, CanaryPhase

GITOPS_MANAGERS = {
    "argocd-controller": "Argo CD",
    "argocd-application-controller": "Argo CD",
    "kustomize-controller": "Flux (kustomize-controller)",
    "helm-controller": "Flux (helm-controller)",
    "helm": "Helm",
}
"""Field managers (`metadata.managedFields[].manager`) of the GitOps agents that re-apply a template."""
GITOPS_LABELS = {
    "argocd.argoproj.io/instance": "Argo CD",
    "kustomize.toolkit.fluxcd.io/name": "Flux (kustomize-controller)",
    "helm.toolkit.fluxcd.io/name": "Flux (helm-controller)",
}
GITOPS_ANNOTATIONS = {
    "argocd.argoproj.io/tracking-id": "Argo CD",
    "meta.helm.sh/release-name": "Helm",
}


@dataclass(frozen=True)
class Requests:
    """The request annotations (`canary abort|promote|retry`) that apply to the current template."""

    abort: bool = False
    promote: bool = False
    skip: bool = False
    retry: bool = False
    ignored: str = ""
    """Requests issued for another template: why they are dropped."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    deployment: DeploymentBody
    config: Config
    status: CanaryStatus | None
    baseline: DeploymentBody | None
    """Canary mode: the Deployment the canary is compared with and promoted into."""
    error: str | None
    """The configuration's, the status annotation's or the baseline's problem: the Deployment is Invalid."""
    list_replicasets: Callable[[], list[JsonObject]] = field(repr=False)
    """The Deployment's cached ReplicaSets, oldest revision first (read when first needed)."""

    @cached_property
    def replicasets(self) -> tuple[ReplicaSetBody, ...]:
        """Oldest revision first."""
        return tuple(ReplicaSetBody(rs) for rs in self.list_replicasets())

    @cached_property
    def _split(self) -> tuple[ReplicaSetBody | None, tuple[ReplicaSetBody, ...]]:
        return split_replicasets(self.replicasets, self.template_hash)

    @property
    def canary_rs(self) -> ReplicaSetBody | None:
        """The ReplicaSet running the current template."""
        return self._split[0]

    @property
    def others(self) -> tuple[ReplicaSetBody, ...]:
        """The other ReplicaSets that still have pods, oldest first (guard mode's baseline)."""
        return self._split[1]

    @property
    def strategy(self) -> Strategy:
        return self.config.strategy

    @property
    def spec(self) -> ServiceSLOSpec | None:
        return self.config.spec if self.error is None else None

    @property
    def annotations(self) -> Annotations | None:
        return self.config.annotations

    @property
    def template_hash(self) -> str:
        return self.deployment.template_hash

    @property
    def action(self) -> RollbackAction:
        """The effective rollback action: the SLO's (or annotation's), else the mode's default."""
        spec = self.spec
        if spec is None:
            return RollbackAction.NOTIFY_ONLY
        return spec.rollback.action or self.strategy.default_rollback()

    @cached_property
    def gitops(self) -> str:
        return gitops_agent(self.deployment)

    @cached_property
    def requests(self) -> Requests:
        return _requests(self.annotations, self.template_hash, self.status)

    @cached_property
    def previous(self) -> ReplicaSetBody | None:
        """The ReplicaSet of the stable template (else the newest one before the current template): what
        undo restores and what the canary is compared with."""
        stable_hash = self.status.stable_hash if self.status else ""
        for rs in reversed(self.replicasets):
            if stable_hash and rs.template_hash == stable_hash:
                return rs
        older = [rs for rs in self.replicasets if rs.template_hash != self.template_hash]
        return older[-1] if older else None

    @property
    def target(self) -> Target | None:
        """What the sources measure; None when there is nothing to compare yet."""
        return self.strategy.target(self)

    def compare(self, canary: Workload, baseline: tuple[Workload, ...]) -> Target | None:
        """The Target of this Deployment's SLO for these workloads (the strategies say which); None
        without a usable SLO."""
        spec = self.spec
        if spec is None:
            return None
        return Target(key=self.deployment.ref, service=spec.service, window=spec.analysis.window,
                      canary=canary, baseline=baseline)

    @property
    def guarded_state(self) -> tuple[object, ...]:
        """What a guarded write checks on the fresh read: the template, the status and the requests."""
        return _guarded_state(self.deployment)

    def observation(self, outcome: Outcome | None, now: datetime) -> Observation:
        """What the state machine needs; `outcome` is a check measured on this Snapshot."""
        status, spec, current = self.status, self.spec, self.template_hash
        verdict = outcome.verdict if outcome is not None and status is not None and status.template_hash == current \
            else None
        if verdict is not None and spec is not None and looked_recently(status, spec, now):
            verdict = None
        first_sight_stable = mid_rollout(current, self.replicasets) if status is None else ""
        requests = self.requests
        return Observation(
            mode=self.strategy.mode,
            template_hash=current,
            revision=str(self.deployment.revision or 0),
            config_error=self.error,
            abort=requests.abort,
            skip=requests.skip or requests.promote,
            promote_requested=requests.promote,
            retry=requests.retry,
            ignored_request=requests.ignored,
            rolling_out=bool(first_sight_stable),
            previous_hash=first_sight_stable,
            rejected_serving=status is not None and current in status.rejected and self.action in STOPS_SERVING
            and self.strategy.serving_rejected(self),
            gitops=self.gitops,
            canary_ready=self.strategy.canary_ready(self),
            settled=status is not None and self.strategy.settled(self),
            verdict=verdict,
            cumulative=outcome.cumulative if outcome is not None and verdict is not None else None,
        )

    def due(self, interval: float, now: datetime) -> AnalysisRequest | None:
        """The check this canary needs in a tick of `interval`, or None when it is not due."""
        status, spec = self.status, self.spec
        if status is None or spec is None or status.phase not in CHECKED_PHASES:
            return None
        if spec.analysis.interval != interval or status.template_hash != self.template_hash:
            return None
        if looked_recently(status, spec, now):
            return None
        target = self.target
        if target is None:
            return None
        # Each check measures the last window and adds its new share to the evidence kept in the status.
        return AnalysisRequest(target=target, slo=spec, look=status.looks + 1, cumulative=status.cumulative)

    def waiting(self, interval: float) -> bool:
        """Waiting for its canary with this interval: nothing to measure, but analysis.maxWait may pass."""
        status, spec = self.status, self.spec
        return (
            status is not None and spec is not None and status.phase is CanaryPhase.WAITING
            and spec.analysis.interval == interval and status.stuck_at is None
        )


def take_snapshot(
    deployment: JsonObject, replicasets: Callable[[JsonObject], list[JsonObject]], configurator: Configurator,
    lookup: Callable[[str, str], JsonObject | None],
) -> Snapshot:
    """Build the Snapshot of one cached Deployment; `replicasets` lists its cached ReplicaSets oldest
    revision first and `lookup` finds another cached Deployment (canary mode's baseline)."""
    body = DeploymentBody(deployment)
    config = configurator.resolve(body)
    status, status_error = read_status(body.annotations)

    def find(namespace: str, name: str) -> DeploymentBody | None:
        found = lookup(namespace, name)
        return DeploymentBody(found) if found is not None else None

    baseline, baseline_error = config.strategy.baseline(body, config.annotations, find)
    return Snapshot(body, config, status, baseline, config.error or baseline_error or status_error,
                    lambda: replicasets(deployment))


def _guarded_state(deployment: DeploymentBody) -> tuple[object, ...]:
    annotations = deployment.annotations
    return (deployment.template_hash, annotations.get(STATUS_ANNOTATION), *(annotations.get(k) for k in REQUESTS))


def guarded_state_of(deployment: JsonObject) -> tuple[object, ...]:
    return _guarded_state(DeploymentBody(deployment))


def looked_recently(status: CanaryStatus | None, spec: ServiceSLOSpec, now: datetime) -> bool:
    """A look was counted less than half an interval ago (by this or another replica): one per interval."""
    if status is None or status.last_check_at is None:
        return False
    return (now - status.last_check_at).total_seconds() < spec.analysis.interval / 2


def split_replicasets(
    replicasets: tuple[ReplicaSetBody, ...], current_hash: str
) -> tuple[ReplicaSetBody | None, tuple[ReplicaSetBody, ...]]:
    """(the ReplicaSet running `current_hash`, the other ReplicaSets that still have pods), oldest first."""
    canary = next((rs for rs in reversed(replicasets) if rs.template_hash == current_hash), None)
    return canary, tuple(rs for rs in replicasets if rs is not canary and rs.active)


def mid_rollout(current_hash: str, replicasets: tuple[ReplicaSetBody, ...]) -> str:
    """First sight: the template of the newest other ReplicaSet that still runs pods, when the current
    template is not rolled out alone (under way, or not started); "" when the Deployment is rolled out."""
    _, others = split_replicasets(replicasets, current_hash)
    return others[-1].template_hash if others else ""


def gitops_agent(deployment: DeploymentBody) -> str:
    """The GitOps agent that applies this Deployment's pod template from Git, or "" when none is seen.

    A manager of `managedFields` that owns `spec.template` wins; else the agents' tracking labels and
    annotations (Argo CD, Flux, Helm's `app.kubernetes.io/managed-by: Helm`)."""
    for entry in deployment.managed_fields:
        agent = GITOPS_MANAGERS.get(str(entry.get("manager", "")))
        fields = entry.get("fieldsV1")
        spec_fields = fields.get("f:spec") if isinstance(fields, dict) else None
        if agent and isinstance(spec_fields, dict) and "f:template" in spec_fields:
            return agent
    labels, annotations = deployment.labels, deployment.annotations
    for key, agent in GITOPS_LABELS.items():
        if key in labels:
            return agent
    for key, agent in GITOPS_ANNOTATIONS.items():
        if key in annotations:
            return agent
    if labels.get("app.kubernetes.io/managed-by", "").lower() == "helm":
        return "Helm"
    return ""


def _requests(ann: Annotations | None, current_hash: str, status: CanaryStatus | None) -> Requests:
    """The request annotations that apply to the current template: "true", or the hash they were issued
    for when it is both the current template and the one the status is about. Others are dropped."""
    if ann is None:
        return Requests()
    about = status.template_hash if status is not None else ""

    def applies(value: str | None) -> bool:
        return value == "true" or (value is not None and value == current_hash == about)

    stale = [
        f"{key} was requested for template {value}, but the Deployment now runs {current_hash}: dropped"
        for key, value in (("abort", ann.abort), ("promote", ann.promote), ("skip", ann.skip), ("retry", ann.retry))
        if value is not None and not applies(value)
    ]
    return Requests(
        abort=applies(ann.abort), promote=applies(ann.promote), skip=applies(ann.skip), retry=applies(ann.retry),
        ignored="; ".join(stale),
    )
