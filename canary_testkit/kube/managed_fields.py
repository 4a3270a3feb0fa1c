"""Field ownership for server-side apply: which manager set which field (`metadata.managedFields`).

A field is a path of `f:<name>` steps, `k:{"<key>":<value>}` for an item of a keyed list (containers by
name, ...), ending at a leaf: a scalar, an unkeyed list or an empty map, as in `fieldsV1`.
"""

from __future__ import annotations

import json
from typing import Any

from canary_testkit.kube.patches import merge_key

Path = tuple[str, ...]
_IDENTITY = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"}


def leaves(obj: dict[str, Any]) -> dict[Path, Any]:
    """Every owned leaf of an object and its value (identity metadata and status are not owned)."""
    result: dict[Path, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _IDENTITY}
            if not value:
                continue
        _walk(key, value, (), result)
    return result


def _walk(key: str, value: Any, prefix: Path, out: dict[Path, Any]) -> None:
    path = (*prefix, f"f:{key}")
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _walk(k, v, path, out)
        return
    if isinstance(value, list) and value:
        mkey = merge_key(key, value)
        if mkey is not None:
            for item in value:
                item_path = (*path, f"k:{json.dumps({mkey: item[mkey]}, separators=(',', ':'))}")
                for k, v in item.items():
                    _walk(k, v, item_path, out)
            return
    out[path] = value


def lookup(obj: Any, path: Path) -> tuple[bool, Any]:
    """(found, value) of a field path in an object."""
    current = obj
    for step in path:
        if step.startswith("f:") and isinstance(current, dict) and step[2:] in current:
            current = current[step[2:]]
        elif step.startswith("k:") and isinstance(current, list):
            ((key, value),) = json.loads(step[2:]).items()
            current = next((i for i in current if isinstance(i, dict) and i.get(key) == value), _MISSING)
            if current is _MISSING:
                return False, None
        else:
            return False, None
    return True, current


def remove(obj: dict[str, Any], path: Path) -> None:
    """Delete a field, then the maps and keyed-list items it leaves empty (in place)."""
    chain: list[tuple[Any, Any]] = []  # (container, key or index)
    current: Any = obj
    for step in path:
        if step.startswith("f:") and isinstance(current, dict) and step[2:] in current:
            chain.append((current, step[2:]))
            current = current[step[2:]]
        elif step.startswith("k:") and isinstance(current, list):
            ((key, value),) = json.loads(step[2:]).items()
            index = next((n for n, i in enumerate(current) if isinstance(i, dict) and i.get(key) == value), None)
            if index is None:
                return
            chain.append((current, index))
            current = current[index]
        else:
            return
    container, key = chain.pop()
    del container[key]
    while chain:
        holder, key = chain.pop()
        child = holder[key]
        emptied = not child or (isinstance(child, dict) and _only_key(child, path))
        if isinstance(child, dict | list) and emptied:
            del holder[key]
        else:
            break


def _only_key(item: dict[str, Any], path: Path) -> bool:
    """A keyed-list item left with nothing but its merge key."""
    keys = [json.loads(s[2:]) for s in path if s.startswith("k:")]
    return any(item == k for k in keys)


_MISSING = object()


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for step in path:
            node = node.setdefault(step, {})
            if step.startswith("k:"):
                node.setdefault(".", {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for step, child in tree.items():
        if step == ".":
            continue
        path = (*prefix, step)
        inner = {k: v for k, v in child.items() if k != "."} if isinstance(child, dict) else {}
        if inner:
            paths |= from_fields_v1(inner, path)
        elif not step.startswith("k:"):
            paths.add(path)
    return paths


def owners(obj: dict[str, Any]) -> dict[tuple[str, str, str], set[Path]]:
    """Owned paths per (manager, operation, subresource) from `metadata.managedFields`."""
    result: dict[tuple[str, str, str], set[Path]] = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        key = (entry.get("manager", ""), entry.get("operation", "Update"), entry.get("subresource", ""))
        result[key] = result.get(key, set()) | from_fields_v1(entry.get("fieldsV1") or {})
    return result


def overlaps(a: Path, b: Path) -> bool:
    """One path is the other or inside it."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def render(
    owned: dict[tuple[str, str, str], set[Path]],
    previous: list[dict[str, Any]],
    api_version: str,
    now: str,
) -> list[dict[str, Any]]:
    """`managedFields` entries; an entry whose fields did not change keeps its old time."""
    old = {(e.get("manager", ""), e.get("operation", "Update"), e.get("subresource", "")): e for e in previous}
    entries = []
    for key in sorted(owned):
        paths = owned[key]
        if not paths:
            continue
        fields = to_fields_v1(paths)
        before = old.get(key)
        time = before.get("time", now) if before and before.get("fieldsV1") == fields else now
        entry: dict[str, Any] = {
            "manager": key[0],
            "operation": key[1],
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        if key[2]:
            entry["subresource"] = key[2]
        entries.append(entry)
    return entries
