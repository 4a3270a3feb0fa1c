"""Properties that hold for every measurement (hypothesis)."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from judge_samples import MIMIR_DOWN, measurement, red, slo

from canary.config.slo import ServiceSLOSpec
from canary.judge import judge
from canary.judge.model import Phase, Verdict
from canary.samples import Measurement, RedSample

looks = st.integers(min_value=1, max_value=60)
counts = st.floats(min_value=0, max_value=50_000, allow_nan=False)
fractions = st.floats(min_value=0.0, max_value=1.0)
slos = st.builds(
    lambda availability, latency, min_requests, failed: slo(
        objectives={"availability": availability, "latencyP99": latency},
        analysis={"minRequests": min_requests, "failedChecks": failed},
    ),
    availability=st.floats(min_value=50.0, max_value=100.0),
    latency=st.sampled_from(["100ms", "500ms", "2s", None]),
    min_requests=st.integers(min_value=1, max_value=500),
    failed=st.integers(min_value=1, max_value=5),
)


@st.composite
def samples(draw: st.DrawFn, max_requests: float = 50_000) -> RedSample:
    requests = draw(st.floats(min_value=0, max_value=max_requests, allow_nan=False))
    return red(
        requests,
        requests * draw(fractions),
        draw(fractions),
        fast=draw(st.sampled_from([0.01, 0.1, 0.3])),
        slow=draw(st.sampled_from([0.4, 1.0, 3.0])),
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data(), spec=slos, look=looks)
def test_never_fails_a_canary_with_fewer_requests_than_min_requests(
    data: st.DataObject, spec: ServiceSLOSpec, look: int
) -> None:
    canary = data.draw(samples(max_requests=spec.analysis.min_requests - 0.51))
    baseline = data.draw(st.none() | samples())

    verdict = judge(measurement(canary, baseline), spec, look=look)

    assert verdict.phase is Phase.INCONCLUSIVE
    assert not verdict.failed


@settings(max_examples=60, deadline=None)
@given(canary=samples(), baseline=st.none() | samples(), spec=slos, look=looks)
def test_never_fails_while_a_backend_is_in_error(
    canary: RedSample, baseline: RedSample | None, spec: ServiceSLOSpec, look: int
) -> None:
    verdict = judge(measurement(canary, baseline, errors=(MIMIR_DOWN,)), spec, look=look)

    assert verdict.phase is Phase.ERROR
    assert "mimir connection error" in verdict.message


@settings(max_examples=60, deadline=None)
@given(
    canary=samples(),
    baseline=st.none() | samples(),
    spec=slos,
    look=looks,
    extra=st.floats(min_value=0, max_value=1),
)
def test_more_canary_errors_never_turn_a_fail_into_a_pass(
    canary: RedSample, baseline: RedSample | None, spec: ServiceSLOSpec, look: int, extra: float
) -> None:
    worse = canary.model_copy(update={"errors": canary.errors + extra * (canary.requests - canary.errors)})
    before = judge(measurement(canary, baseline), spec, look=look)
    after = judge(measurement(worse, baseline), spec, look=look)

    if before.phase is Phase.FAIL:
        assert after.phase is Phase.FAIL
    if before.phase is not Phase.PASS:
        assert after.phase is not Phase.PASS


@settings(max_examples=60, deadline=None)
@given(twin=samples(), spec=slos, look=looks)
def test_a_canary_identical_to_its_baseline_and_within_objectives_never_fails(
    twin: RedSample, spec: ServiceSLOSpec, look: int
) -> None:
    objectives = spec.objectives
    assume(twin.error_rate is None or twin.error_rate <= 1 - objectives.availability / 100)
    assume(objectives.latency_p99 is None or (twin.p99 or 0.0) <= objectives.latency_p99)

    verdict = judge(measurement(twin, twin), spec, look=look)

    assert verdict.phase is not Phase.FAIL
    assert not verdict.failed


@settings(max_examples=60, deadline=None)
@given(canary=st.none() | samples(), baseline=st.none() | samples(), spec=slos, look=looks, down=st.booleans())
def test_every_verdict_survives_a_json_round_trip(
    canary: RedSample | None, baseline: RedSample | None, spec: ServiceSLOSpec, look: int, down: bool
) -> None:
    m: Measurement = measurement(canary, baseline, errors=(MIMIR_DOWN,) if down else ())
    verdict = judge(m, spec, look=look)

    assert Verdict.model_validate_json(verdict.model_dump_json()) == verdict
    assert "\n" not in verdict.message
    assert all(c.reason for c in verdict.checks)


@settings(max_examples=40, deadline=None)
@given(requests=counts, spec=slos)
def test_no_request_data_for_the_canary_is_inconclusive_no_data(requests: float, spec: ServiceSLOSpec) -> None:
    verdict = judge(measurement(None, red(requests)), spec)

    assert verdict.phase is Phase.INCONCLUSIVE
    assert verdict.message.startswith("sample-size: no data")
