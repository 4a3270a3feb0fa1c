"""The running controller: informers feed one work queue, apscheduler ticks the checks, one worker
thread owns every decision, and only the leader acts.

Ticks are one apscheduler job per distinct analysis interval; a tick measures every canary of that
interval that is due in one batched Analyzer call (one backend query per signal), then reconciles
each with its outcome.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from canary.analysis import AnalysisRequest, Analyzer, Outcome
from canary.controller.annotations import is_enabled
from canary.controller.configure import Configurator
from canary.controller.executor import Executor
from canary.controller.metrics import ControllerMetrics
from canary.controller.outbox import StatusChange
from canary.controller.reconciler import Reconciler
from canary.controller.slostore import SLOStore
from canary.controller.snapshot import Snapshot, take_snapshot
from canary.controller.status import read_status
from canary.kube.bodies import DeploymentBody, ReplicaSetBody
from canary.kube.deployments import owned_replicasets
from canary.kube.wire import JsonObject
from canary.vocabulary import CanaryPhase

log = logging.getLogger(__name__)

PHASES_EVERY = 2.0
"""Seconds between recounts of canaries by phase for the gauge."""


@dataclass(frozen=True)
class _Reconcile:
    namespace: str
    name: str


@dataclass(frozen=True)
class _Tick:
    interval: float


@dataclass(frozen=True, eq=False)
class _Flush:
    """Reached by the worker once everything queued before it is done."""

    done: threading.Event


class Cache(Protocol):
    """The informers' view of the cluster (no API request)."""

    def deployments(self, namespace: str | None = None) -> list[JsonObject]: ...

    def deployment(self, namespace: str, name: str) -> JsonObject | None: ...

    def replicasets_of(self, deployment: JsonObject) -> list[JsonObject]:
        """The Deployment's ReplicaSets, oldest revision first."""
        ...

    def replicasets(self) -> list[JsonObject]:
        """Every cached ReplicaSet."""
        ...


