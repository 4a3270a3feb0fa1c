"""Each check and the verdict's precedence, on hand-made measurements."""

from __future__ import annotations

import pytest
from judge_samples import MIMIR_DOWN, TARGET, measurement, red, slo

from canary.judge import judge
from canary.judge.model import CheckResult, Phase, Verdict
from canary.samples import Backend, BackendError, BackendErrorKind, Measurement, Pair, RedSample, TraceSample

STRICT = slo(objectives={"availability": 99.5, "latencyP99": "500ms"})


def check(verdict: Verdict, name: str) -> CheckResult:
    found = [c for c in verdict.checks if c.name == name]
    assert len(found) == 1, f"expected one {name!r} check in {[c.name for c in verdict.checks]}"
    return found[0]


def test_bad_canary_is_failed_with_a_reason_that_reads_well_in_slack() -> None:
    v = judge(measurement(red(200, 40), red(5000, 50)), STRICT, look=3)

    assert v.phase is Phase.FAIL
    availability = check(v, "availability")
    assert availability.result is Phase.FAIL
    assert availability.reason.startswith("canary error rate 20.0% (40/200) exceeds 0.5% objective (p=")
    assert "at look 3)" in availability.reason
    assert (availability.canary, availability.threshold, availability.unit) == (0.2, pytest.approx(0.005), "ratio")
    assert availability.samples == 200 and availability.window == 120.0
    assert availability.p_value is not None and availability.alpha is not None
    assert availability.p_value < availability.alpha
    assert v.message.startswith("availability: canary error rate 20.0% (40/200)")
    assert (
        "error-rate-ratio: canary error rate 20.0% (40/200) exceeds 2x baseline 1.0% (baseline 50/5000; p=" in v.message
    )
    assert "\n" not in v.message


def test_healthy_canary_passes_every_check() -> None:
    v = judge(measurement(red(600, 1, 0.002), red(6000, 12, 0.002)), STRICT, look=5)

    assert v.phase is Phase.PASS
    assert [c.name for c in v.checks] == [
        "sample-size",
        "availability",
        "latency-p99",
        "error-rate-ratio",
        "latency-ratio",
    ]
    assert all(c.result is Phase.PASS for c in v.checks)
    assert v.message == "all 5 checks passed on the canary's last 2m"


def test_too_few_requests_is_inconclusive_even_when_every_request_failed() -> None:
    v = judge(measurement(red(12, 12, 1.0), red(6000, 6)), STRICT, look=10)

    assert v.phase is Phase.INCONCLUSIVE
    size = check(v, "sample-size")
    assert size.result is Phase.INCONCLUSIVE
    assert size.reason == "canary served only 12 requests in the last 2m, fewer than minRequests 50"
    assert (size.canary, size.threshold, size.unit) == (12, 50, "requests")
    assert not v.failed
    assert "not judged: only 12 samples, fewer than minRequests 50" in check(v, "availability").reason


def test_missing_canary_metrics_is_inconclusive_no_data() -> None:
    v = judge(measurement(None, red(6000, 6)), STRICT)

    assert v.phase is Phase.INCONCLUSIVE
    assert v.message == (
        "sample-size: no data: no request metrics for canary shop/checkout (replicaset checkout-7d9f) in the last 2m"
    )


def test_one_unlucky_error_on_a_quiet_canary_is_not_a_failure() -> None:
    """1 error in 60 requests is 1.7% observed against a 0.5% objective: noise, not evidence."""
    v = judge(measurement(red(60, 1), red(60, 0)), STRICT, look=4)

    availability = check(v, "availability")
    assert availability.result is Phase.INCONCLUSIVE
    assert "exceeds 0.5% objective but not significantly (p=" in availability.reason
    assert check(v, "error-rate-ratio").result is Phase.INCONCLUSIVE
    assert v.phase is Phase.INCONCLUSIVE


