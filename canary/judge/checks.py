"""One function per check: the canary's cumulative counts in, one `Test` out. Pure, no I/O.

Each statistical check yields the log e-value of "the canary breaks this limit" (see
`canary.judge.sequential`), whether its evidence allows promotion, and a CheckResult with the current
estimate, its anytime-valid bounds and the expected time to a decision at the current traffic.
`canary.judge.verdict` combines the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from canary.judge import sequential as seq
from canary.judge.model import CheckResult, Phase
from canary.judge.text import eta, percent, seconds, window
from canary.samples import LatencyHistogram, RedSample, TraceSample

SLOW_FRACTION = 0.01
"""A p99 above a limit means more than 1% of requests are slower than it."""
PROMOTION_FACTOR = 2.0
"""Promotion needs evidence that the canary is below this many times each objective's limit."""
OBJECTIVE_WEIGHT = 2.0
COMPARISON_WEIGHT = 1.0
"""Shares of alpha: an objective's check (availability, latency-p99, trace error rate) gets twice a
comparison's, as the SLO's objectives are what a canary must above all not break."""


@dataclass(frozen=True)
class Context:
    alpha: float
    """Bound on P(rollback) of a canary that meets every limit, all checks and looks together."""
    beta: float
    """Bound on P(promotion) of a canary at PROMOTION_FACTOR x an objective's limit."""
    weights: float
    """Sum of the weights of the statistical checks configured: a check of weight w crosses the
    family's boundary alone at an e-value of weights / (w alpha)."""
    span: float
    """Seconds of evidence (since the analysis began)."""
    min_requests: int
    explain: bool = True
    """Compute the confidence bounds and times to a decision (presentation only: never changes a result)."""

    def log_fail(self, weight: float) -> float:
        """log of the e-value at which one check of this weight alone crosses the family's boundary."""
        return math.log(self.weights / (weight * self.alpha))

    @property
    def log_promote(self) -> float:
        return math.log(1.0 / self.beta)

    @property
    def since(self) -> str:
        return f"over {window(self.span)}" if self.span > 0 else "so far"

    def per_second(self, count: float) -> float:
        return count / self.span if self.span > 0 else 0.0


@dataclass(frozen=True)
class Test:
    """A check's result and the evidence the verdict combines."""

    result: CheckResult
    weight: float
    log_e: float = 0.0
    """log e-value against the limit (0: no evidence, the value of a check that could not run)."""
    promotable: bool = False


def _count(value: float, what: str) -> float:
    return seq.finite_count(value, what)


def _requests(sample: RedSample, who: str) -> tuple[float, float]:
    n = _count(sample.requests, f"{who} requests")
    return n, min(_count(sample.errors, f"{who} errors"), n)


def _result(name: str, ctx: Context, unit: str, **values: float | None) -> CheckResult:
    return CheckResult(name=name, result=Phase.INCONCLUSIVE, reason="", unit=unit, window=ctx.span, **values)


def _skip(result: CheckResult, reason: str, weight: float) -> Test:
    return Test(result.model_copy(update={"reason": reason, "skipped": True}), weight, promotable=True)


def _no_data(result: CheckResult, reason: str, weight: float) -> Test:
    return Test(result.model_copy(update={"reason": reason}), weight)


def sample_size(canary: RedSample | None, workload: str, ctx: Context) -> CheckResult:
    result = _result("sample-size", ctx, "requests", threshold=float(ctx.min_requests))
    if canary is None:
        return result.model_copy(update={"reason": f"no data: no request metrics for canary {workload} {ctx.since}"})
    n, _ = _requests(canary, "canary")
    result = result.model_copy(update={"canary": n, "samples": n})
    if n < ctx.min_requests:
        reason = f"canary served only {n:.0f} requests {ctx.since}, fewer than minRequests {ctx.min_requests}"
        return result.model_copy(update={"reason": reason})
    reason = f"canary served {n:.0f} requests {ctx.since} (minRequests {ctx.min_requests})"
    return result.model_copy(update={"result": Phase.PASS, "reason": reason})