class Runtime:
    """Owns the work queue, the tick jobs and the worker. Informers and leader election are wired
    by the caller (see canary.controller.app), which calls `on_deployment`, `on_replicaset`, `on_configmap` and
    `set_leader`. The worker is the only thread that writes: reconciles, and the `StatusChange`s other
    threads `submit`."""

    def __init__(
        self,
        configurator: Configurator,
        reconciler: Reconciler,
        executor: Executor,
        analyzer: Analyzer,
        slos: SLOStore,
        metrics: ControllerMetrics,
        cache: Cache,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.configurator = configurator
        self.reconciler = reconciler
        self.executor = executor
        self.analyzer = analyzer
        self.slos = slos
        self.metrics = metrics
        self.cache = cache
        self.clock = clock
        self._queue: queue.Queue[_Reconcile | _Tick | StatusChange | _Flush | None] = queue.Queue()
        self._pending: set[_Reconcile | _Tick] = set()
        self._pending_lock = threading.Lock()
        self._leader = threading.Event()
        self._stopping = threading.Event()
        self._deciding = threading.Event()
        self._deciding.set()
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._jobs: dict[float, str] = {}
        """Tick job id per interval in use."""
        self._index_lock = threading.RLock()
        self._scheduled: dict[tuple[str, str], float] = {}
        """Guarded Deployment -> its analysis interval (what keeps a tick job alive)."""
        self._guarded: set[tuple[str, str]] = set()
        """Deployments annotated canary.mop.dev/enabled (their ReplicaSets' changes reconcile them)."""
        self._depends_on: dict[tuple[str, str], tuple[str, str]] = {}
        """Deployment -> the other Deployment its decisions read (canary mode: its baseline)."""
        self._worker = threading.Thread(target=self._work, name="canary-worker", daemon=True)
        self.ticks = 0
        self._phases_published = 0.0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._scheduler.start()
        self._worker.start()

    def quiesce(self) -> None:
        """A clean stop begins: no more decisions (reconciles, ticks); status changes are still written."""
        self._deciding.clear()
        if self._scheduler.running:
            self._scheduler.pause()

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is done (the deliveries of a clean stop); False on timeout."""
        marker = _Flush(threading.Event())
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._leader.clear()
        self._queue.put(None)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._worker.join(timeout=30)

    @property
    def alive(self) -> bool:
        return self._worker.is_alive() and self._scheduler.running

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    def set_leader(self, leading: bool) -> None:
        """Only the leader decides and writes; a new leader looks at every guarded Deployment at once."""
        if leading:
            self._leader.set()
            self.metrics.is_leader.set(1)
            for dep in self.cache.deployments():
                self.on_deployment("RESYNC", dep)
        else:
            self._leader.clear()
            self.metrics.is_leader.set(0)

    # -- feeds -----------------------------------------------------------------------------------

    def on_deployment(self, kind: str, deployment: JsonObject) -> None:
        """Informer handler: queue a reconcile for guarded Deployments (and their canaries).

        O(1) for a Deployment that is not guarded, so a resync costs O(N); never raises."""
        try:
            self._on_deployment(kind, deployment)
        except Exception:
            log.exception("%s of a Deployment could not be handled; the controller carries on", kind)

    def _on_deployment(self, kind: str, deployment: JsonObject) -> None:
        body = DeploymentBody(deployment)
        key = body.key
        if kind == "DELETED" or not is_enabled(body.annotations):
            self._forget(key)
            self._reconcile_dependents_of(key)
            return
        resolved = self.configurator.resolve(body)
        with self._index_lock:
            self._guarded.add(key)
            other = resolved.strategy.depends_on(body, resolved.annotations)
            if other is not None:
                self._depends_on[key] = other
            else:
                self._depends_on.pop(key, None)
            if resolved.spec is not None:
                self._scheduled[key] = resolved.spec.analysis.interval
                self._ensure_tick(resolved.spec.analysis.interval)
            else:
                self._scheduled.pop(key, None)
            self._sweep_ticks()
        self._enqueue(_Reconcile(*key))
        self._reconcile_dependents_of(key)

    def on_replicaset(self, kind: str, replicaset: JsonObject) -> None:
        """Informer handler: a change of a guarded Deployment's ReplicaSet (pods becoming ready, scaled
        down) reconciles the Deployment, so no decision waits for a tick on a ReplicaSet it reads."""
        try:
            body = ReplicaSetBody(replicaset)
            for ref in body.metadata.get("ownerReferences") or []:
                if isinstance(ref, dict) and ref.get("kind") == "Deployment" and ref.get("name"):
                    key = (body.namespace, str(ref["name"]))
                    with self._index_lock:
                        guarded = key in self._guarded
                    if guarded:
                        self._enqueue(_Reconcile(*key))
        except Exception:
            log.exception("%s of a ReplicaSet could not be handled; the controller carries on", kind)

    def on_configmap(self, kind: str, configmap: JsonObject) -> None:
        try:
            changed = self.slos.on_configmap(kind, configmap)
        except Exception:
            log.exception("%s of a ConfigMap could not be handled; the controller carries on", kind)
            return
        for namespace in changed:
            for dep in self.cache.deployments(namespace):
                if is_enabled(DeploymentBody(dep).annotations):
                    self.on_deployment("RESYNC", dep)

    @property
    def tick_intervals(self) -> list[float]:
        """The intervals that have a tick job (one per distinct interval in use)."""
        with self._index_lock:
            return sorted(self._jobs)

    def _forget(self, key: tuple[str, str]) -> None:
        """A Deployment that is gone or opted out: no tick for it, no metric label sets."""
        with self._index_lock:
            self._guarded.discard(key)
            self._scheduled.pop(key, None)
            self._depends_on.pop(key, None)
            self._sweep_ticks()
        self.metrics.forget([key])

    def _reconcile_dependents_of(self, changed: tuple[str, str]) -> None:
        """A change of a Deployment others read (a baseline: a promotion landing) may settle them."""
        with self._index_lock:
            dependents = [key for key, of in self._depends_on.items() if of == changed]
        for key in dependents:
            self._enqueue(_Reconcile(*key))

    def _ensure_tick(self, interval: float) -> None:
        """One apscheduler job per distinct interval; ids from the float's repr never collide."""
        if interval in self._jobs:
            return
        job_id = f"tick-{interval!r}s"
        self._jobs[interval] = job_id
        self._scheduler.add_job(
            self._enqueue, "interval", args=[_Tick(interval)], seconds=interval, id=job_id, replace_existing=True,
            next_run_time=self.clock() + timedelta(seconds=min(interval, 1.0)), max_instances=1, coalesce=True,
        )

    def _sweep_ticks(self) -> None:
        """Remove the tick jobs of intervals no guarded Deployment uses any more."""
        in_use = set(self._scheduled.values())
        for interval in [i for i in self._jobs if i not in in_use]:
            job_id = self._jobs.pop(interval)
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id)

    def submit(self, change: StatusChange) -> None:
        """A status change from another thread (a delivery, evidence): the worker writes it."""
        self._queue.put(change)

    def _enqueue(self, item: _Reconcile | _Tick) -> None:
        with self._pending_lock:
            if item in self._pending:
                return
            self._pending.add(item)
        self._queue.put(item)

    # -- the worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, _Flush):
                item.done.set()
                continue
            if isinstance(item, _Reconcile | _Tick):
                with self._pending_lock:
                    self._pending.discard(item)
                if not self._deciding.is_set():
                    continue
            if not self._leader.is_set():
                continue
            try:
                if isinstance(item, _Tick):
                    self.run_checks(item.interval)
                elif isinstance(item, _Reconcile):
                    self._reconcile(item)
                else:
                    self.executor.apply(item)
            except Exception:
                log.exception("work item %s failed; the controller carries on", item)
            if time.monotonic() - self._phases_published > PHASES_EVERY:
                try:
                    self._publish_phases()
                except Exception:
                    log.exception("counting canaries by phase failed; the controller carries on")

    def _snapshot(
        self, deployment: JsonObject, replicasets_of: Callable[[JsonObject], list[JsonObject]] | None = None
    ) -> Snapshot:
        return take_snapshot(deployment, replicasets_of or self.cache.replicasets_of, self.configurator,
                             self.cache.deployment)

    def _replicasets_index(self) -> Callable[[JsonObject], list[JsonObject]]:
        """A tick's `replicasets_of`: the cached ReplicaSets grouped by owner once (when first asked), so a
        tick costs O(ReplicaSets) however many canaries share a namespace."""
        index: dict[str, list[JsonObject]] | None = None

        def replicasets_of(deployment: JsonObject) -> list[JsonObject]:
            nonlocal index
            if index is None:
                index = collections.defaultdict(list)
                for rs in self.cache.replicasets():
                    for ref in ReplicaSetBody(rs).metadata.get("ownerReferences") or []:
                        if isinstance(ref, dict) and ref.get("uid"):
                            index[str(ref["uid"])].append(rs)
            uid = str(DeploymentBody(deployment).metadata.get("uid") or "")
            return owned_replicasets(deployment, index.get(uid, []))

        return replicasets_of

    def _reconcile(self, item: _Reconcile) -> None:
        deployment = self.cache.deployment(item.namespace, item.name)
        if deployment is not None and is_enabled(DeploymentBody(deployment).annotations):
            self.reconciler.reconcile(self._snapshot(deployment))

    def run_checks(self, interval: float) -> int:
        """Measure every due canary with this interval in one batch, then reconcile each; returns how many.

        Each guarded Deployment is seen once per tick: one Snapshot from the cache serves both the check
        and the decision on its outcome."""
        now = self.clock()
        self.ticks += 1
        due: list[tuple[Snapshot, AnalysisRequest]] = []
        replicasets_of = self._replicasets_index()
        for dep in self.cache.deployments():
            try:
                if not is_enabled(DeploymentBody(dep).annotations):
                    continue
                snap = self._snapshot(dep, replicasets_of)
                if snap.waiting(interval):  # nothing to measure, but analysis.maxWait may have passed
                    self.reconciler.reconcile(snap)
                    continue
                request = snap.due(interval, now)
            except Exception:
                log.exception("cannot prepare the check of Deployment %s; other canaries carry on",
                              DeploymentBody(dep).ref)
                continue
            if request is not None:
                due.append((snap, request))
        if not due:
            return 0
        outcomes = self.analyzer.analyze([r for _, r in due], now)
        for query in next(iter(outcomes.values())).measurement.queries if outcomes else ():
            self.metrics.backend_query_seconds.labels(backend=query.backend.value).observe(query.seconds)
            if query.error is not None:
                self.metrics.backend_errors.labels(backend=query.backend.value, kind=query.error.kind.value).inc()
        for snap, request in due:
            outcome = outcomes.get(request.target.key)
            if outcome is None or not self._leader.is_set():
                continue
            try:
                _log_check(outcome)
                self.reconciler.reconcile(snap, outcome)
            except Exception:
                log.exception("reconciling Deployment %s after its check failed; other canaries carry on",
                              snap.deployment.ref)
        return len(due)

    def _publish_phases(self) -> None:
        self._phases_published = time.monotonic()
        counts: dict[CanaryPhase, int] = {}
        seen: set[tuple[str, str]] = set()
        for dep in self.cache.deployments():
            body = DeploymentBody(dep)
            status, _ = read_status(body.annotations)
            if status is not None and is_enabled(body.annotations):
                counts[status.phase] = counts.get(status.phase, 0) + 1
                key = body.key
                seen.add(key)
                self.metrics.observe_status(key, status)
        self.metrics.set_phases(counts)
        self.metrics.forget(self.metrics.tracked() - seen)


def _log_check(outcome: Outcome) -> None:
    """One JSON log line per check: every query with its result, every check with its threshold, the verdict."""
    verdict = outcome.verdict
    log.info(
        "check",
        extra={
            "canary": outcome.measurement.target.key,
            "verdict": verdict.phase.value,
            "reason": verdict.message,
            "checks": [
                {"name": c.name, "canary": c.canary, "baseline": c.baseline, "threshold": c.threshold,
                 "result": c.result.value, "samples": c.samples}
                for c in verdict.checks
            ],
            "queries": [
                {"backend": q.backend.value, "query": q.query, "seconds": round(q.seconds, 4), "series": q.series,
                 "error": str(q.error) if q.error else None}
                for q in outcome.measurement.queries
            ],
        },
    )
