"""Manifests the simulator tests create."""

from __future__ import annotations

import copy
from typing import Any


def deployment(name: str = "web", image: str = "web:1", replicas: int = 4, **spec: Any) -> dict[str, Any]:
    """A minimal valid Deployment manifest."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]},
            },
            **copy.deepcopy(spec),
        },
    }
