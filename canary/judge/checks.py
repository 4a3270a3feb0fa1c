"""One function per check: measured samples in, one CheckResult out. Pure, no I/O.

A check passes when the observed value is within its limit. When it is beyond, a one-sided exact
test decides: FAIL if the canary is significantly worse at the level `Context.alpha` spent on this
look, otherwise INCONCLUSIVE ("worse, but maybe just noise"). `gate()` then turns every result that
rests on fewer than `minRequests` samples into INCONCLUSIVE, so a small sample never fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from canary.judge.model import CheckResult, Phase
from canary.judge.stats import binom_sf, count, rate_ratio_pvalue
from canary.judge.text import evidence, percent, seconds, window
from canary.samples import RedSample, TraceSample

SLOW_FRACTION = 0.01
"""A p99 above a limit means more than 1% of requests are slower than it."""


@dataclass(frozen=True)
class Context:
    look: int
    alpha: float
    """Significance level for one check at this look."""
    window: float
    min_requests: int

    @property
    def span(self) -> str:
        return f"the last {window(self.window)}"

    def decide(self, result: CheckResult, p_value: float, breach: str, detail: str = "") -> CheckResult:
        """FAIL if the breach is significant at this look, else INCONCLUSIVE."""
        significant = p_value < self.alpha
        because = f"{detail}; " * bool(detail) + evidence(p_value, self.alpha, self.look)
        reason = f"{breach} ({because})" if significant else f"{breach} but not significantly ({because})"
        return result.model_copy(
            update={
                "result": Phase.FAIL if significant else Phase.INCONCLUSIVE,
                "reason": reason,
                "p_value": p_value,
                "alpha": self.alpha,
            }
        )


def _requests(sample: RedSample, who: str) -> tuple[int, int]:
    n = count(sample.requests, f"{who} requests")
    return n, min(count(sample.errors, f"{who} errors"), n)


def _result(name: str, ctx: Context, unit: str, **values: float | None) -> CheckResult:
    return CheckResult(name=name, result=Phase.PASS, reason="", unit=unit, window=ctx.window, **values)


def _inconclusive(result: CheckResult, reason: str, *, skipped: bool = False) -> CheckResult:
    return result.model_copy(update={"result": Phase.INCONCLUSIVE, "reason": reason, "skipped": skipped})


def _passed(result: CheckResult, reason: str) -> CheckResult:
    return result.model_copy(update={"result": Phase.PASS, "reason": reason})


def sample_size(canary: RedSample | None, workload: str, ctx: Context) -> CheckResult:
    result = _result("sample-size", ctx, "requests", threshold=float(ctx.min_requests))
    if canary is None:
        return _inconclusive(result, f"no data: no request metrics for canary {workload} in {ctx.span}")
    n, _ = _requests(canary, "canary")
    result = result.model_copy(update={"canary": float(n), "samples": float(n)})
    if n < ctx.min_requests:
        return _inconclusive(
            result, f"canary served only {n} requests in {ctx.span}, fewer than minRequests {ctx.min_requests}"
        )
    return _passed(result, f"canary served {n} requests in {ctx.span} (minRequests {ctx.min_requests})")


def availability(canary: RedSample, baseline: RedSample | None, objective: float, ctx: Context) -> CheckResult:
    """Canary error rate vs the availability objective (one-sided exact binomial test)."""
    limit = 1.0 - objective / 100.0
    n, e = _requests(canary, "canary")
    rate = e / n if n else 0.0
    base_rate = baseline.error_rate if baseline is not None else None
    result = _result("availability", ctx, "ratio", canary=rate, baseline=base_rate, threshold=limit, samples=n)
    if n == 0:
        return _inconclusive(result, f"no canary requests in {ctx.span}")
    return _rate_vs_objective(result, e, n, limit, f"canary error rate {percent(rate)} ({e}/{n})", ctx)


def latency_p99(canary: RedSample, baseline: RedSample | None, limit: float, ctx: Context) -> CheckResult:
    """Canary p99 vs the objective; the test: are significantly more than 1% of requests slower?"""
    hist = canary.latency
    base_p99 = baseline.p99 if baseline is not None else None
    result = _result("latency-p99", ctx, "s", baseline=base_p99, threshold=limit)
    n = count(hist.total, "canary latency histogram total") if hist is not None else 0
    if hist is None or n == 0:
        return _inconclusive(result, f"no latency histogram for the canary in {ctx.span}")
    p99 = hist.quantile(0.99) or 0.0
    slow = min(count(hist.count_above(limit), "canary slow requests"), n)
    result = result.model_copy(update={"canary": p99, "samples": float(n)})
    if p99 <= limit:
        return _passed(result, f"canary p99 {seconds(p99)} within {seconds(limit)} objective ({slow}/{n} slower)")
    breach = f"canary p99 {seconds(p99)} exceeds {seconds(limit)} objective"
    detail = f"{slow}/{n} requests slower, {percent(slow / n)} > 1%"
    return ctx.decide(result, binom_sf(slow, n, SLOW_FRACTION), breach, detail)


def trace_error_rate(canary: TraceSample, baseline: TraceSample | None, objective: float, ctx: Context) -> CheckResult:
    """Share of the canary's server spans with status error vs the objective (exact binomial test)."""
    limit = objective / 100.0
    spans = count(canary.spans, "canary spans")
    errors = min(count(canary.error_spans, "canary error spans"), spans)
    rate = errors / spans if spans else 0.0
    base_rate = baseline.error_rate if baseline is not None else None
    result = _result("trace-error-rate", ctx, "ratio", canary=rate, baseline=base_rate, threshold=limit, samples=spans)
    if spans == 0:
        return _inconclusive(result, f"no canary server spans in {ctx.span}")
    observed = f"canary trace error rate {percent(rate)} ({errors}/{spans} spans)"
    return _rate_vs_objective(result, errors, spans, limit, observed, ctx)


