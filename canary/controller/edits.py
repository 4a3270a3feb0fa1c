"""What the controller can change on a Deployment, as values: a plan lists them, the executor applies
them to a fresh read inside one guarded write, together with the new status annotation."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canary.controller.annotations import REQUESTS
from canary.controller.status import STATUS_ANNOTATION, CanaryStatus
from canary.kube.bodies import DeploymentBody
from canary.kube.deployments import POD_TEMPLATE_HASH_LABEL
from canary.kube.wire import JsonObject


@dataclass(frozen=True)
class SetPaused:
    """`spec.paused`: hold (True) or resume (False) the rolling update."""

    paused: bool


@dataclass(frozen=True)
class SetReplicas:
    replicas: int


@dataclass(frozen=True)
class RestoreTemplate:
    """What `kubectl rollout undo` writes: a ReplicaSet's pod template without `pod-template-hash`,
    and the rollout resumed."""

    replicaset: str
    template: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True)
class ClearRequests:
    """Remove the one-shot request annotations (abort, skip, promote, retry): each is consumed once."""


Edit = SetPaused | SetReplicas | RestoreTemplate | ClearRequests


@dataclass(frozen=True)
class ScaleReplicaSet:
    """A ReplicaSet's `scale` subresource, written after the Deployment (guard mode: rejected templates
    to 0 pods at once, the stable one given pods first when it has none)."""

    name: str
    replicas: int
    seen_version: str = field(default="", compare=False)
    """The ReplicaSet's resourceVersion in the Snapshot: the executor does not repeat a scale it already
    made while the cache still shows this version (the informer has not caught up with it yet)."""


def apply(deployment: JsonObject, edits: Iterable[Edit]) -> None:
    """Apply `edits` in place, in order."""
    spec = deployment.setdefault("spec", {})
    for edit in edits:
        if isinstance(edit, SetPaused):
            if edit.paused:
                spec["paused"] = True
            else:
                spec.pop("paused", None)
        elif isinstance(edit, SetReplicas):
            spec["replicas"] = edit.replicas
        elif isinstance(edit, RestoreTemplate):
            template = copy.deepcopy(dict(edit.template))
            labels = template.get("metadata", {}).get("labels")
            if isinstance(labels, dict):
                labels.pop(POD_TEMPLATE_HASH_LABEL, None)
            spec["template"] = template
            spec.pop("paused", None)
        else:
            annotations = deployment.setdefault("metadata", {}).get("annotations")
            for key in REQUESTS if isinstance(annotations, dict) else ():
                annotations.pop(key, None)


def copy_template(baseline: JsonObject, canary: DeploymentBody) -> None:
    """Promote: the canary's pod template into the baseline, keeping the baseline's own pod labels
    (its selector must keep matching)."""
    template = copy.deepcopy(dict(canary.template))
    template["metadata"] = {**dict(template.get("metadata") or {}),
                            "labels": copy.deepcopy(dict(DeploymentBody(baseline).pod_labels))}
    baseline.setdefault("spec", {})["template"] = template


def set_status(deployment: JsonObject, status: CanaryStatus) -> None:
    """The status annotation. Called by canary.controller.executor.StatusWriter only: it has one writer."""
    deployment.setdefault("metadata", {}).setdefault("annotations", {})[STATUS_ANNOTATION] = status.to_annotation()
