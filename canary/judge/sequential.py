"""Always-valid tests on counts: mixture e-processes, confidence sequences and time to a decision.

Pure Python (math only), no I/O. Everything works in log space and on real-valued counts (Prometheus'
`increase()` extrapolates, so counts are rarely whole numbers).

An e-process for "the rate is at most p0" is the likelihood ratio of the k events in n trials under
an alternative p1 > p0 against p0. For every p <= p0 its expectation per trial is at most 1, so the
product over the trials (which depends only on k and n) is a non-negative supermartingale that starts
at 1, and by Ville's inequality P(it ever reaches 1/a) <= a: however often it is looked at. The
alternative is unknown, so the e-process is the average of the ratios over a grid of alternatives
(`ODDS_GRID`, odds ratios against p0; an average of supermartingales is one), which tracks the best
alternative within log(len(grid)) (Johari et al., "Always Valid Inference"; Lindon et al., KDD 2022;
Lindon & Malek, NeurIPS 2022, for the Poisson/conditional-binomial form used for rate ratios).
The mirror process (alternatives below p0) gives evidence that the rate is below p0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

ODDS_GRID = (1.5, 2.0, 4.0, 10.0)
"""Alternatives as odds ratios against the null: from a 1.5x breach to a 10x one (larger ones are
caught through 10x within a few events anyway)."""
LOG_GRID = math.log(len(ODDS_GRID))
BISECTIONS = 22
"""Steps that find a confidence bound: 50 logit units / 2**22, far finer than any display."""
MAX_COUNT = 1e15
"""Counts beyond this are not request counts: the judge reports them instead of overflowing."""


def finite_count(value: float, what: str) -> float:
    """`value` if it is a usable count (finite, >= 0, <= MAX_COUNT), else a ValueError naming `what`."""
    if not math.isfinite(value) or value < 0 or value > MAX_COUNT:
        raise ValueError(f"{what} must be a finite count between 0 and {MAX_COUNT:g}, got {value!r}")
    return float(value)


def shift(p: float, odds_ratio: float) -> float:
    """The probability whose odds are `odds_ratio` times those of p."""
    odds = p / (1.0 - p) * odds_ratio
    return odds / (1.0 + odds)


def log_mean_exp(values: Sequence[float]) -> float:
    top = max(values)
    if math.isinf(top):
        return top
    return top + math.log(sum(math.exp(v - top) for v in values)) - math.log(len(values))


@lru_cache(maxsize=8192)
def _coefficients(p0: float, above: bool) -> tuple[tuple[float, float], ...]:
    """Per alternative p1 of the grid: log(p1/p0) and log((1-p1)/(1-p0)), the log likelihood ratio
    of one event and of one non-event (the ratio of k events in n trials is k a + (n - k) b)."""
    alternatives = (shift(p0, r if above else 1.0 / r) for r in ODDS_GRID)
    return tuple((math.log(p1) - math.log(p0), math.log1p(-p1) - math.log1p(-p0)) for p1 in alternatives)


def _log_e(k: float, n: float, p0: float, above: bool) -> float:
    non_events = max(0.0, n - k)
    return log_mean_exp([k * a + non_events * b for a, b in _coefficients(p0, above)])


def log_e_above(k: float, n: float, p0: float) -> float:
    """log e-value that the event rate is above p0 (mixture over alternatives above p0); 0 = no evidence."""
    k = min(k, n)
    if p0 <= 0.0:
        return math.inf if k > 0 else 0.0
    if p0 >= 1.0 or n <= 0:
        return 0.0 if n <= 0 else -math.inf
    return _log_e(k, n, p0, True)


def log_e_below(k: float, n: float, p0: float) -> float:
    """log e-value that the event rate is below p0 (the mirror of `log_e_above`)."""
    k = min(k, n)
    if p0 >= 1.0:
        return math.inf if n - k > 0 else 0.0
    if p0 <= 0.0 or n <= 0:
        return 0.0 if n <= 0 else -math.inf
    return _log_e(k, n, p0, False)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def confidence_sequence(k: float, n: float, alpha: float) -> tuple[float, float]:
    """Anytime-valid (1 - alpha) bounds on an event rate from k events in n trials.

    The rates that neither mixture e-process rejects at alpha/2: the bounds hold simultaneously over
    every look, so they can be shown at every check.
    """
    if n <= 0:
        return 0.0, 1.0
    k = min(max(k, 0.0), n)
    threshold = math.log(2.0 / alpha)
    estimate = k / n
    low_edge, high_edge = -25.0, 25.0

    lower = 0.0
    if estimate > 0 and log_e_above(k, n, _expit(low_edge)) >= threshold:
        # Rates below the estimate that the upper-side e-process rejects: bisect for the boundary.
        lo, hi = low_edge, _logit(min(max(estimate, 1e-17), 1 - 1e-16))
        for _ in range(BISECTIONS):
            mid = (lo + hi) / 2
            if log_e_above(k, n, _expit(mid)) >= threshold:
                lo = mid
            else:
                hi = mid
        lower = _expit(lo)

    upper = 1.0
    if estimate < 1 and log_e_below(k, n, _expit(high_edge)) >= threshold:
        lo, hi = _logit(min(max(estimate, 1e-17), 1 - 1e-16)), high_edge
        for _ in range(BISECTIONS):
            mid = (lo + hi) / 2
            if log_e_below(k, n, _expit(mid)) >= threshold:
                hi = mid
            else:
                lo = mid
        upper = _expit(hi)
    return lower, upper


def drift(p_true: float, p0: float, p1: float) -> float:
    """Expected log likelihood ratio per trial of Bernoulli(p1) vs Bernoulli(p0) when the rate is p_true."""
    return p_true * (math.log(p1) - math.log(p0)) + (1 - p_true) * (math.log1p(-p1) - math.log1p(-p0))


def trials_to_cross(p_true: float, p0: float, log_threshold: float, log_e_now: float, above: bool) -> float | None:
    """Expected further trials until the mixture e-process (above or below p0) reaches the threshold if
    the rate is p_true (Wald's approximation with the best alternative of the grid); None: never."""
    if not 0.0 < p0 < 1.0 or not 0.0 <= p_true <= 1.0:
        return None
    best = max(drift(p_true, p0, shift(p0, r if above else 1.0 / r)) for r in ODDS_GRID)
    if best <= 0:
        return None
    if log_e_now >= log_threshold:
        return 0.0
    return max(0.0, (log_threshold + LOG_GRID - max(log_e_now + LOG_GRID, 0.0)) / best)