def no_trace_data(workload: str, ctx: Context) -> CheckResult:
    """The trace check of a canary Tempo had no server spans for: inconclusive, never absent."""
    result = _result("trace-error-rate", ctx, "ratio")
    return _inconclusive(result, f"no data: no server spans for canary {workload} in Tempo in {ctx.span}")


def _rate_vs_objective(
    result: CheckResult, failures: int, total: int, limit: float, observed: str, ctx: Context
) -> CheckResult:
    """Pass within the objective; above it, fail only if an exact binomial test says it is really above."""
    if failures / total <= limit:
        return _passed(result, f"{observed} within {percent(limit)} objective")
    return ctx.decide(result, binom_sf(failures, total, limit), f"{observed} exceeds {percent(limit)} objective")


def error_rate_ratio(canary: RedSample, baseline: RedSample | None, max_ratio: float, ctx: Context) -> CheckResult:
    """Canary error rate vs max_ratio x the baseline's (conditional exact two-sample test)."""
    n, e = _requests(canary, "canary")
    rate = e / n if n else 0.0
    result = _result("error-rate-ratio", ctx, "ratio", canary=rate, samples=n)
    nb, eb = _requests(baseline, "baseline") if baseline is not None else (0, 0)
    if nb == 0:
        return _inconclusive(result, f"no baseline traffic in {ctx.span}: comparison skipped", skipped=True)
    base_rate = eb / nb
    limit = base_rate * max_ratio
    result = result.model_copy(update={"baseline": base_rate, "threshold": limit})
    if n == 0:
        return _inconclusive(result, f"no canary requests in {ctx.span}")
    observed = f"canary error rate {percent(rate)} ({e}/{n})"
    against = f"{max_ratio:g}x baseline {percent(base_rate)}"
    if rate <= limit:
        return _passed(result, f"{observed} within {against} ({eb}/{nb})")
    p_value = rate_ratio_pvalue(e, n, eb, nb, max_ratio)
    return ctx.decide(result, p_value, f"{observed} exceeds {against}", f"baseline {eb}/{nb}")


def latency_ratio(canary: RedSample, baseline: RedSample | None, max_ratio: float, ctx: Context) -> CheckResult:
    """Canary p99 vs max_ratio x the baseline p99.

    Guarded by an intersection-union test: more than 1% of canary requests must be significantly
    slower than the limit, AND significantly more of them than of the baseline's, so a noisy
    baseline p99 on few requests does not fail a canary that is just like it.
    """
    hist = canary.latency
    base_hist = baseline.latency if baseline is not None else None
    result = _result("latency-ratio", ctx, "s")
    nb = count(base_hist.total, "baseline latency histogram total") if base_hist is not None else 0
    if base_hist is None or nb == 0:
        return _inconclusive(result, f"no baseline latency in {ctx.span}: comparison skipped", skipped=True)
    base_p99 = base_hist.quantile(0.99) or 0.0
    limit = base_p99 * max_ratio
    result = result.model_copy(update={"baseline": base_p99, "threshold": limit})
    n = count(hist.total, "canary latency histogram total") if hist is not None else 0
    if hist is None or n == 0:
        return _inconclusive(result, f"no latency histogram for the canary in {ctx.span}")
    p99 = hist.quantile(0.99) or 0.0
    result = result.model_copy(update={"canary": p99, "samples": float(n)})
    against = f"{max_ratio:g}x baseline p99 {seconds(base_p99)}"
    if p99 <= limit:
        return _passed(result, f"canary p99 {seconds(p99)} within {against}")
    slow = min(count(hist.count_above(limit), "canary slow requests"), n)
    base_slow = min(count(base_hist.count_above(limit), "baseline slow requests"), nb)
    p_value = max(binom_sf(slow, n, SLOW_FRACTION), rate_ratio_pvalue(slow, n, base_slow, nb, 1.0))
    detail = f"{slow}/{n} canary vs {base_slow}/{nb} baseline requests slower than {seconds(limit)}"
    return ctx.decide(result, p_value, f"canary p99 {seconds(p99)} exceeds {against}", detail)


def gate(result: CheckResult, ctx: Context) -> CheckResult:
    """A pass or fail resting on fewer than minRequests samples becomes INCONCLUSIVE."""
    if result.result is Phase.INCONCLUSIVE or result.samples is None or result.samples >= ctx.min_requests:
        return result
    reason = f"{result.reason}; not judged: only {result.samples:g} samples, fewer than minRequests {ctx.min_requests}"
    return result.model_copy(update={"result": Phase.INCONCLUSIVE, "reason": reason})
