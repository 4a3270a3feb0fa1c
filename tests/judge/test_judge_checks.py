"""Each check and the verdict's precedence on hand-made cumulative evidence: what an operator reads."""

from __future__ import annotations

import math

import pytest
from judge_samples import MIMIR_DOWN, TARGET, histogram, measurement, red, slo

from canary.judge import judge
from canary.judge.model import CheckResult, Phase, Verdict
from canary.samples import (
    Backend,
    BackendError,
    BackendErrorKind,
    LatencyHistogram,
    Measurement,
    Pair,
    RedSample,
    TraceSample,
)

STRICT = slo(objectives={"availability": 99.5, "latencyP99": "500ms"})


def check(verdict: Verdict, name: str) -> CheckResult:
    found = [c for c in verdict.checks if c.name == name]
    assert len(found) == 1, f"expected one {name!r} check in {[c.name for c in verdict.checks]}"
    return found[0]


def test_bad_canary_fails_with_estimate_bounds_and_evidence_in_the_reason() -> None:
    v = judge(measurement(red(200, 40), red(5000, 50)), STRICT)

    assert v.phase is Phase.FAIL
    availability = check(v, "availability")
    assert availability.result is Phase.FAIL
    assert availability.reason.startswith("canary error rate 20.0% (40/200) over 2m, 99% bounds [")
    assert "above the limit (e-value" in availability.reason
    assert availability.lower is not None and 0.005 < availability.lower < 0.2 < (availability.upper or 0) < 0.5
    assert availability.e_value is not None and availability.p_value == pytest.approx(1 / availability.e_value)
    assert "availability:" in v.message and "average e-value" in v.message and "\n" not in v.message


def test_healthy_canary_with_enough_evidence_is_promotable() -> None:
    v = judge(measurement(red(20_000, 20, 0.001), red(20_000, 25, 0.001)), STRICT)

    assert v.phase is Phase.PASS, v.message
    assert {c.name: c.result for c in v.checks} == {
        "sample-size": Phase.PASS, "availability": Phase.PASS, "latency-p99": Phase.PASS,
        "error-rate-ratio": Phase.PASS, "latency-ratio": Phase.PASS,
    }
    assert "shown below 1.0% (2x the limit)" in check(v, "availability").reason


def test_a_quiet_canary_waits_and_says_how_long_a_decision_takes() -> None:
    """One error in 300 requests: not a breach shown, not a pass shown, and the operator reads why."""
    v = judge(measurement(red(300, 1), red(300, 1)), STRICT)

    assert v.phase is Phase.INCONCLUSIVE
    availability = check(v, "availability")
    assert availability.result is Phase.INCONCLUSIVE
    assert "a error rate of 2x the limit would be detected in ~" in availability.reason
    assert "at 2.5 req/s" in availability.reason
    assert availability.detect_seconds is not None and availability.detect_seconds > 60
    assert availability.promote_seconds is not None and availability.promote_seconds > 0


def test_too_few_requests_never_decide_even_when_every_request_failed() -> None:
    v = judge(measurement(red(12, 12, 1.0), red(6000, 6)), STRICT)

    assert v.phase is Phase.INCONCLUSIVE
    assert not v.failed
    assert v.message.startswith("sample-size: canary served only 12 requests over 2m, fewer than minRequests 50")


def test_missing_canary_metrics_is_inconclusive_no_data() -> None:
    v = judge(measurement(None, red(6000, 6)), STRICT)

    assert v.phase is Phase.INCONCLUSIVE
    assert v.message.startswith("sample-size: no data: no request metrics for canary shop/checkout")


def test_latency_p99_counts_requests_above_the_objective_bucket() -> None:
    slow = judge(measurement(red(2000, 0, 0.05, slow=2.0), red(2000, 0, 0.0)), STRICT)
    assert slow.phase is Phase.FAIL
    assert check(slow, "latency-p99").result is Phase.FAIL
    assert "100/2000 requests slower than 500ms" in check(slow, "latency-p99").reason

    # An objective between bounds is tested at the next bound up: 450ms -> requests above 500ms.
    between = judge(measurement(red(2000, 0, 0.05, slow=0.48)), slo(objectives={"latencyP99": "450ms"}))
    assert "0/2000 requests slower than 500ms" in check(between, "latency-p99").reason
    assert check(between, "latency-p99").result is not Phase.FAIL


def test_latency_check_is_absent_when_the_objective_is_disabled() -> None:
    v = judge(measurement(red(1000), red(1000)), slo(objectives={"latencyP99": None}))
    assert "latency-p99" not in {c.name for c in v.checks}


