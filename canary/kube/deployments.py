"""Deployments and their ReplicaSets as plain JSON dicts, and the one guarded way to write a Deployment.

`template_hash` is the controller's identity of a revision: the same pod template hashes the same
whether read from a Deployment or from one of its ReplicaSets. `update_deployment` re-reads before
writing, drops the write when the template changed since the verdict, and sends only what changed as a
JSON merge patch that carries `metadata.resourceVersion` (the API server refuses it with 409 Conflict
when the object moved on, exactly as a guarded PUT), retrying 409 Conflicts on a fresh read. Patches
need only the `patch` verb, and leave every field the controller did not mean to change to its owner.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, Literal

from kubernetes.client import ApiClient, AppsV1Api
from pydantic import BaseModel, ConfigDict

from canary.kube.wire import REQUEST_TIMEOUT, JsonObject, KubeApiError, call_json, describe, send_json, status_of

log = logging.getLogger(__name__)

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
MERGE_PATCH = "application/merge-patch+json"

WriteStatus = Literal["written", "unchanged", "template-changed", "not-found", "conflict", "error", "fenced"]
Mutation = Callable[[JsonObject], JsonObject | None]


class WriteOutcome(BaseModel):
    """What a guarded write did. `deployment` is the object as written (status `written`), else as last read."""

    model_config = ConfigDict(frozen=True)

    status: WriteStatus
    deployment: JsonObject | None = None
    reason: str = ""
    conflicts: int = 0
    """409 Conflicts met (and retried) on the way."""


# -- pure helpers ----------------------------------------------------------------------------------


def _pruned(value: Any) -> Any:
    """Drop nulls and empty maps/lists, which the API treats as absent (`creationTimestamp: null`, `{}`)."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _template_without_hash_label(obj: JsonObject) -> JsonObject:
    template: JsonObject = copy.deepcopy((obj.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return template


def pod_template(obj: JsonObject) -> JsonObject:
    """`spec.template` of a Deployment or ReplicaSet, without `pod-template-hash` and without empty fields."""
    return _pruned(_template_without_hash_label(obj))


def template_hash(obj: JsonObject) -> str:
    """Stable 16-hex-digit hash of the pod template of a Deployment or ReplicaSet (see `pod_template`)."""
    canonical = json.dumps(pod_template(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def merge_patch_between(current: Any, desired: Any) -> JsonObject:
    """The JSON merge patch (RFC 7386) that turns `current` into `desired` (two JSON objects): changed and
    new keys with their value, removed keys as null, maps recursively, lists whole."""
    patch: JsonObject = {key: None for key in current if key not in desired}
    for key, value in desired.items():
        old = current.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            nested = merge_patch_between(old, value)
            if nested:
                patch[key] = nested
        elif key not in current or value != old:
            patch[key] = value
    return patch


def revision(obj: JsonObject) -> int | None:
    """The `deployment.kubernetes.io/revision` annotation as an int; None when absent or not a number."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def owned_replicasets(deployment: JsonObject, replicasets: list[JsonObject]) -> list[JsonObject]:
    """The ReplicaSets whose ownerReferences name the Deployment's uid, oldest revision first (those
    without a readable revision first of all), ties by creation time and name."""
    uid = (deployment.get("metadata") or {}).get("uid")
    if not uid:
        return []
    owned = [
        rs
        for rs in replicasets
        if any(ref.get("uid") == uid for ref in (rs.get("metadata") or {}).get("ownerReferences") or [])
    ]

    def order(rs: JsonObject) -> tuple[int, str, str]:
        meta = rs.get("metadata") or {}
        rev = revision(rs)
        return (-1 if rev is None else rev, str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))

    return sorted(owned, key=order)


def label_selector(selector: JsonObject | None) -> str:
    """A LabelSelector object (`matchLabels`, `matchExpressions`) in the `?labelSelector=` syntax."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"label selector: unknown operator {op!r} for key {key!r}")
    return ",".join(parts)


# -- API -------------------------------------------------------------------------------------------


class Deployments:
    """Reads and guarded writes of Deployments through one `ApiClient`."""

    def __init__(
        self, api_client: ApiClient, request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        fence: Callable[[], bool] | None = None,
    ) -> None:
        """`fence`, when given, is asked right before every write: False (e.g. leadership lost) refuses
        the write with status `fenced`, so a replica that no longer leads never changes anything."""
        self._api_client = api_client
        self._fence = fence
        self._api = AppsV1Api(api_client)
        self._timeout = request_timeout

    def _may_write(self) -> bool:
        try:
            return self._fence is None or bool(self._fence())
        except Exception:
            log.exception("the write fence failed: not writing")
            return False

    def read_deployment(self, namespace: str, name: str) -> JsonObject | None:
        """The Deployment, or None when it does not exist. Raises `KubeApiError` on any other failure."""
        try:
            return call_json(self._api.read_namespaced_deployment, name, namespace, timeout=self._timeout)
        except Exception as e:
            if status_of(e) == 404:
                return None
            raise KubeApiError(f"read Deployment {namespace}/{name}", e) from e

    def update_deployment(
        self,
        namespace: str,
        name: str,
        mutate: Mutation,
        *,
        expect_template_hash: str | None,
        max_conflicts: int = 5,
    ) -> WriteOutcome:
        """Read, check, mutate a deep copy, send the difference as a merge patch guarded by resourceVersion;
        on 409 start over (at most `max_conflicts` times).

        - `template-changed`: the template hash is no longer `expect_template_hash`; nothing written.
        - `unchanged`: `mutate` returned None or an equal object; nothing written.
        - `not-found`, `error` (with the reason), `conflict` (still 409 after `max_conflicts` retries).
        `mutate` may change its argument in place and return it; its exceptions propagate.
        """
        what = f"Deployment {namespace}/{name}"
        conflicts = 0
        while True:
            try:
                current = self.read_deployment(namespace, name)
            except KubeApiError as e:
                return WriteOutcome(status="error", reason=str(e), conflicts=conflicts)
            if current is None:
                return WriteOutcome(status="not-found", reason=f"{what} not found", conflicts=conflicts)
            found_hash = template_hash(current)
            if expect_template_hash is not None and found_hash != expect_template_hash:
                return WriteOutcome(
                    status="template-changed",
                    deployment=current,
                    conflicts=conflicts,
                    reason=f"{what}: pod template is now {found_hash}, not {expect_template_hash}; write dropped",
                )
            desired = mutate(copy.deepcopy(current))
            if desired is None or desired == current:
                return WriteOutcome(status="unchanged", deployment=current, conflicts=conflicts)
            patch = merge_patch_between(current, desired)
            patch.setdefault("metadata", {})["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
            if not self._may_write():
                return WriteOutcome(status="fenced", deployment=current, conflicts=conflicts,
                                    reason=f"{what}: not written, this replica no longer leads")
            try:
                written = send_json(self._api_client, "PATCH", DEPLOYMENT_PATH, patch, timeout=self._timeout,
                                    path_params={"namespace": namespace, "name": name}, content_type=MERGE_PATCH)
            except Exception as e:
                status = status_of(e)
                if status == 409 and conflicts < max_conflicts:
                    conflicts += 1
                    log.info("%s: 409 Conflict on write (%d/%d), re-reading", what, conflicts, max_conflicts)
                    continue
                if status == 409:
                    reason = f"{what}: still 409 Conflict after {max_conflicts} retries"
                    return WriteOutcome(status="conflict", deployment=current, reason=reason, conflicts=conflicts + 1)
                if status == 404:
                    return WriteOutcome(status="not-found", reason=f"{what} deleted before the write",
                                        conflicts=conflicts)
                return WriteOutcome(status="error", deployment=current, reason=f"write {what}: {describe(e)}",
                                    conflicts=conflicts)
            written.setdefault("kind", "Deployment")
            written.setdefault("apiVersion", "apps/v1")
            return WriteOutcome(status="written", deployment=written, conflicts=conflicts)

    def scale_replicaset(self, namespace: str, name: str, replicas: int) -> WriteOutcome:
        """Set a ReplicaSet's replicas through its `scale` subresource (a JSON merge patch).

        Used to take a rejected template's ReplicaSet to 0 while its Deployment is paused (the
        deployment controller then leaves it there and scales the one active ReplicaSet to full size).
        """
        outcome = self._merge_patch(
            self._api.patch_namespaced_replica_set_scale, namespace, name, {"spec": {"replicas": replicas}},
            f"ReplicaSet {namespace}/{name}", "scale",
        )
        return outcome.model_copy(update={"deployment": None})  # the answer is a Scale, not a Deployment

    def _merge_patch(
        self, method: Callable[..., object], namespace: str, name: str, body: JsonObject, what: str, verb: str
    ) -> WriteOutcome:
        """One unguarded JSON merge patch, fenced like every write: a replica that no longer leads sends none."""
        if not self._may_write():
            return WriteOutcome(status="fenced", reason=f"{what}: not written ({verb}), this replica no longer leads")
        try:
            patched = call_json(method, name, namespace, body, _content_type=MERGE_PATCH, timeout=self._timeout)
        except Exception as e:
            if status_of(e) == 404:
                return WriteOutcome(status="not-found", reason=f"{what} not found")
            return WriteOutcome(status="error", reason=f"{verb} {what}: {describe(e)}")
        return WriteOutcome(status="written", deployment=patched)
