"""The controller's own metrics, exported on /metrics (names used by the Grafana dashboards).

Per guarded Deployment: `canary_phase` (1 for its current phase), `canary_phase_since_timestamp_seconds`,
`canary_checks_total{result}`, `canary_last_value{check}` (the canary's value in its last check),
`canary_stuck_total{on_stuck}` and `canary_decision_seconds`; a Deployment's series are removed when it is
deleted or no longer guarded.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from canary.controller.status import CanaryStatus
from canary.judge.model import Verdict
from canary.vocabulary import CanaryPhase

Key = tuple[str, str]
"""(namespace, deployment)"""


class ControllerMetrics:
    """All metrics in one registry, so tests and the demo can run several controllers side by side."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        per = ["namespace", "deployment"]
        self.canaries = Gauge("canary_canaries", "Guarded Deployments by phase.", ["phase"], registry=r)
        self.phase = Gauge("canary_phase", "1 for the phase each guarded Deployment is in, 0 for the others.",
                           [*per, "phase"], registry=r)
        self.phase_since = Gauge("canary_phase_since_timestamp_seconds",
                                 "Unix time the Deployment's current phase (or analysis) started.", per, registry=r)
        self.checks = Counter("canary_checks", "Checks run, by Deployment and verdict.", [*per, "result"], registry=r)
        self.last_value = Gauge(
            "canary_last_value", "The canary's value in its last check, by check (unit as the check's: ratio 0..1, "
            "seconds, times the baseline, requests).", [*per, "check"], registry=r)
        self.rollbacks = Counter(
            "canary_rollbacks", "Rollbacks performed.", [*per, "action"], registry=r
        )
        self.promotions = Counter("canary_promotions", "Canaries promoted.", per, registry=r)
        self.stuck = Counter(
            "canary_stuck", "Canaries stuck past analysis.maxWait (not ready or too little traffic), once a revision.",
            [*per, "on_stuck"], registry=r,
        )
        self.backend_query_seconds = Histogram(
            "canary_backend_query_seconds", "Backend query latency.", ["backend"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.backend_errors = Counter("canary_backend_errors", "Backend query errors.", ["backend", "kind"], registry=r)
        self.decision_seconds = Histogram(
            "canary_decision_seconds", "Time from the start of a check's reconcile to its decision being written.",
            per, registry=r, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.is_leader = Gauge("canary_leader", "1 while this replica is the active leader.", registry=r)
        self._series: dict[Key, set[tuple[MetricWrapperBase, tuple[str, ...]]]] = {}
        self._lock = threading.Lock()

    def _labels(self, metric: MetricWrapperBase, key: Key, *extra: str) -> Any:
        values = (*key, *extra)
        with self._lock:
            self._series.setdefault(key, set()).add((metric, values))
        return metric.labels(*values)

    def set_phases(self, counts: dict[CanaryPhase, int]) -> None:
        for phase in CanaryPhase:
            self.canaries.labels(phase=phase.value).set(counts.get(phase, 0))

    def observe_status(self, key: Key, status: CanaryStatus) -> None:
        """The Deployment's phase (one series per phase, 1 for the current one) and since when."""
        for phase in CanaryPhase:
            self._labels(self.phase, key, phase.value).set(1 if phase is status.phase else 0)
        since = status.started_at if status.phase in (CanaryPhase.WAITING, CanaryPhase.ANALYSING) else (
            status.updated_at or status.started_at)
        if since is not None:
            self._labels(self.phase_since, key).set(since.timestamp())

    def observe_check(self, key: Key, verdict: Verdict, seconds: float) -> None:
        """A check that counted: its verdict, each check's canary value and how long the decision took."""
        self._labels(self.checks, key, verdict.phase.value).inc()
        for check in verdict.checks:
            if check.canary is not None:
                self._labels(self.last_value, key, check.name).set(check.canary)
        self._labels(self.decision_seconds, key).observe(seconds)

    def observe_rollback(self, key: Key, action: str) -> None:
        self._labels(self.rollbacks, key, action).inc()

    def observe_promotion(self, key: Key) -> None:
        self._labels(self.promotions, key).inc()

    def observe_stuck(self, key: Key, on_stuck: str) -> None:
        self._labels(self.stuck, key, on_stuck).inc()

    def tracked(self) -> set[Key]:
        with self._lock:
            return set(self._series)

    def forget(self, keys: Iterable[Key]) -> None:
        """Remove every series of these Deployments (deleted, or no longer guarded)."""
        for key in keys:
            with self._lock:
                series = self._series.pop(key, set())
            for metric, values in series:
                with contextlib.suppress(KeyError):  # already gone
                    metric.remove(*values)
