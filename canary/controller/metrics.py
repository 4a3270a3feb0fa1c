"""The controller's own metrics, exported on /metrics (names used by the Grafana dashboards)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from canary.controller.status import CanaryPhase


class ControllerMetrics:
    """All metrics in one registry, so tests and the demo can run several controllers side by side."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.canaries = Gauge("canary_canaries", "Guarded Deployments by phase.", ["phase"], registry=r)
        self.checks = Counter("canary_checks", "Checks run, by verdict.", ["result"], registry=r)
        self.rollbacks = Counter(
            "canary_rollbacks", "Rollbacks performed.", ["namespace", "deployment", "action"], registry=r
        )
        self.promotions = Counter("canary_promotions", "Canaries promoted.", ["namespace", "deployment"], registry=r)
        self.backend_query_seconds = Histogram(
            "canary_backend_query_seconds", "Backend query latency.", ["backend"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.backend_errors = Counter("canary_backend_errors", "Backend query errors.", ["backend", "kind"], registry=r)
        self.decision_seconds = Histogram(
            "canary_decision_seconds", "Time from the end of a check's window to its decision being written.",
            registry=r, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.is_leader = Gauge("canary_leader", "1 while this replica is the active leader.", registry=r)

    def set_phases(self, counts: dict[CanaryPhase, int]) -> None:
        for phase in CanaryPhase:
            self.canaries.labels(phase=phase.value).set(counts.get(phase, 0))
