"""Pure edits of Deployment dicts: what each action writes. The reconciler sends the result in one
resourceVersion-guarded update, together with the new status annotation."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from canary.controller.annotations import REQUESTS
from canary.controller.observe import Obj, meta
from canary.controller.status import STATUS_ANNOTATION, CanaryStatus

POD_TEMPLATE_HASH = "pod-template-hash"


def set_paused(deployment: Obj, paused: bool) -> None:
    spec = deployment.setdefault("spec", {})
    if paused:
        spec["paused"] = True
    else:
        spec.pop("paused", None)


def set_replicas(deployment: Obj, replicas: int) -> None:
    deployment.setdefault("spec", {})["replicas"] = replicas


def restore_template(deployment: Obj, replicaset: Obj) -> None:
    """What `kubectl rollout undo` writes: the ReplicaSet's pod template without `pod-template-hash`."""
    template = copy.deepcopy((replicaset.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(POD_TEMPLATE_HASH, None)
    deployment.setdefault("spec", {})["template"] = template
    set_paused(deployment, False)


def copy_template(baseline: Obj, canary: Obj) -> None:
    """Promote: the canary's pod template into the baseline, keeping the baseline's own pod labels
    (its selector must keep matching)."""
    template = copy.deepcopy((canary.get("spec") or {}).get("template") or {})
    own_labels = ((baseline.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels")
    template.setdefault("metadata", {})["labels"] = copy.deepcopy(own_labels or {})
    baseline.setdefault("spec", {})["template"] = template


def write_status(deployment: Obj, status: CanaryStatus) -> None:
    metadata = deployment.setdefault("metadata", {})
    metadata.setdefault("annotations", {})[STATUS_ANNOTATION] = status.to_annotation()


def clear_requests(deployment: Obj, keys: Iterable[str] = REQUESTS) -> None:
    annotations = meta(deployment).get("annotations") or {}
    for key in keys:
        annotations.pop(key, None)
