"""Exact tests on counts, in pure Python (no scipy at run time).

- `binom_sf(k, n, p)`: P(X >= k) for X ~ Binomial(n, p), the one-sided exact binomial test.
- `rate_ratio_pvalue(...)`: the conditional exact test (Przyborowski-Wilenski "C-test") that a
  canary's event rate is at most `ratio` times the baseline's: given the total number of events,
  the canary's share is Binomial(total, ratio*n_c / (ratio*n_c + n_b)) at the boundary of H0.
- `look_alpha(...)`: the significance level spent on one look of a sequential analysis.

Counts from Prometheus are floats (`increase()` extrapolates); `count()` rounds them.
"""

from __future__ import annotations

import math

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 20_000


def count(value: float, what: str = "count") -> int:
    """A non-negative whole count from a measured (possibly extrapolated) float."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return round(value)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's evaluation of the continued fraction of the incomplete beta function."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) for a, b > 0."""
    if a <= 0 or b <= 0:
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the p-value of observing k or more events."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must be in [0, 1], got {p!r}")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    return min(1.0, max(0.0, betainc(float(k), float(n - k + 1), p)))


def rate_ratio_pvalue(events_c: int, n_c: int, events_b: int, n_b: int, ratio: float) -> float:
    """p-value of H0 "canary rate <= ratio * baseline rate" given the canary's and baseline's counts.

    Conditional on the total number of events, the canary's share is binomial; at the boundary of H0
    its probability is ratio*n_c / (ratio*n_c + n_b). Exact for Poisson counts, and conservative
    enough for rare binomial events (errors, slow requests), which is what it is used for.
    """
    if n_c <= 0 or n_b <= 0:
        raise ValueError(f"both samples need requests, got canary {n_c}, baseline {n_b}")
    share = ratio * n_c / (ratio * n_c + n_b)
    return binom_sf(events_c, events_c + events_b, share)


def look_alpha(alpha: float, look: int, failed_checks: int) -> float:
    """Significance level of look `look` so that P(any rollback) <= alpha over unlimited looks.

    A rollback needs `failed_checks` failed looks, so it can only happen at a look k >= failed_checks
    that itself failed: P(rollback) <= sum over k >= failed_checks of P(look k fails). Spending
    alpha / (m (m + 1)) with m = k - failed_checks + 1 makes that sum telescope to alpha, whatever the
    dependence between looks (the windows overlap). Earlier looks get the level of look
    `failed_checks` so that the level never grows with k.
    """
    if look < 1:
        raise ValueError(f"look is the 1-based index of the check, got {look}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    m = max(1, look - max(1, failed_checks) + 1)
    return alpha / (m * (m + 1))