def _rate_test(
    result: CheckResult, k: float, n: float, limit: float, observed: str, what: str, ctx: Context
) -> Test:
    """One-sample test of an event rate against `limit`, both ways, with bounds and time to a decision."""
    log_e = seq.log_e_above(k, n, limit)
    ceiling = min(PROMOTION_FACTOR * limit, (1.0 + limit) / 2.0)
    promotable = k == 0 if limit <= 0.0 else seq.log_e_below(k, n, ceiling) >= ctx.log_promote
    lower, upper = seq.confidence_sequence(k, n, ctx.alpha) if ctx.explain else (None, None)
    rate = k / n
    per_second = ctx.per_second(n)
    detect = promote = None
    if ctx.explain and 0.0 < limit < 0.5 and per_second > 0:
        trials = seq.trials_to_cross(ceiling, limit, ctx.log_fail(OBJECTIVE_WEIGHT), 0.0, above=True)
        detect = _finite(trials / per_second) if trials is not None else None
        if not promotable and rate < ceiling:
            log_mirror = seq.log_e_below(k, n, ceiling)
            more = seq.trials_to_cross(max(rate, 1e-9), ceiling, ctx.log_promote, log_mirror, above=False)
            promote = _finite(more / per_second) if more is not None else None
    bounds = ""
    if lower is not None and upper is not None:
        bounds = f", {(1 - ctx.alpha):.0%} bounds [{percent(lower)}, {percent(upper)}]"
    base = f"{observed} {ctx.since}{bounds}, limit {percent(limit)}"
    weight = OBJECTIVE_WEIGHT
    if log_e >= ctx.log_fail(weight):
        reason = f"{base}: above the limit ({_evidence(log_e, weight, ctx)})"
    elif promotable:
        reason = f"{base}: shown below {percent(ceiling)} ({PROMOTION_FACTOR:g}x the limit)"
    else:
        reason = f"{base}: not decided yet ({_evidence(log_e, weight, ctx)}; {eta(detect, promote, what, per_second)})"
    return Test(
        result.model_copy(
            update={
                "reason": reason, "lower": lower, "upper": upper, "e_value": _exp(log_e),
                "p_value": min(1.0, _exp(-log_e)), "alpha": ctx.alpha,
                "detect_seconds": detect, "promote_seconds": promote,
            }
        ),
        weight,
        log_e=log_e,
        promotable=promotable,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _exp(value: float) -> float:
    return math.exp(min(value, 700.0))


def _evidence(log_e: float, weight: float, ctx: Context) -> str:
    return f"e-value {_exp(log_e):.3g}, rollback at {math.exp(ctx.log_fail(weight)):.3g}"


def availability(canary: RedSample, baseline: RedSample | None, objective: float, ctx: Context) -> Test:
    """Canary error rate vs the availability objective."""
    limit = 1.0 - objective / 100.0
    n, e = _requests(canary, "canary")
    base_rate = baseline.error_rate if baseline is not None else None
    result = _result("availability", ctx, "ratio", baseline=base_rate, threshold=limit, samples=n)
    if n == 0:
        return _no_data(result, f"no canary requests {ctx.since}", OBJECTIVE_WEIGHT)
    result = result.model_copy(update={"canary": e / n})
    observed = f"canary error rate {percent(e / n)} ({e:.0f}/{n:.0f})"
    return _rate_test(result, e, n, limit, observed, "error rate", ctx)


def trace_error_rate(canary: TraceSample, baseline: TraceSample | None, objective: float, ctx: Context) -> Test:
    """Share of the canary's server spans with status error vs the objective."""
    limit = objective / 100.0
    spans = _count(canary.spans, "canary spans")
    errors = min(_count(canary.error_spans, "canary error spans"), spans)
    base_rate = baseline.error_rate if baseline is not None else None
    result = _result("trace-error-rate", ctx, "ratio", baseline=base_rate, threshold=limit, samples=spans)
    if spans == 0:
        return _no_data(result, f"no canary server spans {ctx.since}", OBJECTIVE_WEIGHT)
    result = result.model_copy(update={"canary": errors / spans})
    observed = f"canary trace error rate {percent(errors / spans)} ({errors:.0f}/{spans:.0f} spans)"
    return _rate_test(result, errors, spans, limit, observed, "trace error rate", ctx)


def no_trace_data(workload: str, ctx: Context) -> Test:
    """The trace check of a canary Tempo had no server spans for: inconclusive, never absent."""
    result = _result("trace-error-rate", ctx, "ratio")
    return _no_data(result, f"no data: no server spans for canary {workload} in Tempo {ctx.since}", OBJECTIVE_WEIGHT)


def objective_bucket(hist: LatencyHistogram, limit: float) -> float | None:
    """The smallest finite bucket bound at or above `limit`: requests above it are surely slower than
    the limit, so their share tests the p99 at bucket resolution without interpolation."""
    for le, _ in hist.buckets:
        if le >= limit * (1 - 1e-9) and math.isfinite(le):
            return le
    return None


def _below(hist: LatencyHistogram, le: float) -> float:
    return next((count for bound, count in hist.buckets if bound == le), 0.0)


def latency_p99(canary: RedSample, baseline: RedSample | None, limit: float, ctx: Context) -> Test:
    """Canary p99 vs the objective: are more than 1% of requests slower than the objective's bucket?"""
    hist = canary.latency
    base_p99 = baseline.p99 if baseline is not None else None
    result = _result("latency-p99", ctx, "s", baseline=base_p99, threshold=limit)
    n = _count(hist.total, "canary latency histogram total") if hist is not None else 0.0
    if hist is None or n == 0:
        return _no_data(result, f"no latency histogram for the canary {ctx.since}", OBJECTIVE_WEIGHT)
    bucket = objective_bucket(hist, limit)
    if bucket is None:
        reason = f"the {seconds(limit)} objective is above the largest finite latency bucket"
        return _skip(result, reason, OBJECTIVE_WEIGHT)
    slow = min(_count(n - _below(hist, bucket), "canary slow requests"), n)
    p99 = hist.quantile(0.99) or 0.0
    result = result.model_copy(update={"canary": p99, "samples": n})
    observed = f"canary p99 {seconds(p99)}; {slow:.0f}/{n:.0f} requests slower than {seconds(bucket)}"
    test = _rate_test(result, slow, n, SLOW_FRACTION, observed, "slow-request share", ctx)
    # Bounds and estimates of the slow share are in the reason; the row shows the p99 in seconds.
    return Test(test.result.model_copy(update={"lower": None, "upper": None}), test.weight, test.log_e, test.promotable)


def _ratio_test(
    result: CheckResult, k: float, n: float, kb: float, nb: float, ratio: float, observed: str, ctx: Context
) -> Test:
    """Canary event rate vs `ratio` x the baseline's: conditional binomial on the total events."""
    events = k + kb
    share = ratio * n / (ratio * n + nb)
    log_e = seq.log_e_above(k, events, share) if events > 0 else 0.0
    mirror_share = PROMOTION_FACTOR * ratio * n / (PROMOTION_FACTOR * ratio * n + nb)
    estimate = (k / n) / (kb / nb) if kb > 0 else (0.0 if k == 0 else math.inf)
    mirrored = events > 0 and seq.log_e_below(k, events, mirror_share) >= ctx.log_promote
    promotable = mirrored or log_e <= 0.0
    lo, hi = seq.confidence_sequence(k, events, ctx.alpha) if events > 0 and ctx.explain else (0.0, 1.0)
    to_ratio = nb / n
    lower = lo / (1 - lo) * to_ratio if lo < 1 else math.inf
    upper = hi / (1 - hi) * to_ratio if hi < 1 else math.inf
    base = (
        f"{observed} {ctx.since}: {_times(estimate)} the baseline's, {(1 - ctx.alpha):.0%} bounds "
        f"[{lower:.2f}x, {_times(upper)}], limit {ratio:g}x"
    )
    weight = COMPARISON_WEIGHT
    evidence = _evidence(log_e, weight, ctx)
    if log_e >= ctx.log_fail(weight):
        reason = f"{base}: above the limit ({evidence})"
    elif promotable:
        shown = f"shown below {PROMOTION_FACTOR * ratio:g}x"
        reason = f"{base}: " + (shown if mirrored else f"within the limit ({evidence})")
    else:
        reason = f"{base}: not decided yet ({evidence})"
    update = {"reason": reason, "e_value": _exp(log_e), "p_value": min(1.0, _exp(-log_e)), "alpha": ctx.alpha}
    return Test(result.model_copy(update=update), weight, log_e=log_e, promotable=promotable)


def _times(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}x"


def error_rate_ratio(canary: RedSample, baseline: RedSample | None, max_ratio: float, ctx: Context) -> Test:
    """Canary error rate vs max_ratio x the baseline's over the same span."""
    n, e = _requests(canary, "canary")
    result = _result("error-rate-ratio", ctx, "ratio", canary=e / n if n else None, samples=n)
    nb, eb = _requests(baseline, "baseline") if baseline is not None else (0.0, 0.0)
    if nb == 0:
        return _skip(result, f"no baseline traffic {ctx.since}: comparison skipped", COMPARISON_WEIGHT)
    result = result.model_copy(update={"baseline": eb / nb, "threshold": eb / nb * max_ratio})
    if n == 0:
        return _no_data(result, f"no canary requests {ctx.since}", COMPARISON_WEIGHT)
    observed = f"canary errors {e:.0f}/{n:.0f} vs baseline {eb:.0f}/{nb:.0f}"
    return _ratio_test(result, e, n, eb, nb, max_ratio, observed, ctx)


def _threshold_pairs(canary: LatencyHistogram, baseline: LatencyHistogram, ratio: float) -> list[tuple[float, float]]:
    """(t, b) bucket bounds with b <= t / ratio: canary slower than t beyond 1% while the baseline is
    not slower than b beyond 1% means canary p99 > t >= ratio x b >= ratio x baseline p99."""
    base_bounds = [le for le, _ in baseline.buckets if math.isfinite(le) and le > 0]
    pairs = []
    for t, _ in canary.buckets:
        if not math.isfinite(t):
            continue
        below = [b for b in base_bounds if b <= t / ratio * (1 + 1e-9)]
        if below:
            pairs.append((t, max(below)))
    return pairs


def latency_ratio(canary: RedSample, baseline: RedSample | None, max_ratio: float, ctx: Context) -> Test:
    """Canary p99 vs max_ratio x the baseline p99, at bucket resolution.

    For each pair of bucket bounds (t, b) with b <= t / max_ratio, the breach "canary p99 > t and
    baseline p99 <= b" is tested as an intersection: the smaller of the e-values "more than 1% of
    canary requests are slower than t" and "at most 1% of baseline requests are slower than b". Under
    the null one of the two is a supermartingale for every pair, so their average over the pairs is
    an e-process: no interpolated p99 of a noisy baseline ever fails a canary that is like it.
    """
    hist = canary.latency
    base_hist = baseline.latency if baseline is not None else None
    result = _result("latency-ratio", ctx, "s")
    nb = _count(base_hist.total, "baseline latency histogram total") if base_hist is not None else 0.0
    if base_hist is None or nb == 0:
        return _skip(result, f"no baseline latency {ctx.since}: comparison skipped", COMPARISON_WEIGHT)
    base_p99 = base_hist.quantile(0.99) or 0.0
    limit = base_p99 * max_ratio
    result = result.model_copy(update={"baseline": base_p99, "threshold": limit})
    n = _count(hist.total, "canary latency histogram total") if hist is not None else 0.0
    if hist is None or n == 0:
        return _no_data(result, f"no latency histogram for the canary {ctx.since}", COMPARISON_WEIGHT)
    p99 = hist.quantile(0.99) or 0.0
    result = result.model_copy(update={"canary": p99, "samples": n})
    pairs = _threshold_pairs(hist, base_hist, max_ratio)
    if not pairs:
        return _skip(result, "no pair of latency buckets max_ratio apart: comparison skipped", COMPARISON_WEIGHT)
    values = []
    for t, b in pairs:
        slow = min(_count(n - _below(hist, t), "canary slow requests"), n)
        base_slow = min(_count(nb - _below(base_hist, b), "baseline slow requests"), nb)
        values.append(min(seq.log_e_above(slow, n, SLOW_FRACTION), seq.log_e_below(base_slow, nb, SLOW_FRACTION)))
    log_e = seq.log_mean_exp(values)
    promotable = log_e <= 0.0
    base = f"canary p99 {seconds(p99)} vs {max_ratio:g}x baseline p99 {seconds(base_p99)} {ctx.since}"
    evidence = _evidence(log_e, COMPARISON_WEIGHT, ctx)
    if log_e >= ctx.log_fail(COMPARISON_WEIGHT):
        reason = f"{base}: above the limit at bucket resolution ({evidence})"
    elif promotable:
        reason = f"{base}: within the limit at bucket resolution ({evidence})"
    else:
        reason = f"{base}: not decided yet ({evidence})"
    update = {"reason": reason, "e_value": _exp(log_e), "p_value": min(1.0, _exp(-log_e)), "alpha": ctx.alpha}
    return Test(result.model_copy(update=update), COMPARISON_WEIGHT, log_e=log_e, promotable=promotable)
