"""Repeated looks at the same canary: what a user notices is how often a good release is rolled back.

The canaries here sit exactly on their objectives (0.5% errors against availability 99.5%, 1% of
requests slower than the 500ms p99 limit), the hardest healthy case, and are looked at every 30s
for 20 minutes over overlapping 2-minute windows, as the controller does. A fixed-level test at
each look would roll back a growing share of them; the sequential judge must stay under 1%.
"""

from __future__ import annotations

import math

import numpy as np
from judge_samples import BOUNDS, TARGET, slo

from canary.judge import judge
from canary.judge.model import Phase
from canary.samples import LatencyHistogram, Measurement, Pair, RedSample

SLO = slo(objectives={"availability": 99.5, "latencyP99": "500ms"})
RATE = 5.0  # requests per second, canary and baseline alike
INTERVAL, WINDOW, LOOKS = 30, 120, 40
SIGMA = 0.9
MEDIAN = 0.5 / math.exp(2.3263478740408408 * SIGMA)  # 1% of requests slower than 500ms


def _latency_buckets() -> np.ndarray:
    cdf = [1.0 if math.isinf(le) else 0.5 * math.erfc(-math.log(le / MEDIAN) / (SIGMA * 2**0.5)) for le in BOUNDS]
    return np.diff(np.array([0.0, *cdf]))


def _sample(rng: np.random.Generator, seconds: int, error_rate: float) -> np.ndarray:
    """Per-second rows of [requests, errors, latency bucket counts...]."""
    requests = rng.poisson(RATE, size=seconds)
    errors = rng.binomial(requests, error_rate)
    buckets = rng.multinomial(requests, _latency_buckets())
    return np.column_stack([requests, errors, buckets])


def _red(rows: np.ndarray) -> RedSample:
    total = rows.sum(axis=0)
    cumulative = np.cumsum(total[2:]).astype(float).tolist()
    return RedSample(
        requests=float(total[0]),
        errors=float(total[1]),
        latency=LatencyHistogram(buckets=tuple(zip(BOUNDS, cumulative, strict=True))),
    )


def _rolled_back_at(rng: np.random.Generator, canary_error_rate: float) -> int | None:
    """Seconds until the controller's rule (3 failed looks, a pass resets) rolls the canary back."""
    seconds = INTERVAL * LOOKS
    canary, baseline = _sample(rng, seconds, canary_error_rate), _sample(rng, seconds, 0.005)
    fails = 0
    for look in range(1, LOOKS + 1):
        end = look * INTERVAL
        start = max(0, end - WINDOW)
        red = Pair[RedSample](canary=_red(canary[start:end]), baseline=_red(baseline[start:end]))
        phase = judge(Measurement(target=TARGET, red=red), SLO, look=look).phase
        if phase is Phase.PASS:
            fails = 0
        elif phase is Phase.FAIL:
            fails += 1
            if fails == SLO.analysis.failed_checks:
                return end
    return None


def test_canaries_exactly_on_their_objectives_are_rarely_rolled_back_over_40_looks() -> None:
    rng = np.random.default_rng(20240607)
    canaries = 300

    rollbacks = sum(_rolled_back_at(rng, 0.005) is not None for _ in range(canaries))

    assert rollbacks / canaries <= 0.01, f"{rollbacks} of {canaries} healthy canaries were rolled back"


def test_a_canary_with_eight_times_the_allowed_errors_is_rolled_back_within_three_minutes() -> None:
    rng = np.random.default_rng(7)

    times = [_rolled_back_at(rng, 0.04) for _ in range(30)]

    assert all(t is not None and t <= 180 for t in times), f"rollback times (s): {times}"
