"""Object storage with the API server's semantics: resourceVersions, conflicts, patches, apply, watch history.

One re-entrant lock guards everything; every write bumps one global resourceVersion counter and appends a
`Change` to a bounded history that watches replay from. Controllers (see `workloads`) are hooks run after
each top-level write, under the same lock, until the cluster settles.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from canary_testkit.kube import managed_fields as mf
from canary_testkit.kube.convert import from_storage, to_storage
from canary_testkit.kube.errors import (
    StatusError,
    already_exists,
    bad_request,
    conflict,
    expired,
    not_found,
)
from canary_testkit.kube.patches import apply_merge, json_patch, merge_patch, strategic_merge_patch
from canary_testkit.kube.registry import Registry, ResourceType
from canary_testkit.kube.selectors import (
    fields_match,
    format_label_selector,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from canary_testkit.kube.validation import apply_defaults, validate

Key = tuple[str, str]  # (namespace or "", name)
Storage = tuple[str, str]  # (group, plural)

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH, APPLY_PATCH)
_SETTLE_ROUNDS = 50


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    """One write, as a watch sees it: the stored object after it and before it."""

    rv: int
    storage: Storage
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


Hook = Callable[[list[Change]], None]


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Store:
    """All objects of the simulated cluster."""

    def __init__(self, registry: Registry, history_size: int = 1000) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.registry = registry
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[Storage, dict[Key, dict[str, Any]]] = {}
        self._rv = 0
        self._history: deque[Change] = deque(maxlen=history_size)
        self._floor = 0
        self._hooks: list[Hook] = []
        self._depth = 0
        self._pending: list[Change] = []

    # -- bookkeeping ---------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def add_hook(self, hook: Hook) -> None:
        self._hooks.append(hook)

    @contextmanager
    def _mutation(self) -> Iterator[None]:
        with self.lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            if self._depth == 0:
                self._settle()

    def _settle(self) -> None:
        self._depth += 1
        try:
            for _ in range(_SETTLE_ROUNDS):
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                for hook in self._hooks:
                    hook(batch)
            raise RuntimeError(f"simulated controllers did not settle after {_SETTLE_ROUNDS} rounds")
        finally:
            self._depth -= 1

    def _commit(self, storage: Storage, key: Key, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> int:
        self._rv += 1
        bucket = self._objects.setdefault(storage, {})
        if obj is None:
            assert old is not None
            bucket.pop(key, None)
            stored = copy.deepcopy(old)
            kind = "DELETED"
        else:
            stored = obj
            bucket[key] = obj
            kind = "ADDED" if old is None else "MODIFIED"
        stored.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        if len(self._history) == self._history.maxlen:
            self._floor = self._history[0].rv
        change = Change(self._rv, storage, kind, copy.deepcopy(stored), copy.deepcopy(old) if old else None)
        self._history.append(change)
        self._pending.append(change)
        self.changed.notify_all()
        return self._rv

    def expire_history(self) -> None:
        """Forget the history: a watch from any older resourceVersion gets 410 Expired."""
        with self.lock:
            self._history.clear()
            self._floor = self._rv

    def notify(self) -> None:
        with self.lock:
            self.changed.notify_all()

    # -- reading -------------------------------------------------------------------------------------

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (namespace or "", name) if rt.namespaced else ("", name)

    def _stored(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._objects.get(rt.storage, {}).get(self._key(rt, namespace, name))

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            stored = self._stored(rt, namespace, name)
            if stored is None:
                raise not_found(rt.plural, rt.group, name)
            return from_storage(rt, stored)

    def list_items(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        """A `<Kind>List`, sorted by namespace and name; `limit`/`continue` page through it."""
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, rt.group, rt.plural)
        start: list[str] | None = None
        if continue_token:
            try:
                start = json.loads(base64.b64decode(continue_token))["start"]
            except (ValueError, KeyError, TypeError) as err:
                raise bad_request(f"invalid continue token {continue_token!r}") from err
        with self.lock:
            items = []
            for key in sorted(self._objects.get(rt.storage, {})):
                if namespace and rt.namespaced and key[0] != namespace:
                    continue
                if start is not None and list(key) <= start:
                    continue
                obj = from_storage(rt, self._objects[rt.storage][key])
                if labels_match(labels, obj) and fields_match(fields, obj):
                    items.append(obj)
            rv = str(self._rv)
        metadata: dict[str, Any] = {"resourceVersion": rv}
        if limit and limit > 0 and len(items) > limit:
            items = items[:limit]
            last = items[-1]["metadata"]
            cont = {"start": [last.get("namespace", ""), last["name"]]}
            metadata["continue"] = base64.b64encode(json.dumps(cont).encode()).decode()
            metadata["remainingItemCount"] = 0
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata, "items": items}

    def scale(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """The `autoscaling/v1` Scale of a Deployment, ReplicaSet or StatefulSet."""
        return _scale_of(self.get(rt, namespace, name))

    # -- writing -------------------------------------------------------------------------------------

    def _incoming(self, rt: ResourceType, body: Any, namespace: str | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(f"the body of a {rt.kind} request must be a JSON object, not {type(body).__name__}")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if (api_version and api_version != rt.api_version) or (kind and kind != rt.kind):
            raise bad_request(
                f"the API version in the data ({api_version}) and kind ({kind}) do not match the expected "
                f"API version ({rt.api_version}) and kind ({rt.kind}) of {rt.qualified}"
            )
        obj = _without_nulls(to_storage(rt, body))
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request(f"metadata of the {rt.kind} must be an object")
        if rt.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise bad_request(
                    f"the namespace of the provided object ({meta['namespace']}) does not match the namespace "
                    f"sent on the request ({namespace})"
                )
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        return obj

    def _check_namespace(self, rt: ResourceType, namespace: str) -> None:
        if rt.namespaced and ("", namespace) not in self._objects.get(("", "namespaces"), {}):
            raise not_found("namespaces", "", namespace)

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        manager: str = "",
        operation: str = "Update",
    ) -> dict[str, Any]:
        with self._mutation():
            obj = self._incoming(rt, body, namespace)
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{secrets.token_hex(3)[:5]}"
            name = str(meta.get("name") or "")
            if not name:
                raise StatusError(
                    422,
                    f"{rt.kind}.{rt.group or 'core'} is invalid: metadata.name: Required value: "
                    "name or generateName is required",
                )
            ns = meta.get("namespace", "")
            self._check_namespace(rt, ns)
            if self._stored(rt, ns, name) is not None:
                raise already_exists(rt.plural, rt.group, name)
            for field in ("resourceVersion", "uid", "deletionTimestamp", "managedFields", "selfLink"):
                meta.pop(field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            meta["generation"] = 1
            if rt.has_status:
                obj.pop("status", None)
            owned = {(manager, operation, ""): set(mf.leaves(obj))}  # defaults below are nobody's
            apply_defaults(rt, obj, creating=True)
            validate(rt, obj, None)
            if manager and owned[(manager, operation, "")]:
                meta["managedFields"] = mf.render(owned, [], rt.api_version, now())
            if dry_run:
                return from_storage(rt, obj)
            self._commit(rt.storage, self._key(rt, ns, name), obj, None)
            return from_storage(rt, obj)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str = "",
    ) -> dict[str, Any]:
        with self._mutation():
            current = self._stored(rt, namespace, name)
            if current is None:
                raise not_found(rt.plural, rt.group, name)
            if subresource == "scale":
                return _scale_of(self._write_scale(rt, current, body, dry_run=dry_run, manager=manager))
            new = self._incoming(rt, body, namespace)
            return from_storage(rt, self._replace(rt, current, new, subresource, dry_run, manager))

    def _write_scale(
        self, rt: ResourceType, current: dict[str, Any], scale: Any, *, dry_run: bool, manager: str
    ) -> dict[str, Any]:
        if not rt.has_scale:
            raise not_found(f"{rt.plural}/scale", rt.group, current["metadata"]["name"])
        if not isinstance(scale, dict) or not isinstance((scale.get("spec") or {}).get("replicas"), int):
            raise StatusError(
                422,
                f'Scale.autoscaling "{current["metadata"]["name"]}" is invalid: spec.replicas: '
                "Required value: an integer",
            )
        new = copy.deepcopy(current)
        new["spec"]["replicas"] = scale["spec"]["replicas"]
        new["metadata"]["resourceVersion"] = (scale.get("metadata") or {}).get("resourceVersion")
        return self._replace(rt, current, new, "", dry_run, manager)

    def _replace(
        self,
        rt: ResourceType,
        current: dict[str, Any],
        new: dict[str, Any],
        subresource: str,
        dry_run: bool,
        manager: str,
        managed: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Store `new` in place of `current` with the API server's update rules; returns the stored object."""
        meta, old_meta = new.setdefault("metadata", {}), current["metadata"]
        name = old_meta["name"]
        if meta.get("name") not in (None, "", name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if meta.get("resourceVersion") not in (None, "", old_meta["resourceVersion"]):
            raise conflict(rt.plural, rt.group, name)
        if subresource == "status":
            result = copy.deepcopy(current)
            result["status"] = copy.deepcopy(new.get("status"))
            new = result
        else:
            if rt.has_status:
                new["status"] = copy.deepcopy(current.get("status"))
                if new["status"] is None:
                    new.pop("status")
            for field in ("uid", "creationTimestamp", "namespace", "name", "generation"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            meta["resourceVersion"] = old_meta["resourceVersion"]
            apply_defaults(rt, new, creating=False)
            validate(rt, new, current)
            if _spec_part(new) != _spec_part(current):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
            if managed is not None:
                meta["managedFields"] = managed
            else:
                meta["managedFields"] = self._track_update(rt, current, new, manager)
            if not meta["managedFields"]:
                meta.pop("managedFields")
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if new == current or dry_run:
            return new
        self._commit(rt.storage, self._key(rt, old_meta.get("namespace"), name), new, current)
        return new

    def _track_update(
        self, rt: ResourceType, current: dict[str, Any], new: dict[str, Any], manager: str
    ) -> list[dict[str, Any]]:
        previous = current["metadata"].get("managedFields") or []
        owned = mf.owners(current)
        old_leaves, new_leaves = mf.leaves(current), mf.leaves(new)
        changed = {p for p, v in new_leaves.items() if p not in old_leaves or old_leaves[p] != v}
        touched = changed | (set(old_leaves) - set(new_leaves))
        if not touched:
            return copy.deepcopy(previous)
        for key in owned:
            owned[key] = {p for p in owned[key] if not any(mf.overlaps(p, t) for t in touched)}
        if manager:
            me = (manager, "Update", "")
            owned[me] = owned.get(me, set()) | changed
        return mf.render(owned, previous, rt.api_version, now())

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: bytes,
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str = "",
        force: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Apply a patch; returns (object, created). Only apply patches create a missing object."""
        if patch_type not in PATCH_TYPES:
            raise StatusError(
                415,
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}",
            )
        document = _parse_patch(patch_type, body)
        with self._mutation():
            if patch_type == APPLY_PATCH:
                return self._apply(rt, namespace, name, document, subresource, dry_run, manager, force)
            current = self._stored(rt, namespace, name)
            if current is None:
                raise not_found(rt.plural, rt.group, name)
            served = _scale_of(from_storage(rt, current)) if subresource == "scale" else from_storage(rt, current)
            if patch_type == JSON_PATCH:
                patched = json_patch(served, document)
            elif patch_type == MERGE_PATCH:
                patched = merge_patch(served, document)
            else:
                patched = strategic_merge_patch(served, document)
            if subresource == "scale":
                return _scale_of(self._write_scale(rt, current, patched, dry_run=dry_run, manager=manager)), False
            new = self._incoming(rt, patched, namespace)
            return from_storage(rt, self._replace(rt, current, new, subresource, dry_run, manager)), False

    def _apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        applied: Any,
        subresource: str,
        dry_run: bool,
        manager: str,
        force: bool,
    ) -> tuple[dict[str, Any], bool]:
        if not manager:
            raise bad_request("PATCH apply: fieldManager is required for apply requests")
        if not isinstance(applied, dict) or not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request(
                f'apply of {rt.qualified} "{name}": the applied configuration must be an object '
                "with apiVersion and kind"
            )
        if (applied.get("metadata") or {}).get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({applied['metadata']['name']}) does not match the name on the URL ({name})"
            )
        intent = self._incoming(rt, applied, namespace)
        intent["metadata"]["name"] = name
        current = self._stored(rt, namespace, name)
        if current is None:
            return self.create(rt, namespace, applied, dry_run=dry_run, manager=manager, operation="Apply"), True
        me = (manager, "Apply", subresource)
        owned = mf.owners(current)
        wanted = mf.leaves(intent)
        conflicts: list[tuple[str, mf.Path]] = []
        for path, value in wanted.items():
            found, live = mf.lookup(current, path)
            if found and live == value:
                continue
            for key, paths in owned.items():
                if key[0] != manager and any(mf.overlaps(path, p) for p in paths):
                    conflicts.append((key[0], path))
        if conflicts and not force:
            text = "; ".join(f'conflict with "{who}": {_dotted(path)}' for who, path in conflicts)
            raise conflict(rt.plural, rt.group, name, f"Apply failed with {len(conflicts)} conflict(s): {text}")
        taken = {path for _, path in conflicts}
        for key in owned:
            if key[0] != manager:
                owned[key] = {p for p in owned[key] if not any(mf.overlaps(p, t) for t in taken)}
        merged = apply_merge(current, intent)
        for path in owned.get(me, set()) - set(wanted):
            shared = any(mf.overlaps(path, p) for key, paths in owned.items() if key != me for p in paths)
            if not shared and not any(mf.overlaps(path, w) for w in wanted):
                mf.remove(merged, path)
        owned[me] = set(wanted)
        managed = mf.render(owned, current["metadata"].get("managedFields") or [], rt.api_version, now())
        merged["metadata"]["resourceVersion"] = intent["metadata"].get("resourceVersion")
        return from_storage(rt, self._replace(rt, current, merged, subresource, dry_run, manager, managed)), False

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        dry_run: bool = False,
        orphan: bool = False,
        precondition_rv: str | None = None,
    ) -> dict[str, Any]:
        with self._mutation():
            current = self._stored(rt, namespace, name)
            if current is None:
                raise not_found(rt.plural, rt.group, name)
            if precondition_rv and precondition_rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name, "the ResourceVersion in the precondition does not match")
            if dry_run:
                return from_storage(rt, current)
            self._delete_tree(rt.storage, self._key(rt, namespace, name), orphan)
            return from_storage(rt, current)

    def _delete_tree(self, storage: Storage, key: Key, orphan: bool) -> None:
        current = self._objects.get(storage, {}).get(key)
        if current is None:
            return
        self._commit(storage, key, None, current)
        uid = current["metadata"]["uid"]
        dependents: list[tuple[Storage, Key]] = []
        for other, bucket in self._objects.items():
            for other_key, obj in bucket.items():
                refs = obj["metadata"].get("ownerReferences") or []
                owned = not orphan and any(r.get("uid") == uid for r in refs)
                in_namespace = storage == ("", "namespaces") and other_key[0] == key[1]
                if owned or in_namespace:
                    dependents.append((other, other_key))
        for other, other_key in dependents:
            self._delete_tree(other, other_key, orphan)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        with self._mutation():
            listed = self.list_items(rt, namespace, label_selector, field_selector)
            if not dry_run:
                for item in listed["items"]:
                    meta = item["metadata"]
                    self._delete_tree(rt.storage, self._key(rt, meta.get("namespace"), meta["name"]), False)
            return listed

    # -- used by the simulated controllers -------------------------------------------------------------

    def stored(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A copy of one stored object, or None."""
        with self.lock:
            found = self._stored(rt, namespace, name)
            return copy.deepcopy(found) if found is not None else None

    def objects(self, rt: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects (copies) of one resource."""
        with self.lock:
            return [
                copy.deepcopy(o)
                for k, o in sorted(self._objects.get(rt.storage, {}).items())
                if namespace is None or k[0] == namespace
            ]

    def put(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or overwrite an object as a controller does (no validation); a no-op when unchanged."""
        with self._mutation():
            meta = obj["metadata"]
            key = self._key(rt, meta.get("namespace"), meta["name"])
            current = self._objects.get(rt.storage, {}).get(key)
            obj = copy.deepcopy(obj)
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            if current is None:
                meta = obj["metadata"]
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now())
                meta.setdefault("generation", 1)
                self._commit(rt.storage, key, obj, None)
                return copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if _spec_part(obj) != _spec_part(current):
                obj["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
            if obj != current:
                self._commit(rt.storage, key, obj, current)
            return copy.deepcopy(obj)

    def remove(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        with self._mutation():
            self._delete_tree(rt.storage, self._key(rt, namespace, name), False)

    def drop_storage(self, storage: Storage) -> None:
        """Delete every object of a resource (its CRD is gone)."""
        with self._mutation():
            for key in sorted(self._objects.get(storage, {})):
                self._delete_tree(storage, key, False)

    # -- watch support -------------------------------------------------------------------------------

    def watch_start(self, rt: ResourceType, resource_version: str | None) -> tuple[int, list[Change]]:
        """The cursor a watch starts at, and its synthetic ADDED events (for an unset or "0" version)."""
        with self.lock:
            if resource_version in (None, "", "0"):
                initial = [
                    Change(self._rv, rt.storage, "ADDED", copy.deepcopy(o), None)
                    for _, o in sorted(self._objects.get(rt.storage, {}).items())
                ]
                return self._rv, initial
            try:
                cursor = int(str(resource_version))
            except ValueError as err:
                raise bad_request(f"invalid resourceVersion {resource_version!r}: must be an integer") from err
            if cursor < self._floor:
                raise expired(f"too old resource version: {cursor} ({self._floor + 1})")
            return cursor, []

    def changes_since(self, cursor: int) -> list[Change]:
        """Changes newer than `cursor`; 410 Expired when some of them were already dropped."""
        with self.lock:
            if cursor < self._floor:
                raise expired(f"too old resource version: {cursor} ({self._floor + 1})")
            return [c for c in self._history if c.rv > cursor]

    def wait_for_change(self, cursor: int, timeout: float) -> None:
        with self.changed:
            if self._rv <= cursor:
                self.changed.wait(timeout)


def _without_nulls(value: Any) -> Any:
    """Drop null fields, as decoding into the API's typed structs does."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _dotted(path: mf.Path) -> str:
    parts = []
    for step in path:
        if step.startswith("f:"):
            parts.append("." + step[2:])
        else:
            ((key, value),) = json.loads(step[2:]).items()
            parts.append(f"[{key}={json.dumps(value)}]")
    return "".join(parts)


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": format_label_selector(spec.get("selector")),
        },
    }


def _parse_patch(patch_type: str, body: bytes) -> Any:
    try:
        if patch_type == APPLY_PATCH:
            return yaml.safe_load(body.decode("utf-8"))
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as err:
        raise bad_request(f"the {patch_type} body is not valid: {err}") from err