def test_the_same_evidence_weighs_less_at_later_looks() -> None:
    """Sequential analysis: later looks spend less alpha, so a borderline breach fails early, not late."""
    borderline = measurement(red(1000, 15), red(10000, 20))
    relaxed = slo(objectives={"availability": 99.5, "latencyP99": "500ms"}, comparison={"maxErrorRateRatio": 100})

    early, late = judge(borderline, relaxed, look=1), judge(borderline, relaxed, look=40)

    assert check(early, "availability").result is Phase.FAIL
    assert check(late, "availability").result is Phase.INCONCLUSIVE
    assert check(late, "availability").alpha < check(early, "availability").alpha  # type: ignore[operator]


def test_latency_p99_fails_on_a_slow_canary() -> None:
    v = judge(measurement(red(600, 0, 0.2, slow=2.0), red(6000, 0, 0.0)), STRICT, look=3)

    latency = check(v, "latency-p99")
    assert latency.result is Phase.FAIL
    assert latency.canary == pytest.approx(1.0 + 1.5 * (594 - 480) / 120)  # interpolated in the (1s, 2.5s] bucket
    assert latency.reason.startswith(
        "canary p99 2.42s exceeds 500ms objective (120/600 requests slower, 20.0% > 1%; p="
    )
    assert latency.unit == "s" and latency.threshold == 0.5


def test_latency_p99_within_objective_passes() -> None:
    v = judge(measurement(red(600, 0, 0.005, slow=0.3), red(6000)), STRICT)

    latency = check(v, "latency-p99")
    assert latency.result is Phase.PASS
    assert latency.reason.startswith("canary p99 ") and "within 500ms objective" in latency.reason


def test_latency_check_is_absent_when_the_objective_is_disabled() -> None:
    v = judge(measurement(red(600, 0, 0.5), red(6000)), slo(objectives={"latencyP99": None}))

    assert "latency-p99" not in [c.name for c in v.checks]


def test_error_rate_ratio_fails_a_canary_much_worse_than_its_baseline_even_within_the_objective() -> None:
    lax = slo(objectives={"availability": 50})
    v = judge(measurement(red(2000, 100), red(20000, 40)), lax, look=4)

    ratio = check(v, "error-rate-ratio")
    assert check(v, "availability").result is Phase.PASS
    assert ratio.result is Phase.FAIL
    assert ratio.canary == pytest.approx(0.05) and ratio.baseline == pytest.approx(0.002)
    assert ratio.threshold == pytest.approx(0.004)
    assert ratio.reason.startswith("canary error rate 5.0% (100/2000) exceeds 2x baseline 0.2% (baseline 40/20000; p=")


def test_error_rate_ratio_does_not_fail_on_noise_against_a_small_baseline() -> None:
    lax = slo(objectives={"availability": 50})
    v = judge(measurement(red(500, 2), red(100, 0)), lax, look=4)

    assert check(v, "error-rate-ratio").result is Phase.INCONCLUSIVE
    assert not v.failed


def test_no_baseline_skips_the_comparisons_without_blocking_a_pass() -> None:
    v = judge(measurement(red(600, 0), None), STRICT)

    assert v.phase is Phase.PASS
    for name in ("error-rate-ratio", "latency-ratio"):
        c = check(v, name)
        assert c.skipped and c.result is Phase.INCONCLUSIVE
        assert "comparison skipped" in c.reason
    assert v.message.startswith("all 3 checks passed on the canary's last 2m (skipped: error-rate-ratio: no baseline")


def test_latency_ratio_fails_a_canary_twice_as_slow_as_its_baseline() -> None:
    canary = red(3000, 0, 0.05, fast=0.05, slow=0.4)
    baseline = red(3000, 0, 0.05, fast=0.05, slow=0.2)
    v = judge(measurement(canary, baseline), slo(objectives={"latencyP99": "1s"}), look=4)

    ratio = check(v, "latency-ratio")
    assert check(v, "latency-p99").result is Phase.PASS
    assert ratio.result is Phase.FAIL
    assert ratio.canary > 1.5 * ratio.baseline  # type: ignore[operator]
    assert "exceeds 1.5x baseline p99" in ratio.reason and "canary vs 0/3000 baseline requests slower" in ratio.reason


