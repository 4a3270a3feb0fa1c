"""Every rendered object, for every environment and profile, against Kubernetes 1.37's OpenAPI schemas."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from tests.stack.conftest import COMBINATIONS

KUBERNETES_VERSION = "1.37.0"


# Custom resources of add-ons (cert-manager) have no schema in Kubernetes' OpenAPI; tests/stack/test_tls.py
# checks them.
ADDON_GROUPS = ("cert-manager.io/",)


def _validate(obj: dict[str, Any]) -> None:
    if str(obj.get("apiVersion", "")).startswith(ADDON_GROUPS):
        return
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_object_of_every_environment_and_profile_is_valid(stacks: dict[tuple[str, str], list[Any]]) -> None:
    seen: set[str] = set()
    failures: list[str] = []
    for env, profile in COMBINATIONS:
        for obj in stacks[(env, profile)]:
            key = json.dumps(obj, sort_keys=True)
            if key in seen:  # identical across profiles: validated once
                continue
            seen.add(key)
            try:
                _validate(obj)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                failures.append(f"{env}/{profile} {obj['kind']} {obj['metadata']['name']}: {path}: {exc.message}")
    assert not failures, "\n".join(failures)
    assert len(seen) > 100


def test_controller_manifests_and_examples_are_valid(controller: list[Any]) -> None:
    import yaml

    from canary.stack.render import repo_dir

    examples = [
        doc
        for path in sorted((repo_dir("manifests") / "examples").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    ]
    for obj in controller + examples:
        _validate(obj)


def test_the_validator_rejects_a_broken_object(dev: list[Any]) -> None:
    """The schemas are really applied (strict: unknown fields fail too)."""
    deployment = next(o for o in dev if o["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)
    typo = json.loads(json.dumps(deployment))
    typo["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(typo)
