"""JSON merge patch (RFC 7386), strategic merge patch, JSON patch (RFC 6902) and the server-side apply merge.

All functions are pure: they return a new document and never change their arguments.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from canary_testkit.kube.errors import StatusError

MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "ports": "containerPort",
}
"""Strategic-merge keys by field name (the `patchMergeKey` of the Kubernetes API types)."""


def merge_key(field: str, items: list[Any]) -> str | None:
    """The merge key of a list field, or None for a list that is replaced as a whole."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    key = MERGE_KEYS.get(field)
    if field == "ports" and not any("containerPort" in i for i in items):
        key = "port"  # Service ports
    if key is None or not all(key in i for i in items):
        return None
    return key


def invalid_patch(message: str) -> StatusError:
    return StatusError(422, f"the server rejected our request due to an error in our request: {message}")


# -- RFC 7386 ------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- strategic merge patch -----------------------------------------------------------------------


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Maps merged recursively; keyed lists (containers, env, ports, ...) merged by key; others replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value, strategic_merge_patch)
        elif isinstance(value, list):
            result[key] = [_strip_directives(v) for v in value if not _is_delete(v)]
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _is_delete(item: Any) -> bool:
    return isinstance(item, dict) and item.get("$patch") == "delete"


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_list(field: str, current: list[Any], patch: list[Any], merge: Any) -> list[Any]:
    key = merge_key(field, [i for i in patch if not _is_delete(i)] or patch) or merge_key(field, current)
    if key is None or not all(isinstance(i, dict) and key in i for i in patch):
        return [_strip_directives(v) for v in patch if not _is_delete(v)]
    result = copy.deepcopy(current)
    for item in patch:
        index = next((n for n, c in enumerate(result) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if _is_delete(item):
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = merge(result[index], item)
    return result


# -- server-side apply ---------------------------------------------------------------------------


def apply_merge(current: Any, applied: Any) -> Any:
    """Merge an applied configuration into the live object (nulls are values, keyed lists merge)."""
    if not isinstance(applied, dict) or not isinstance(current, dict):
        return copy.deepcopy(applied)
    result = copy.deepcopy(current)
    for key, value in applied.items():
        if isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value, apply_merge)
        else:
            result[key] = apply_merge(result.get(key), value)
    return result


# -- RFC 6902 ------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise invalid_patch(f'JSON pointer "{path}" must start with "/"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise invalid_patch(f'"{token}" in "{path}" is not an array index')
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise invalid_patch(f'array index {index} out of range in "{path}"')
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    current = doc
    for token in tokens[:-1]:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(current, token, path, False)]
        else:
            raise invalid_patch(f'path "{path}" does not exist')
    return current


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if tokens[-1] not in parent:
            raise invalid_patch(f'path "{path}" does not exist')
        return parent[tokens[-1]]
    if isinstance(parent, list):
        return parent[_index(parent, tokens[-1], path, False)]
    raise invalid_patch(f'path "{path}" does not exist')


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], path, True), value)
    else:
        raise invalid_patch(f'path "{path}" does not exist')
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise invalid_patch("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict) and tokens[-1] in parent:
        del parent[tokens[-1]]
    elif isinstance(parent, list):
        del parent[_index(parent, tokens[-1], path, False)]
    else:
        raise invalid_patch(f'path "{path}" does not exist')
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """Apply RFC 6902 operations; a failed `test` or a missing path is a 422 naming the operation."""
    if not isinstance(operations, list):
        raise StatusError(400, "a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise invalid_patch(f"JSON patch operation {number} needs 'op' and 'path': {json.dumps(op)}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise invalid_patch(f"JSON patch operation {number} ({kind} {path}) needs a 'value'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, copy.deepcopy(op["value"])) if _pointer(path) else op["value"]
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise invalid_patch(f"JSON patch operation {number} ({kind} {path}) needs 'from'")
            value = copy.deepcopy(_get(doc, op["from"]))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise invalid_patch(f'test operation {number} failed: "{path}" is not {json.dumps(op["value"])}')
        else:
            raise invalid_patch(f"JSON patch operation {number} has unknown op {kind!r}")
    return doc
