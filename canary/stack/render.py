"""`stack/environments/<env>/main.jsonnet` -> a flat list of Kubernetes objects.

Evaluated with go-jsonnet (the `gojsonnet` bindings, the engine Tanka uses), so `canary stack render`
and `tk show` print the same objects. Tanka's nesting (objects grouped by component) is flattened the
way Tanka does it: every object with `apiVersion` and `kind` is a manifest, anything else is walked.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import _gojsonnet
import yaml

ENVIRONMENTS: Final = ("dev", "staging", "production")
PROFILES: Final = ("small", "medium", "large")
STACK_DIR_ENV: Final = "CANARY_STACK_DIR"

Manifest = dict[str, Any]


class RenderError(RuntimeError):
    """The stack could not be rendered; the message names the environment and the cause."""


def repo_dir(name: str) -> Path:
    """`stack/` or `manifests/` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / name


def stack_dir(explicit: Path | None = None) -> Path:
    """The stack directory: `explicit`, else `$CANARY_STACK_DIR`, else the repository's `stack/`."""
    path = explicit or (Path(os.environ[STACK_DIR_ENV]) if os.environ.get(STACK_DIR_ENV) else repo_dir("stack"))
    if not (path / "environments").is_dir():
        raise RenderError(f"{path} is not a stack directory (no environments/ in it); pass --stack-dir")
    return path


def _flatten(node: Any, where: str, out: list[Manifest]) -> None:
    if isinstance(node, dict):
        if "apiVersion" in node and "kind" in node:
            meta = node.get("metadata")
            if not isinstance(meta, dict) or not meta.get("name"):
                raise RenderError(f"{where}: {node['kind']} has no metadata.name")
            out.append(node)
            return
        for key in sorted(node):
            _flatten(node[key], f"{where}.{key}", out)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _flatten(item, f"{where}[{i}]", out)
    elif node is not None:
        raise RenderError(f"{where}: expected Kubernetes objects, found {type(node).__name__} {node!r:.60}")


@lru_cache(maxsize=32)
def _evaluate(main: str, libdir: str, profile: str | None) -> str:
    tla = {"profile": profile} if profile else {}
    return str(_gojsonnet.evaluate_file(main, jpathdir=[libdir], tla_vars=tla))


def render(env: str, profile: str | None = None, stack: Path | None = None) -> list[Manifest]:
    """Every object of the environment, in the order Tanka would list them (component, then name).

    `profile` None: the environment's own default (dev small, staging medium, production large).
    """
    if env not in ENVIRONMENTS:
        raise RenderError(f"unknown environment {env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    if profile is not None and profile not in PROFILES:
        raise RenderError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    root = stack_dir(stack)
    main = root / "environments" / env / "main.jsonnet"
    if not main.is_file():
        raise RenderError(f"environment {env}: {main} does not exist")
    try:
        text = _evaluate(str(main), str(root / "lib"), profile)
    except RuntimeError as exc:
        raise RenderError(f"environment {env}: jsonnet evaluation failed: {exc}") from None
    out: list[Manifest] = []
    _flatten(json.loads(text), env, out)
    return out


def ref(obj: Manifest) -> str:
    """`Kind namespace/name` (or `Kind name` for cluster-scoped objects), as used in every message."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns}/{meta.get('name')}" if ns else f"{obj.get('kind')} {meta.get('name')}"


def to_yaml(objects: list[Manifest]) -> str:
    """A multi-document YAML stream, as `kubectl apply -f -` reads it."""
    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False, default_flow_style=False) for o in objects)
