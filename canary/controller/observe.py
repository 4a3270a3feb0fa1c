"""Read a Deployment, its ReplicaSets and its baseline into what the decision and the sources need.

Pure functions over the plain dicts the Kubernetes API returns (camelCase keys, as on the wire).
"""

from __future__ import annotations

from typing import Any

from canary.config.slo import RollbackAction, ServiceSLOSpec
from canary.controller.status import CanaryStatus
from canary.kube.deployments import template_hash
from canary.samples import Target, Workload
from canary.vocabulary import CanaryPhase, Mode

Obj = dict[str, Any]


def meta(obj: Obj) -> Obj:
    m: Obj = obj.get("metadata") or {}
    return m


def rollback_action(spec: ServiceSLOSpec, mode: Mode) -> RollbackAction:
    """The SLO's (or annotation's) action, else undo in guard mode and scale-to-zero in canary mode."""
    if spec.rollback.action is not None:
        return spec.rollback.action
    return RollbackAction.UNDO if mode is Mode.GUARD else RollbackAction.SCALE_TO_ZERO


def ready_replicas(obj: Obj) -> int:
    return int((obj.get("status") or {}).get("readyReplicas") or 0)


def spec_replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def rollout_complete(deployment: Obj) -> bool:
    """The Deployment runs only its current template, all replicas available, as `kubectl rollout status`."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    if spec.get("paused"):
        return False
    want = spec_replicas(deployment)
    return (
        int(status.get("observedGeneration") or 0) >= int(meta(deployment).get("generation") or 0)
        and int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
    )


def split_replicasets(replicasets: list[Obj], current_hash: str) -> tuple[Obj | None, list[Obj]]:
    """(the ReplicaSet running `current_hash`, the other ReplicaSets that still have replicas).

    `replicasets` are oldest revision first, as `owned_replicasets` returns them (so are the others)."""
    canary = next((rs for rs in reversed(replicasets) if template_hash(rs) == current_hash), None)
    others = [
        rs for rs in replicasets
        if rs is not canary and (int((rs.get("spec") or {}).get("replicas") or 0) > 0 or ready_replicas(rs) > 0)
    ]
    return canary, others


def undo_source(replicasets: list[Obj], status: CanaryStatus, current_hash: str) -> Obj | None:
    """The ReplicaSet to restore: the stable template's, else the newest one before the current template.

    `replicasets` are oldest revision first, as `owned_replicasets` returns them."""
    stable = next(
        (rs for rs in reversed(replicasets) if status.stable_hash and template_hash(rs) == status.stable_hash), None
    )
    if stable is not None:
        return stable
    older = [rs for rs in replicasets if template_hash(rs) != current_hash]
    return older[-1] if older else None


def guard_unsupported(deployment: Obj) -> str | None:
    """Why guard mode cannot hold this Deployment's rollout at a canary step, or None."""
    strategy = ((deployment.get("spec") or {}).get("strategy") or {}).get("type")
    if strategy == "Recreate":
        return (
            "spec.strategy.type: Recreate replaces every pod at once, so there is no canary step to hold and "
            "analyse in guard mode; use RollingUpdate, or canary mode (a separate canary Deployment with "
            "canary.mop.dev/baseline)"
        )
    return None


def canary_ready(mode: Mode, deployment: Obj, canary_rs: Obj | None) -> bool:
    if mode is Mode.CANARY:
        return ready_replicas(deployment) > 0
    return canary_rs is not None and ready_replicas(canary_rs) > 0


def settled(
    phase: CanaryPhase, mode: Mode, action: RollbackAction, deployment: Obj, baseline: Obj | None
) -> bool:
    """Promoting: promotion complete. RollingBack: the rollback is in place."""
    if phase is CanaryPhase.PROMOTING:
        if mode is Mode.CANARY:
            return baseline is not None and promoted(baseline, deployment)
        return rollout_complete(deployment)
    if phase is CanaryPhase.ROLLING_BACK:
        if action is RollbackAction.UNDO:
            return rollout_complete(deployment)
        if action is RollbackAction.SCALE_TO_ZERO:
            return int((deployment.get("status") or {}).get("replicas") or 0) == 0
        return True
    return False


