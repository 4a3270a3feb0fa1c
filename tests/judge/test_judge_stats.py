"""The exact tests agree with scipy, and the alpha spending keeps its promise."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from canary.judge.stats import binom_sf, look_alpha, rate_ratio_pvalue


@settings(max_examples=400, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=200_000),
    k_share=st.floats(min_value=0.0, max_value=1.0),
    p=st.floats(min_value=0.0, max_value=1.0),
)
def test_binomial_tail_matches_scipy(n: int, k_share: float, p: float) -> None:
    k = round(k_share * n)
    expected = float(scipy_stats.binom.sf(k - 1, n, p))
    got = binom_sf(k, n, p)
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-300 if expected < 1e-250 else 1e-12)


@settings(max_examples=200, deadline=None)
@given(
    events_c=st.integers(min_value=0, max_value=500),
    events_b=st.integers(min_value=0, max_value=500),
    n_c=st.integers(min_value=1, max_value=100_000),
    n_b=st.integers(min_value=1, max_value=100_000),
    ratio=st.floats(min_value=1.0, max_value=10.0),
)
def test_rate_ratio_test_is_scipy_conditional_binomial_test(
    events_c: int, events_b: int, n_c: int, n_b: int, ratio: float
) -> None:
    share = ratio * n_c / (ratio * n_c + n_b)
    total = events_c + events_b
    expected = float(scipy_stats.binomtest(events_c, total, share, alternative="greater").pvalue) if total else 1.0
    assert rate_ratio_pvalue(events_c, n_c, events_b, n_b, ratio) == pytest.approx(expected, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("failed_checks", [1, 3, 7])
def test_alpha_spent_over_any_number_of_rollback_looks_never_exceeds_alpha(failed_checks: int) -> None:
    levels = [look_alpha(0.01, k, failed_checks) for k in range(1, 100_001)]

    assert sum(levels[failed_checks - 1 :]) <= 0.01
    assert sum(levels[failed_checks - 1 :]) == pytest.approx(0.01, rel=1e-4)
    assert all(a >= b for a, b in itertools.pairwise(levels)), "never more lenient at a later look"
    assert levels[0] == pytest.approx(0.005)


def test_bad_probabilities_and_levels_are_refused() -> None:
    with pytest.raises(ValueError, match=r"a probability must be in \[0, 1\], got 1.5"):
        binom_sf(1, 10, 1.5)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\), got 0"):
        look_alpha(0, 1, 3)
    with pytest.raises(ValueError, match="both samples need requests, got canary 0, baseline 10"):
        rate_ratio_pvalue(0, 0, 1, 10, 2.0)
    assert math.isclose(binom_sf(0, 10, 0.3), 1.0) and binom_sf(11, 10, 0.3) == 0.0
