"""`judge()`: a canary's cumulative evidence and the service's SLO in, one Verdict out. Pure, no I/O.

Method (anytime-valid, over the canary's whole life)
----------------------------------------------------
The Measurement holds the canary's and the baseline's counts since the analysis began (requests,
errors, latency buckets, trace spans; see `canary.analysis`). Each statistical check turns them into
an e-process against its limit (`canary.judge.sequential`): availability, latency-p99 (share of
requests above the objective's bucket vs 1%) and trace error rate against their objectives, and
error-rate-ratio and latency-ratio (at bucket resolution) against the baseline.

Guarantee: for a canary that meets every limit, each check's e-process is a non-negative
supermartingale starting at 1 (a check that cannot run counts as 1), so their weighted average over
the configured checks is one too (objectives weigh twice as much as comparisons: they are what the
canary must above all not break), and by Ville's inequality

    P(a canary that meets every limit is ever rolled back) <= alpha        (default 1%)

over unlimited looks at any interval, all checks together. The rollback comes at the first look at
which the average reaches 1/alpha (any single check of weight w at W/(w alpha), W the total weight,
or several together); the checks
carrying that evidence are the FAILed ones. Assumptions: requests are independent given the rates
(the binomial model of each count), and for the ratio checks the canary's share of the traffic is
steady (the conditional binomial given the total events).

Promotion (PASS) needs the evidence, not the absence of a breach: each objective's mirror e-process
must show the canary below 2x its limit at level beta (default 5%: at most 1 in 20 canaries sitting at
2x a limit is promoted), and each comparison's evidence must lean towards "within the limit"
(its e-value at most 1, or its own mirror showing it below 2x the ratio: a comparison with the
baseline can take hours to confirm at low traffic, so it blocks promotion only while the evidence
points to a breach; the forward test keeps watching until the promotion is complete). Until then
the verdict is INCONCLUSIVE, with the estimates, their bounds and the expected time to a decision at
the current traffic in each check's reason. Fewer canary requests than `minRequests` never decide
anything.

Precedence: error (a backend error or an unusable input) > fail > pass > inconclusive. Checks marked
`skipped` (e.g. no baseline to compare with) are reported but do not block promotion.
"""

from __future__ import annotations

import math

from canary.config.slo import ServiceSLOSpec
from canary.judge import checks
from canary.judge.model import CheckResult, Phase, Verdict
from canary.judge.text import window
from canary.samples import Measurement

DEFAULT_ALPHA = 0.01
"""Bound on the probability that a canary meeting its SLO is ever rolled back."""
DEFAULT_BETA = 0.05
"""Bound on the probability that a canary at 2x an objective's limit is promoted."""


def check_weights(slo: ServiceSLOSpec) -> float:
    """Total weight of the statistical checks configured: availability and the two comparisons, plus
    the optional objectives (an objective weighs OBJECTIVE_WEIGHT, a comparison COMPARISON_WEIGHT)."""
    objectives = slo.objectives
    optional = (objectives.latency_p99 is not None) + (objectives.trace_error_rate is not None)
    return checks.OBJECTIVE_WEIGHT * (1 + optional) + 2 * checks.COMPARISON_WEIGHT


def judge(
    m: Measurement,
    slo: ServiceSLOSpec,
    *,
    look: int = 1,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    explain: bool = True,
) -> Verdict:
    """The verdict on one canary's evidence so far (`look`: the 1-based index of this check, for the record).

    `explain=False` leaves out the confidence bounds and times to a decision (for simulations): the
    results are the same.

    Never raises: an input it cannot use (an infinite, NaN or absurdly large count) is an error verdict
    naming the value.
    """
    if look < 1:
        return Verdict(phase=Phase.ERROR, checks=(), message=f"look is the 1-based index of the check, got {look}")
    if not (0.0 < alpha < 1.0 and 0.0 < beta < 1.0):
        return Verdict(phase=Phase.ERROR, checks=(), message=f"alpha and beta must be in (0, 1), got {alpha}, {beta}")
    try:
        return _judge(m, slo, alpha, beta, explain)
    except (ValueError, ArithmeticError) as exc:
        return Verdict(phase=Phase.ERROR, checks=(), message=f"not judged: {_one_line(str(exc))}")


