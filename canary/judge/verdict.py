"""`judge()`: one Measurement and the service's SLO in, one Verdict out. Pure, no I/O.

Method (sequential, valid under any dependence between looks)
-------------------------------------------------------------
Every check whose observed value is beyond its limit runs a one-sided exact test of "the canary is
no worse than the limit": a binomial test against the objective (availability, slow requests for
latency-p99, trace error rate) or the conditional exact test of two Poisson rates against
ratio x the baseline (error-rate-ratio; latency-ratio also needs the one-sample slow-request test,
as an intersection-union test). A check FAILs only if its p-value is below the level spent on this
look; a breach that is not significant is INCONCLUSIVE, so one unlucky error on a quiet canary never
fails it.

The controller checks the same canary every `interval` over overlapping windows and rolls back after
`failedChecks` failed looks. A rollback can therefore only happen at a look k >= failedChecks that
itself failed, and by the union bound

    P(rollback of a canary that meets its SLO) <= sum_{k >= failedChecks} P(look k fails) <= alpha

when look k spends alpha / (m (m + 1)) with m = k - failedChecks + 1, split evenly over the
statistical checks configured (Bonferroni). The bound needs no independence, so overlapping windows
are fine, and it holds for any number of looks. `alpha` defaults to 1%: at most 1 in 100 canaries
that sit exactly on their limits is rolled back; canaries well within them far fewer.

Precedence of the verdict: error (any backend error) > fail > inconclusive > pass. Checks marked
`skipped` (no baseline to compare with) are reported but do not count.
"""

from __future__ import annotations

from canary.config.slo import ServiceSLOSpec
from canary.judge import checks
from canary.judge.model import CheckResult, Phase, Verdict
from canary.judge.stats import look_alpha
from canary.judge.text import window
from canary.samples import Measurement

DEFAULT_ALPHA = 0.01
"""Bound on the probability that a canary meeting its SLO is ever rolled back."""


def statistical_checks(slo: ServiceSLOSpec) -> int:
    """How many checks share the alpha of one look: availability and the two ratios, plus options."""
    objectives = slo.objectives
    return 3 + (objectives.latency_p99 is not None) + (objectives.trace_error_rate is not None)


def judge(m: Measurement, slo: ServiceSLOSpec, *, look: int = 1, alpha: float = DEFAULT_ALPHA) -> Verdict:
    """The verdict on one canary at the `look`-th check of its analysis (1-based)."""
    level = look_alpha(alpha, look, slo.analysis.failed_checks) / statistical_checks(slo)
    ctx = checks.Context(look=look, alpha=level, window=m.target.window, min_requests=slo.analysis.min_requests)
    objectives, comparison = slo.objectives, slo.comparison
    canary = m.red.canary if m.red is not None else None
    baseline = m.red.baseline if m.red is not None else None

    results = [checks.sample_size(canary, str(m.target.canary), ctx)]
    if canary is not None:
        results.append(checks.availability(canary, baseline, objectives.availability, ctx))
        if objectives.latency_p99 is not None:
            results.append(checks.latency_p99(canary, baseline, objectives.latency_p99, ctx))
        results.append(checks.error_rate_ratio(canary, baseline, comparison.max_error_rate_ratio, ctx))
        results.append(checks.latency_ratio(canary, baseline, comparison.max_latency_ratio, ctx))
    traces = m.traces
    if objectives.trace_error_rate is not None and traces is not None:
        if traces.canary is not None:
            results.append(checks.trace_error_rate(traces.canary, traces.baseline, objectives.trace_error_rate, ctx))
        else:  # measured but no spans: a configured check never silently disappears
            results.append(checks.no_trace_data(str(m.target.canary), ctx))
    judged = tuple(checks.gate(r, ctx) for r in results)
    return _verdict(m, judged)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _verdict(m: Measurement, results: tuple[CheckResult, ...]) -> Verdict:
    if m.errors:
        message = "backend error, not judged: " + "; ".join(_one_line(str(e)) for e in m.errors)
        return Verdict(phase=Phase.ERROR, checks=results, message=message)
    counted = [r for r in results if not r.skipped]
    for phase in (Phase.FAIL, Phase.INCONCLUSIVE):
        hits = [r for r in counted if r.result is phase]
        if hits:
            message = "; ".join(f"{r.name}: {_one_line(r.reason)}" for r in hits)
            return Verdict(phase=phase, checks=results, message=message)
    skipped = [r for r in results if r.skipped]
    message = f"all {len(counted)} checks passed on the canary's last {window(m.target.window)}"
    if skipped:
        message += " (skipped: " + "; ".join(f"{r.name}: {_one_line(r.reason)}" for r in skipped) + ")"
    return Verdict(phase=Phase.PASS, checks=results, message=message)
