"""Dependency order for applying the stack: foundations (namespaces, CRDs, RBAC, certificates, config,
Services, NetworkPolicies), then object storage, caches and Tempo's Kafka, then the backends, then the
pipeline, then Grafana, then the controller."""

from __future__ import annotations

from typing import Any, Final

WORKLOAD_KINDS: Final = frozenset({"Deployment", "StatefulSet", "DaemonSet"})

# Non-workload kinds, in the order they are applied within the foundation phase.
FOUNDATION_ORDER: Final = (
    "Namespace",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "ServiceAccount",
    "Secret",
    "ClusterIssuer",
    "Issuer",
    "Certificate",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "PodDisruptionBudget",
    "NetworkPolicy",
)

# app.kubernetes.io/component of a workload -> its phase.
COMPONENT_PHASE: Final = {
    "storage": "storage",
    "cache": "storage",
    "queue": "storage",
    "backend": "backends",
    "pipeline": "pipeline",
    "agent": "pipeline",
    "ui": "grafana",
}
PHASES: Final = ("foundation", "storage", "backends", "pipeline", "grafana", "controller")


def phase_of(obj: dict[str, Any]) -> str:
    if obj.get("kind") not in WORKLOAD_KINDS:
        return "foundation"
    component = ((obj.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component")
    return COMPONENT_PHASE.get(str(component), "controller")


def _foundation_rank(obj: dict[str, Any]) -> int:
    kind = str(obj.get("kind"))
    return FOUNDATION_ORDER.index(kind) if kind in FOUNDATION_ORDER else len(FOUNDATION_ORDER)


def plan(objects: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The objects grouped into phases, in apply order; empty phases are left out.

    Foundations of every phase go first (a Namespace before anything in it, a ConfigMap before the pod
    that mounts it); the input order is kept within a kind.
    """
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in PHASES}
    for obj in objects:
        groups[phase_of(obj)].append(obj)
    groups["foundation"].sort(key=_foundation_rank)
    return [(name, groups[name]) for name in PHASES if groups[name]]