def _without_labels(obj: Obj) -> Obj:
    template = dict((obj.get("spec") or {}).get("template") or {})
    template["metadata"] = {k: v for k, v in (template.get("metadata") or {}).items() if k != "labels"}
    return template


def promoted(baseline: Obj, canary: Obj) -> bool:
    """Canary mode: the baseline runs the canary's pod template (its own pod labels aside)."""
    return _without_labels(baseline) == _without_labels(canary)


def target_for(
    deployment: Obj, mode: Mode, service: str, window: float, canary_rs: Obj | None,
    baseline_rss: list[Obj], baseline: Obj | None,
) -> Target | None:
    """What the sources measure for this canary; None when there is nothing to compare yet."""
    ns, name = meta(deployment).get("namespace", ""), meta(deployment)["name"]
    if mode is Mode.CANARY:
        if baseline is None:
            return None
        return Target(
            key=f"{ns}/{name}", service=service, window=window,
            canary=Workload(namespace=ns, deployment=name),
            baseline=(Workload(namespace=ns, deployment=meta(baseline)["name"]),),
        )
    if canary_rs is None:
        return None
    return Target(
        key=f"{ns}/{name}", service=service, window=window,
        canary=Workload(namespace=ns, deployment=name, replicaset=meta(canary_rs)["name"]),
        baseline=tuple(Workload(namespace=ns, deployment=name, replicaset=meta(rs)["name"]) for rs in baseline_rss),
    )


def images(obj: Obj) -> tuple[str, ...]:
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return tuple(str(c.get("image", "")) for c in containers)


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


def gitops_agent(deployment: Obj) -> str:
    """The GitOps agent that applies this Deployment's pod template from Git, or "" when none is seen.

    A manager of `managedFields` that owns `spec.template` wins; else the agents' tracking labels and
    annotations (Argo CD, Flux, Helm's `app.kubernetes.io/managed-by: Helm`)."""
    m = meta(deployment)
    for entry in m.get("managedFields") or []:
        agent = GITOPS_MANAGERS.get(str(entry.get("manager", "")))
        spec_fields = ((entry.get("fieldsV1") or {}).get("f:spec") or {}) if isinstance(entry, dict) else {}
        if agent and "f:template" in spec_fields:
            return agent
    labels, annotations = m.get("labels") or {}, m.get("annotations") or {}
    for key, agent in GITOPS_LABELS.items():
        if key in labels:
            return agent
    for key, agent in GITOPS_ANNOTATIONS.items():
        if key in annotations:
            return agent
    if str(labels.get("app.kubernetes.io/managed-by", "")).lower() == "helm":
        return "Helm"
    return ""


def rs_replicas(rs: Obj) -> int:
    """A ReplicaSet's pods: the larger of what it wants and what is ready (pods may still be terminating)."""
    return max(int((rs.get("spec") or {}).get("replicas") or 0), ready_replicas(rs))


def mid_rollout(current_hash: str, replicasets: list[Obj]) -> str:
    """First sight: the template of the newest other ReplicaSet that still runs pods, when the current
    template is not rolled out alone (under way, or not started); "" when the Deployment is rolled out.

    `replicasets` are oldest revision first."""
    _, others = split_replicasets(replicasets, current_hash)
    return template_hash(others[-1]) if others else ""


def serving_rejected(mode: Mode, deployment: Obj, canary_rs: Obj | None) -> bool:
    """The current (rejected) template could run pods: guard mode, the rollout is unpaused or its
    ReplicaSet has pods; canary mode, the Deployment asks for replicas."""
    if mode is Mode.CANARY:
        return spec_replicas(deployment) > 0 or ready_replicas(deployment) > 0
    paused = bool((deployment.get("spec") or {}).get("paused"))
    return not paused or (canary_rs is not None and rs_replicas(canary_rs) > 0)
