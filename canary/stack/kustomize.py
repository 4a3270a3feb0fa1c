"""The controller's Kustomize base, read without kustomize: a plain list of resource files.

Supported: `resources` (files, or directories with their own kustomization.yaml), `namespace`
(set on namespaced objects), `commonLabels`/`labels` are not used by the base and are refused, like
every other transformer, so that `canary up` never applies something different from `kubectl apply -k`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class KustomizeError(RuntimeError):
    """The kustomization cannot be read as a plain resource list; the message names the file."""


def load_kustomization(directory: Path) -> list[dict[str, Any]]:
    """Every object of the kustomization in `directory`, in `resources` order."""
    path = directory / "kustomization.yaml"
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KustomizeError(f"{path}: cannot read: {exc}") from None
    if not isinstance(spec, dict):
        raise KustomizeError(f"{path}: expected a mapping")
    unsupported = sorted(set(spec) - SUPPORTED)
    if unsupported:
        raise KustomizeError(f"{path}: field(s) {', '.join(unsupported)} not supported here; use kubectl apply -k")
    resources = spec.get("resources") or []
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise KustomizeError(f"{path}: field resources: expected a list of paths")
    out: list[dict[str, Any]] = []
    for entry in resources:
        target = directory / entry
        if target.is_dir():
            out.extend(load_kustomization(target))
            continue
        try:
            docs = list(yaml.safe_load_all(target.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as exc:
            raise KustomizeError(f"{path}: resource {entry}: {exc}") from None
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            if not isinstance(doc, dict) or not doc.get("kind") or not (doc.get("metadata") or {}).get("name"):
                raise KustomizeError(f"{target} (document {index + 1}): not a Kubernetes object (kind, metadata.name)")
            out.append(doc)
    namespace = spec.get("namespace")
    if namespace:
        for obj in out:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
    return out
