"""A canary's evidence: windows added end to end, nothing counted twice, kept across a restart."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from canary.controller.status import CanaryStatus, read_status
from canary.cumulative import Cumulative, accumulate, add_histograms
from canary.samples import (
    Backend,
    BackendError,
    BackendErrorKind,
    LatencyHistogram,
    Measurement,
    Pair,
    RedSample,
    Target,
    TraceSample,
    Workload,
)
from canary.vocabulary import CanaryPhase, Mode

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET = Target(
    key="shop/checkout", service="checkout", window=120.0,
    canary=Workload(namespace="shop", deployment="checkout", replicaset="checkout-new"),
    baseline=(Workload(namespace="shop", deployment="checkout", replicaset="checkout-old"),),
)
DOWN = BackendError(backend=Backend.MIMIR, query="q", kind=BackendErrorKind.TIMEOUT, reason="slow")


def window(
    requests: float, errors: float, *, spans: float | None = None, failed: tuple[BackendError, ...] = ()
) -> Measurement:
    hist = LatencyHistogram(buckets=((0.1, requests * 0.9), (0.5, requests), (math.inf, requests)))
    red = RedSample(requests=requests, errors=errors, latency=hist)
    traces = Pair[TraceSample](canary=TraceSample(spans=spans, error_spans=1.0)) if spans is not None else None
    return Measurement(target=TARGET, red=Pair[RedSample](canary=red, baseline=red), traces=traces, errors=failed)


def test_windows_are_added_end_to_end_and_checks_in_between_see_the_same_evidence() -> None:
    evidence = accumulate(None, window(100, 1, spans=50), T0)
    assert (evidence.since, evidence.until, evidence.increments) == (T0 - timedelta(minutes=2), T0, 1)

    for seconds in (30, 60, 90):  # the next windows overlap the one already counted: nothing added
        assert accumulate(evidence, window(100, 1), T0 + timedelta(seconds=seconds)) == evidence

    later = accumulate(evidence, window(200, 4, spans=50), T0 + timedelta(seconds=120))
    assert later.red is not None and later.red.canary is not None
    assert (later.red.canary.requests, later.red.canary.errors, later.increments) == (300, 5, 2)
    assert later.red.canary.latency is not None and later.red.canary.latency.buckets[0] == (0.1, 270.0)
    assert later.traces is not None and later.traces.canary == TraceSample(spans=100, error_spans=2)
    assert later.seconds == 240
    assert later.measurement(window(1, 0)).target.window == 240


def test_a_backend_error_adds_nothing_and_a_long_gap_loses_only_the_gap() -> None:
    evidence = accumulate(None, window(100, 1), T0)
    assert accumulate(evidence, window(500, 500, failed=(DOWN,)), T0 + timedelta(minutes=5)) == evidence

    after_outage = accumulate(evidence, window(100, 2), T0 + timedelta(minutes=10))
    assert after_outage.red is not None and after_outage.red.canary is not None
    assert after_outage.red.canary.requests == 200  # the 8 minutes in between are not guessed
    assert after_outage.since == evidence.since and after_outage.until == T0 + timedelta(minutes=10)


def test_a_check_a_little_early_adds_its_window_with_the_overlap_weighted_out() -> None:
    evidence = accumulate(None, window(120, 0), T0)
    early = accumulate(evidence, window(120, 0), T0 + timedelta(seconds=119.5))
    assert early.red is not None and early.red.canary is not None
    assert early.red.canary.requests == 120 + 119.5


def test_histograms_with_different_bounds_add_up_bucket_by_bucket() -> None:
    a = LatencyHistogram(buckets=((0.1, 5.0), (math.inf, 10.0)))
    b = LatencyHistogram(buckets=((0.1, 1.0), (0.5, 2.0), (math.inf, 4.0)))
    total = add_histograms([a, b])
    assert total is not None and total.buckets == ((0.1, 6.0), (0.5, 7.0), (math.inf, 14.0))


def test_the_evidence_survives_the_status_annotation_round_trip() -> None:
    """What a restarted controller reads back: the same counts, +Inf bucket included."""
    evidence = accumulate(None, window(100, 1, spans=20), T0)
    status = CanaryStatus(phase=CanaryPhase.ANALYSING, mode=Mode.GUARD, cumulative=evidence)
    raw = status.to_annotation()
    json.loads(raw)  # valid JSON
    back, problem = read_status({"canary.mop.dev/status": raw})
    assert problem is None and back is not None
    assert back.cumulative == evidence
    assert isinstance(back.cumulative, Cumulative)