def test_error_rate_ratio_fails_a_canary_much_worse_than_its_baseline_within_the_objective() -> None:
    lax = slo(objectives={"availability": 90})
    v = judge(measurement(red(20_000, 200), red(20_000, 20)), lax)

    assert v.phase is Phase.FAIL
    assert check(v, "availability").result is not Phase.FAIL
    ratio = check(v, "error-rate-ratio")
    assert ratio.result is Phase.FAIL and "10.00x the baseline's" in ratio.reason


def test_no_baseline_skips_the_comparisons_without_blocking_promotion() -> None:
    v = judge(measurement(red(20_000, 10), None), STRICT)

    assert v.phase is Phase.PASS, v.message
    assert check(v, "error-rate-ratio").skipped and check(v, "latency-ratio").skipped
    assert "(skipped: error-rate-ratio: no baseline traffic" in v.message


def test_latency_ratio_fails_a_canary_much_slower_than_its_baseline() -> None:
    canary = red(5000, 0, 0.05, fast=0.1, slow=0.9)
    baseline = red(5000, 0, 0.0, fast=0.1)
    v = judge(measurement(canary, baseline), slo(objectives={"latencyP99": "5s"}))

    assert check(v, "latency-ratio").result is Phase.FAIL
    assert "at bucket resolution" in check(v, "latency-ratio").reason


def test_latency_ratio_at_bucket_resolution_never_fails_a_canary_like_its_baseline() -> None:
    """The old interpolated test failed canaries at exactly 1.5x the baseline p99; the bucket test
    needs the canary's slow requests above one bound and the baseline's below a bound 1.5x lower."""
    shape = {"fast": 0.05, "slow": 0.3}
    v = judge(measurement(red(50_000, 0, 0.012, **shape), red(50_000, 0, 0.009, **shape)), STRICT)

    assert check(v, "latency-ratio").result is not Phase.FAIL


def test_trace_error_rate_is_checked_when_set_and_present() -> None:
    traces = Pair[TraceSample](canary=TraceSample(spans=1000, error_spans=200), baseline=None)
    m = measurement(red(1000), red(1000), traces=traces)
    v = judge(m, slo(objectives={"traceErrorRate": "2%"}))

    assert check(v, "trace-error-rate").result is Phase.FAIL
    assert v.phase is Phase.FAIL
    assert "trace-error-rate" not in {c.name for c in judge(m, STRICT).checks}


def test_backend_error_is_error_never_fail_and_names_backend_query_and_reason() -> None:
    tempo_down = BackendError(backend=Backend.TEMPO, query="{ status = error }", kind=BackendErrorKind.TIMEOUT,
                              reason="no answer within 10s")
    v = judge(measurement(red(200, 40), red(5000, 50), errors=(MIMIR_DOWN, tempo_down)), STRICT)

    assert v.phase is Phase.ERROR
    assert v.message.startswith("backend error, not judged: mimir connection error: connection refused")
    assert "tempo timeout error: no answer within 10s" in v.message


@pytest.mark.parametrize("look", [0, -3])
def test_look_must_be_one_based(look: int) -> None:
    v = judge(measurement(red(100)), STRICT, look=look)
    assert v.phase is Phase.ERROR and v.message == f"look is the 1-based index of the check, got {look}"


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        (RedSample(requests=math.inf, errors=0.0), "canary requests"),
        (RedSample(requests=1e300, errors=1e299, latency=histogram(1e300, 0.1)), "canary requests"),
        (RedSample(requests=100.0, errors=10.0, latency=LatencyHistogram(buckets=((math.inf, math.nan),))),
         "latency histogram total"),
    ],
)
def test_unusable_counts_are_an_error_verdict_naming_the_value_never_an_exception(
    sample: RedSample, field: str
) -> None:
    v = judge(measurement(sample, red(1000)), STRICT)

    assert v.phase is Phase.ERROR
    assert field in v.message and "finite count" in v.message


def test_explain_false_gives_the_same_results_without_bounds() -> None:
    for m in (measurement(red(200, 40), red(5000, 50)), measurement(red(300, 1), red(300, 1)),
              measurement(red(20_000, 20, 0.001), red(20_000, 25, 0.001))):
        full, bare = judge(m, STRICT), judge(m, STRICT, explain=False)
        assert [c.result for c in full.checks] == [c.result for c in bare.checks]
        assert full.phase is bare.phase
        assert all(c.lower is None and c.detect_seconds is None for c in bare.checks)


def test_fractional_counts_from_extrapolation_are_judged_as_they_are() -> None:
    m = Measurement(target=TARGET, red=Pair[RedSample](canary=RedSample(requests=99.6, errors=100.4)))
    v = judge(m, STRICT)
    assert v.phase is Phase.FAIL
    assert "(100/100)" in check(v, "availability").reason
