"""Server-side apply of a list of objects in dependency order, waiting for each phase's workloads.

Every object is applied with field manager `mop-canary`; what changed is judged by comparing the
object before and after (metadata the server maintains and `status` left out), which works the same
for `--dry-run=server`, where nothing is stored.
"""

from __future__ import annotations

import copy
import difflib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import yaml
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from canary.stack.order import WORKLOAD_KINDS, plan
from canary.stack.readiness import workload_ready
from canary.stack.render import ref

FIELD_MANAGER: Final = "mop-canary"
_SERVER_METADATA: Final = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink")
# API groups the stack needs from add-ons installed before it, and what to tell the user.
_PREREQUISITES: Final = {
    "cert-manager.io": "install cert-manager first: it issues the certificates of the stack's mTLS",
}

Manifest = dict[str, Any]


class Change(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ObjectResult:
    ref: str
    phase: str
    change: Change
    diff: str = ""
    """Unified diff of the object before and after (YAML), empty when unchanged."""


@dataclass
class ApplyReport:
    dry_run: bool
    results: list[ObjectResult] = field(default_factory=list)

    def counts(self) -> dict[Change, int]:
        found = Counter(r.change for r in self.results)
        return {c: found.get(c, 0) for c in Change}

    @property
    def changed(self) -> bool:
        return any(r.change is not Change.UNCHANGED for r in self.results)


class ApplyError(RuntimeError):
    """An object was rejected, or a workload did not become ready: the message names the object."""

    def __init__(self, obj_ref: str, reason: str) -> None:
        super().__init__(f"{obj_ref}: {reason}")
        self.ref = obj_ref
        self.reason = reason


class ApplyObserver:
    """Hooks for a progress display; every method is optional."""

    def phase_started(self, phase: str, objects: list[Manifest]) -> None: ...

    def applied(self, result: ObjectResult) -> None: ...

    def waiting(self, obj_ref: str, ready: bool, detail: str) -> None: ...


def _content(obj: Manifest | None) -> Manifest:
    """The object without what the server maintains (status, resourceVersion, managedFields, ...)."""
    if obj is None:
        return {}
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    return out


def _yaml_lines(obj: Manifest) -> list[str]:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True) if obj else []


def _rejection(exc: ApiException) -> str:
    summary = exc.summary() if hasattr(exc, "summary") else exc.body
    if isinstance(summary, bytes):
        summary = summary.decode("utf-8", "replace")
    return f"rejected by the API server ({exc.status} {exc.reason}): {summary or 'no message'}"


class Applier:
    """Applies objects to the cluster behind `api_client`.

    `dry_run`: every write is sent with `dryRun=All` (the server validates, admits and defaults the
    object but stores nothing) and nothing is waited for.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
        timeout_seconds: float = 600.0,
        poll_seconds: float = 2.0,
        observer: ApplyObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        discovery_cache_file: str | None = None,
    ) -> None:
        self.dynamic = DynamicClient(api_client, cache_file=discovery_cache_file)
        self.dry_run = dry_run
        self.field_manager = field_manager
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.observer = observer or ApplyObserver()
        self._clock = clock
        self._sleep = sleep
        self._dry_namespaces: set[str] = set()
        """Namespaces a dry run would create: objects in them cannot be dry-run applied yet."""

    def _resource(self, obj: Manifest) -> Any:
        try:
            return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            group = str(obj["apiVersion"]).rpartition("/")[0]
            hint = _PREREQUISITES.get(group, "is its CRD installed?")
            raise ApplyError(ref(obj), f"the cluster serves no {obj['kind']} in {obj['apiVersion']} ({hint})") from None

    def _get(self, resource: Any, obj: Manifest) -> Manifest | None:
        meta = obj["metadata"]
        try:
            found = resource.get(name=meta["name"], namespace=meta.get("namespace"))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ApplyError(ref(obj), f"cannot read it: {_rejection(exc)}") from None
        return dict(found.to_dict())

    def apply_one(self, obj: Manifest, phase: str = "") -> ObjectResult:
        """Server-side apply one object; raises ApplyError naming it when the server refuses it."""
        resource = self._resource(obj)
        namespace = obj["metadata"].get("namespace")
        if self.dry_run and namespace in self._dry_namespaces:
            # Its namespace does not exist yet, so the server cannot check it: it would be created.
            diff = "".join(difflib.unified_diff([], _yaml_lines(_content(obj)), fromfile="live", tofile=ref(obj)))
            return ObjectResult(ref=ref(obj), phase=phase, change=Change.CREATED, diff=diff)
        before = self._get(resource, obj)
        try:
            after = resource.server_side_apply(
                body=obj,
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                field_manager=self.field_manager,
                force_conflicts=True,
                dry_run="All" if self.dry_run else None,
            ).to_dict()
        except ApiException as exc:
            raise ApplyError(ref(obj), _rejection(exc)) from None
        old, new = _content(before), _content(after)
        diff = "".join(difflib.unified_diff(_yaml_lines(old), _yaml_lines(new), fromfile="live", tofile=ref(obj)))
        change = Change.CREATED if before is None else Change.UNCHANGED if old == new else Change.CONFIGURED
        if self.dry_run and change is Change.CREATED and obj["kind"] == "Namespace":
            self._dry_namespaces.add(obj["metadata"]["name"])
        return ObjectResult(ref=ref(obj), phase=phase, change=change, diff=diff)

    def apply(self, objects: list[Manifest], *, wait: bool = True) -> ApplyReport:
        """Apply every object, phase by phase; with `wait`, a phase's workloads must be ready before the next."""
        report = ApplyReport(dry_run=self.dry_run)
        for obj in objects:  # every kind is served (cert-manager installed, ...) before anything is written
            self._resource(obj)
        for phase, members in plan(objects):
            self.observer.phase_started(phase, members)
            for obj in members:
                result = self.apply_one(obj, phase)
                report.results.append(result)
                self.observer.applied(result)
            if wait and not self.dry_run:
                self.wait_ready([o for o in members if o["kind"] in WORKLOAD_KINDS])
        return report

    def wait_ready(self, workloads: list[Manifest]) -> None:
        """Poll until every workload is ready; ApplyError naming the first one still not ready at the deadline."""
        deadline = self._clock() + self.timeout_seconds
        pending = list(workloads)
        while pending:
            still: list[Manifest] = []
            for obj in pending:
                live = self._get(self._resource(obj), obj)
                ready, detail = workload_ready(live) if live else (False, "not found")
                self.observer.waiting(ref(obj), ready, detail)
                if not ready:
                    still.append(obj)
            pending = still
            if not pending:
                return
            if self._clock() >= deadline:
                obj = pending[0]
                live = self._get(self._resource(obj), obj)
                detail = workload_ready(live)[1] if live else "not found"
                raise ApplyError(ref(obj), f"not ready after {self.timeout_seconds:g}s: {detail}")
            self._sleep(self.poll_seconds)
