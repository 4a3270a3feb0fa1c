"""Is a workload ready? The checks `kubectl rollout status` makes, from the object's status alone."""

from __future__ import annotations

from typing import Any


def workload_ready(obj: dict[str, Any]) -> tuple[bool, str]:
    """(ready, what is still missing or a short summary) for a Deployment, StatefulSet or DaemonSet."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        return False, "waiting for the controller to observe the new generation"
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled", 0))
        updated = int(status.get("updatedNumberScheduled", 0))
        ready = int(status.get("numberAvailable", status.get("numberReady", 0)))
        if updated < desired or ready < desired:
            return False, f"{ready}/{desired} nodes ready, {updated} updated"
        return True, f"{ready}/{desired} nodes ready"
    replicas = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    if kind == "StatefulSet":
        ready = int(status.get("readyReplicas", 0))
        if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
            return False, f"{ready}/{replicas} ready, rolling to revision {status.get('updateRevision')}"
    else:
        ready = int(status.get("availableReplicas", 0))
        if int(status.get("replicas", 0)) > updated:
            return False, f"{updated}/{replicas} updated, old replicas terminating"
    if updated < replicas or ready < replicas:
        return False, f"{ready}/{replicas} ready, {updated} updated"
    return True, f"{ready}/{replicas} ready"