def _judge(m: Measurement, slo: ServiceSLOSpec, alpha: float, beta: float, explain: bool) -> Verdict:
    weights = check_weights(slo)
    ctx = checks.Context(
        alpha=alpha, beta=beta, weights=weights, span=m.target.window, min_requests=slo.analysis.min_requests,
        explain=explain,
    )
    objectives, comparison = slo.objectives, slo.comparison
    canary = m.red.canary if m.red is not None else None
    baseline = m.red.baseline if m.red is not None else None

    size = checks.sample_size(canary, str(m.target.canary), ctx)
    tests: list[checks.Test] = []
    if canary is not None:
        tests.append(checks.availability(canary, baseline, objectives.availability, ctx))
        if objectives.latency_p99 is not None:
            tests.append(checks.latency_p99(canary, baseline, objectives.latency_p99, ctx))
        tests.append(checks.error_rate_ratio(canary, baseline, comparison.max_error_rate_ratio, ctx))
        tests.append(checks.latency_ratio(canary, baseline, comparison.max_latency_ratio, ctx))
    traces = m.traces
    if objectives.trace_error_rate is not None and traces is not None:
        if traces.canary is not None:
            tests.append(checks.trace_error_rate(traces.canary, traces.baseline, objectives.trace_error_rate, ctx))
        else:  # measured but no spans: a configured check never silently disappears
            tests.append(checks.no_trace_data(str(m.target.canary), ctx))
    if m.errors:
        message = "backend error, not judged: " + "; ".join(_one_line(str(e)) for e in m.errors)
        return Verdict(phase=Phase.ERROR, checks=(size, *(t.result for t in tests)), message=message)

    enough = size.result is Phase.PASS
    # Checks that could not run count as e = 1: the average stays a supermartingale under the null.
    missing = weights - sum(t.weight for t in tests)
    log_average = _log_weighted_mean([(t.weight, t.log_e) for t in tests] + [(missing, 0.0)], weights)
    failing = enough and log_average >= math.log(1.0 / alpha)
    promotable = enough and len(tests) > 0 and all(t.promotable for t in tests)
    settled = [_settle(t, failing, ctx) for t in tests]
    if failing and not any(r.result is Phase.FAIL for r in settled):
        strongest = max(range(len(tests)), key=lambda i: tests[i].log_e)
        settled[strongest] = settled[strongest].model_copy(update={"result": Phase.FAIL})
    average = math.exp(min(log_average, 700.0))
    return _verdict(m, (size, *settled), failing, promotable, average, alpha)


def _log_weighted_mean(terms: list[tuple[float, float]], total: float) -> float:
    """log of sum(w * exp(log_e)) / total, without overflow."""
    used = [(w, v) for w, v in terms if w > 0]
    top = max(v for _, v in used)
    if math.isinf(top):
        return top
    return top + math.log(sum(w * math.exp(v - top) for w, v in used) / total)


def _settle(test: checks.Test, failing: bool, ctx: checks.Context) -> CheckResult:
    """A check's own result: FAIL when it carries the rollback, PASS when it allows promotion."""
    if failing and test.log_e >= math.log(1.0 / ctx.alpha):
        return test.result.model_copy(update={"result": Phase.FAIL})
    if test.promotable and not test.result.skipped:
        return test.result.model_copy(update={"result": Phase.PASS})
    return test.result


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _verdict(
    m: Measurement, results: tuple[CheckResult, ...], failing: bool, promotable: bool, average: float, alpha: float
) -> Verdict:
    counted = [r for r in results if not r.skipped]
    if failing:
        hits = [r for r in counted if r.result is Phase.FAIL]
        evidence = f"average e-value {average:.3g} >= {1 / alpha:.3g}"
        message = "; ".join(f"{r.name}: {_one_line(r.reason)}" for r in hits) + f" ({evidence})"
        return Verdict(phase=Phase.FAIL, checks=results, message=message)
    skipped = [r for r in results if r.skipped]
    if promotable:
        message = f"all {len(counted)} checks within their limits on {window(m.target.window)} of evidence"
        if skipped:
            message += " (skipped: " + "; ".join(f"{r.name}: {_one_line(r.reason)}" for r in skipped) + ")"
        return Verdict(phase=Phase.PASS, checks=results, message=message)
    waiting = [r for r in counted if r.result is not Phase.PASS]
    message = "; ".join(f"{r.name}: {_one_line(r.reason)}" for r in waiting)
    return Verdict(phase=Phase.INCONCLUSIVE, checks=results, message=message)
