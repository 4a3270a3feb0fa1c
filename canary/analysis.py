"""The analysis engine: measure every due canary through the batched sources, then judge each one.

config -> sources -> judge: this module is the only place that calls both. One call to `analyze`
sends one query per signal to Mimir (and one pair to Tempo) whatever the number of canaries.

Each request carries the canary's evidence so far (`canary.cumulative`); the measurement over the
target's window is added to it and the judge sees the cumulative counts. Without previous evidence
(the first check, or `canary analyze`) the evidence is that one window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from canary.config.slo import Metrics, ServiceSLOSpec
from canary.cumulative import Cumulative, accumulate
from canary.judge import judge
from canary.judge.model import Phase, Verdict
from canary.samples import Measurement, Target
from canary.sources.base import MetricsSource, TraceSource
from canary.sources.limits import tick_deadline

log = logging.getLogger(__name__)


class AnalysisRequest(BaseModel):
    """One canary due for a check: what to measure, against which SLO, and which look this is."""

    model_config = ConfigDict(frozen=True)

    target: Target
    """Its `window` is the span measured now (see `canary.cumulative.accumulate`)."""
    slo: ServiceSLOSpec
    look: int = 1
    cumulative: Cumulative | None = None
    """The canary's evidence before this check (from its status); None: start from this measurement."""


class Outcome(BaseModel):
    """What one check measured and what the judge made of it."""

    model_config = ConfigDict(frozen=True)

    measurement: Measurement
    """The cumulative counts judged (target.window = seconds of evidence), with this check's queries."""
    verdict: Verdict
    cumulative: Cumulative | None = None
    """The evidence after this check, to be stored with the verdict (unchanged by a backend error)."""


class Analyzer:
    """Runs checks for many canaries at once over MetricsSources and an optional TraceSource.

    `metrics` is one source, or a function giving the source for an SLO's `metrics` settings (preset
    or custom queries): canaries that share settings share one batch.
    """

    def __init__(
        self, metrics: MetricsSource | Callable[[Metrics], MetricsSource], traces: TraceSource | None = None,
        deadline_seconds: float | None = None,
    ) -> None:
        self._metrics_for = metrics if callable(metrics) else (lambda _: metrics)
        self.traces = traces
        self.deadline_seconds = deadline_seconds
        """One deadline for all backend queries of one `analyze` call (a tick); None: per query only."""

    def analyze(self, requests: Sequence[AnalysisRequest], end: datetime) -> dict[str, Outcome]:
        """Outcomes keyed by `Target.key`. Never raises: backend trouble, and any failure while measuring
        or judging one canary, is an `error` verdict for the canaries concerned only."""
        groups: dict[Metrics, list[AnalysisRequest]] = {}
        for request in requests:
            groups.setdefault(request.slo.metrics, []).append(request)
        outcomes: dict[str, Outcome] = {}
        with tick_deadline(self.deadline_seconds):
            for settings, group in groups.items():
                try:
                    source = self._metrics_for(settings)
                except ValueError as exc:
                    outcomes.update(_errors(group, f"spec.metrics: {exc}"))
                    continue
                try:
                    outcomes.update(self._analyze(source, group, end))
                except Exception as exc:
                    log.exception("measuring %d canaries failed", len(group))
                    outcomes.update(_errors(group, f"internal error while measuring: {type(exc).__name__}: {exc}"))
        return outcomes

    def _analyze(
        self, metrics: MetricsSource, requests: Sequence[AnalysisRequest], end: datetime
    ) -> dict[str, Outcome]:
        red = metrics.fetch_red([r.target for r in requests], end)
        traced = [r.target for r in requests if r.slo.objectives.trace_error_rate is not None]
        spans = self.traces.fetch_trace_errors(traced, end) if self.traces and traced else None
        outcomes: dict[str, Outcome] = {}
        for request in requests:
            key = request.target.key
            errors = [e for e in (red.error, red.target_errors.get(key)) if e is not None]
            queries = list(red.queries)
            trace_pair = None
            if spans is not None and request.target in traced:
                queries.extend(spans.queries)
                errors.extend(e for e in (spans.error, spans.target_errors.get(key)) if e is not None)
                trace_pair = spans.values.get(key)
            increment = Measurement(
                target=request.target,
                red=red.values.get(key),
                traces=trace_pair,
                errors=tuple(errors),
                queries=tuple(queries),
            )
            evidence = accumulate(request.cumulative, increment, end)
            measurement = evidence.measurement(increment)
            try:
                verdict = judge(measurement, request.slo, look=request.look)
            except Exception as exc:  # one canary's odd numbers never cost the others their check
                log.exception("judging %s failed", key)
                verdict = Verdict(phase=Phase.ERROR, checks=(),
                                  message=f"not judged: internal error {type(exc).__name__}: {exc}"[:500])
            if verdict.phase is Phase.FAIL and self.traces is not None:
                examples, _ = self.traces.example_failing_traces(request.target, end)
                measurement = measurement.model_copy(update={"example_traces": tuple(examples[:5])})
            outcomes[key] = Outcome(measurement=measurement, verdict=verdict, cumulative=evidence)
        return outcomes


def _errors(group: Sequence[AnalysisRequest], reason: str) -> dict[str, Outcome]:
    verdict = Verdict(phase=Phase.ERROR, checks=(), message=reason.splitlines()[0][:500] if reason else "error")
    return {
        r.target.key: Outcome(measurement=Measurement(target=r.target), verdict=verdict, cumulative=r.cumulative)
        for r in group
    }