def test_latency_ratio_guard_ignores_a_lucky_fast_baseline_on_few_requests() -> None:
    """A baseline p99 from 40 requests is noise: a canary as slow as the service usually is must not fail."""
    canary = red(3000, 0, 0.01, fast=0.05, slow=0.2)
    baseline = red(40, 0, 0.0, fast=0.05)
    v = judge(measurement(canary, baseline), slo(objectives={"latencyP99": "1s"}), look=4)

    assert check(v, "latency-ratio").result is not Phase.FAIL


def test_trace_error_rate_is_checked_when_set_and_present() -> None:
    traces = Pair[TraceSample](
        canary=TraceSample(spans=400, error_spans=60), baseline=TraceSample(spans=4000, error_spans=0)
    )
    m = Measurement(target=TARGET, red=Pair[RedSample](canary=red(600), baseline=red(6000)), traces=traces)

    v = judge(m, slo(objectives={"traceErrorRate": "2%"}), look=3)

    trace = check(v, "trace-error-rate")
    assert trace.result is Phase.FAIL
    assert trace.reason.startswith("canary trace error rate 15.0% (60/400 spans) exceeds 2.0% objective (p=")
    assert (trace.samples, trace.baseline) == (400, 0.0)
    assert judge(m, slo()).checks[-1].name == "latency-ratio", "no trace check without a trace objective"
    no_traces = m.model_copy(update={"traces": None})
    assert "trace-error-rate" not in [c.name for c in judge(no_traces, slo(objectives={"traceErrorRate": 2})).checks]


def test_backend_error_is_error_never_fail_and_names_backend_query_and_reason() -> None:
    tempo_down = BackendError(
        backend=Backend.TEMPO, query="{ status = error }\n| rate()", kind=BackendErrorKind.TIMEOUT, reason="10s"
    )
    v = judge(measurement(red(200, 40), red(5000, 50), errors=(MIMIR_DOWN, tempo_down)), STRICT, look=3)

    assert v.phase is Phase.ERROR
    assert v.message.startswith("backend error, not judged: mimir connection error: connection refused by 127.0.0.1")
    assert "(query: sum by (k8s_replicaset_name)" in v.message
    assert "tempo timeout error: 10s (query: { status = error } | rate())" in v.message


def test_fail_takes_precedence_over_inconclusive() -> None:
    """Latency is inconclusive (no histogram) while availability fails: the verdict is fail."""
    canary = RedSample(requests=400, errors=200)
    v = judge(measurement(canary, red(4000, 4)), STRICT, look=2)

    assert check(v, "latency-p99").result is Phase.INCONCLUSIVE
    assert v.phase is Phase.FAIL
    assert [c.name for c in v.failed] == ["availability", "error-rate-ratio"]
    assert "latency" not in v.message


@pytest.mark.parametrize("look", [0, -3])
def test_look_must_be_one_based(look: int) -> None:
    with pytest.raises(ValueError, match=f"look is the 1-based index of the check, got {look}"):
        judge(measurement(red(100)), STRICT, look=look)


def test_an_infinite_count_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValueError, match="canary requests must be a finite number >= 0, got inf"):
        judge(measurement(RedSample(requests=float("inf"), errors=1)), STRICT)


def test_extrapolated_counts_are_rounded_and_errors_capped_at_requests() -> None:
    v = judge(measurement(RedSample(requests=99.6, errors=100.4)), STRICT, look=1)

    availability = check(v, "availability")
    assert availability.canary == 1.0
    assert "(100/100)" in availability.reason
