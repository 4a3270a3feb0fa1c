"""Rendered stacks for every environment x profile, evaluated once per test session (go-jsonnet)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from canary.stack import ENVIRONMENTS, PROFILES, load_kustomization, render
from canary.stack.render import repo_dir

Manifest = dict[str, Any]
COMBINATIONS = list(itertools.product(ENVIRONMENTS, PROFILES))


@pytest.fixture(scope="session")
def stacks() -> dict[tuple[str, str], list[Manifest]]:
    return {(env, profile): render(env, profile) for env, profile in COMBINATIONS}


@pytest.fixture(scope="session")
def dev() -> list[Manifest]:
    return render("dev")


@pytest.fixture(scope="session")
def controller() -> list[Manifest]:
    return load_kustomization(repo_dir("manifests"))


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name} among {len(objects)} objects")


def containers(obj: Manifest) -> list[Manifest]:
    spec = obj["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])
