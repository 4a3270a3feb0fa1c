"""Every decision the controller writes during the demo, as data: the live view, the chart and
`decisions.json` are all drawn from these records."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from canary.analysis import Outcome
from canary.controller.machine import Decision
from canary.controller.status import CanaryStatus
from canary.kube.bodies import Body
from canary.kube.wire import JsonObject
from canary.samples import RedSample
from canary_testkit.traffic import image_tag


class Side(BaseModel):
    """What one side (canary or baseline) served in a check's window."""

    model_config = ConfigDict(frozen=True)

    requests: float
    errors: float
    error_rate: float | None
    """errors / requests; None without requests."""
    p99: float | None
    """Seconds, from the latency histogram; None without one."""

    @classmethod
    def of(cls, sample: RedSample | None) -> Side | None:
        if sample is None:
            return None
        p99 = sample.latency.quantile(0.99) if sample.latency is not None else None
        rate = sample.errors / sample.requests if sample.requests > 0 else None
        return cls(requests=sample.requests, errors=sample.errors, error_rate=rate, p99=p99)


class CheckRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    result: str
    canary: float | None
    baseline: float | None
    threshold: float | None
    unit: str
    reason: str


class DecisionRecord(BaseModel):
    """One decision written by the controller: when, about what, what it decided and what it measured."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    t: float
    """Seconds since the demo started."""
    deployment: str
    image: str
    """The tag of the pod template the decision was about (as the controller read it)."""
    template_hash: str
    signal: str
    phase: str
    checks_passed: int
    checks_failed: int
    looks: int
    message: str
    verdict: str | None = None
    checks: tuple[CheckRecord, ...] = ()
    canary: Side | None = None
    baseline: Side | None = None

    @property
    def measured(self) -> bool:
        return self.canary is not None


def _image(deployment: JsonObject) -> str:
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    return image_tag(str(containers[0].get("image", ""))) if containers else "?"


NEW_ANALYSIS = frozenset({"adopt", "new-revision", "rejected-revision"})
"""Signals that start the analysis of another pod template."""


def analyses(records: Sequence[DecisionRecord]) -> list[list[DecisionRecord]]:
    """The records cut into one run per analysed revision (a new one starts at adopt/new/rejected)."""
    runs: list[list[DecisionRecord]] = []
    for record in records:
        if record.signal in NEW_ANALYSIS or not runs:
            runs.append([])
        runs[-1].append(record)
    return runs


class Recorder:
    """The controller's `on_decision` hook: keeps a record of each decision and tells `listeners`."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self._lock = threading.Lock()
        self._records: list[DecisionRecord] = []
        self.listeners: list[Callable[[DecisionRecord], Any]] = []

    def now(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self.started

    def hook(self, deployment: JsonObject, decision: Decision, status: CanaryStatus, outcome: Outcome | None) -> None:
        verdict = status.last_verdict if outcome is None else outcome.verdict
        red = outcome.measurement.red if outcome is not None else None
        record = DecisionRecord(
            at=datetime.now(UTC),
            t=round(self.now(), 3),
            deployment=Body(deployment).ref,
            image=_image(deployment),
            template_hash=status.template_hash,
            signal=decision.signal.value,
            phase=status.phase.value,
            checks_passed=status.checks_passed,
            checks_failed=status.checks_failed,
            looks=status.looks,
            message=status.message,
            verdict=verdict.phase.value if verdict is not None and outcome is not None else None,
            checks=tuple(
                CheckRecord(name=c.name, result=c.result.value, canary=c.canary, baseline=c.baseline,
                            threshold=c.threshold, unit=c.unit, reason=c.reason)
                for c in (verdict.checks if verdict is not None and outcome is not None else ())
            ),
            canary=Side.of(red.canary) if red is not None else None,
            baseline=Side.of(red.baseline) if red is not None else None,
        )
        with self._lock:
            self._records.append(record)
            listeners = list(self.listeners)
        for listener in listeners:
            listener(record)

    def records(self) -> list[DecisionRecord]:
        with self._lock:
            return list(self._records)

    def first(self, predicate: Callable[[DecisionRecord], bool]) -> DecisionRecord | None:
        return next((r for r in self.records() if predicate(r)), None)
