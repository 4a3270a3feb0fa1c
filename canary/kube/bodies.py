"""Typed, read-only views over the raw Deployment and ReplicaSet dicts the API server and the informers
return (camelCase keys, as on the wire), in the spirit of kopf's `bodies.py`: every absent or null
field reads as its Kubernetes default, so callers never chain `(x or {})`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from canary.kube.deployments import revision, template_hash
from canary.kube.wire import JsonObject


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int = 0) -> int:
    try:
        return default if value is None else int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True, eq=False)
class Body:
    """An object's metadata."""

    raw: JsonObject

    @cached_property
    def metadata(self) -> Mapping[str, Any]:
        return _map(self.raw.get("metadata"))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def ref(self) -> str:
        """`namespace/name`, as messages name the object."""
        return f"{self.namespace}/{self.name}"

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def resource_version(self) -> str:
        return str(self.metadata.get("resourceVersion") or "")

    @property
    def generation(self) -> int:
        return _int(self.metadata.get("generation"))

    @cached_property
    def labels(self) -> Mapping[str, str]:
        return {str(k): str(v) for k, v in _map(self.metadata.get("labels")).items()}

    @cached_property
    def annotations(self) -> Mapping[str, str]:
        return {str(k): v for k, v in _map(self.metadata.get("annotations")).items()}

    @property
    def managed_fields(self) -> list[Mapping[str, Any]]:
        fields = self.metadata.get("managedFields")
        return [_map(f) for f in fields] if isinstance(fields, list) else []

    @cached_property
    def spec(self) -> Mapping[str, Any]:
        return _map(self.raw.get("spec"))

    @cached_property
    def status(self) -> Mapping[str, Any]:
        return _map(self.raw.get("status"))


@dataclass(frozen=True, eq=False)
class PodOwner(Body):
    """What Deployments and ReplicaSets share: replicas and a pod template."""

    @property
    def spec_replicas(self) -> int:
        """`spec.replicas`, 1 when unset (the API default)."""
        return _int(self.spec.get("replicas"), 1)

    @property
    def ready_replicas(self) -> int:
        return _int(self.status.get("readyReplicas"))

    @property
    def replicas(self) -> int:
        """`status.replicas`: the pods that exist now."""
        return _int(self.status.get("replicas"))

    @cached_property
    def template(self) -> Mapping[str, Any]:
        return _map(self.spec.get("template"))

    @property
    def pod_labels(self) -> Mapping[str, Any]:
        """`spec.template.metadata.labels`."""
        return _map(_map(self.template.get("metadata")).get("labels"))

    @cached_property
    def template_hash(self) -> str:
        """The controller's identity of a revision (see `canary.kube.deployments.template_hash`)."""
        return template_hash(self.raw)

    @property
    def revision(self) -> int | None:
        return revision(self.raw)

    @property
    def images(self) -> tuple[str, ...]:
        containers = _map(self.template.get("spec")).get("containers")
        return tuple(str(_map(c).get("image", "")) for c in containers) if isinstance(containers, list) else ()


@dataclass(frozen=True, eq=False)
class ReplicaSetBody(PodOwner):
    @property
    def spec_replicas(self) -> int:
        """`spec.replicas`, 0 when unset (what a scaled-down ReplicaSet reads as)."""
        return _int(self.spec.get("replicas"))

    @property
    def pods(self) -> int:
        """The larger of what it wants and what is ready (pods may still be terminating)."""
        return max(self.spec_replicas, self.ready_replicas)

    @property
    def active(self) -> bool:
        return self.spec_replicas > 0 or self.ready_replicas > 0


@dataclass(frozen=True, eq=False)
class DeploymentBody(PodOwner):
    @property
    def paused(self) -> bool:
        return bool(self.spec.get("paused"))

    @property
    def strategy_type(self) -> str:
        return str(_map(self.spec.get("strategy")).get("type") or "RollingUpdate")

    @property
    def rollout_complete(self) -> bool:
        """Runs only its current template, all replicas available, as `kubectl rollout status` says."""
        if self.paused:
            return False
        want, s = self.spec_replicas, self.status
        return (
            _int(s.get("observedGeneration")) >= self.generation
            and _int(s.get("updatedReplicas")) == want
            and _int(s.get("replicas")) == want
            and _int(s.get("availableReplicas")) == want
        )

    def template_without_labels(self) -> Mapping[str, Any]:
        """The pod template, its own pod labels aside (canary mode compares baseline and canary so)."""
        template = dict(self.template)
        template["metadata"] = {k: v for k, v in _map(template.get("metadata")).items() if k != "labels"}
        return template
