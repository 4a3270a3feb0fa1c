"""Builders for judge inputs: a Measurement from plain numbers, histograms from latency shapes."""

from __future__ import annotations

import math

from canary.config.slo import ServiceSLOSpec
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

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf)
"""OBI's (OpenTelemetry semantic conventions') default http.server.request.duration buckets."""

TARGET = Target(
    key="shop/checkout",
    service="checkout",
    canary=Workload(namespace="shop", deployment="checkout", replicaset="checkout-7d9f"),
    baseline=(Workload(namespace="shop", deployment="checkout", replicaset="checkout-5c4b"),),
    window=120.0,
)


def slo(**spec: object) -> ServiceSLOSpec:
    return ServiceSLOSpec.model_validate({"service": "checkout", **spec})


def histogram(requests: float, slow_fraction: float, fast: float = 0.1, slow: float = 2.0) -> LatencyHistogram:
    """`requests` with `slow_fraction` of them taking `slow` seconds and the rest `fast` seconds."""
    n_slow = requests * slow_fraction
    buckets = []
    for le in BOUNDS:
        below = (requests - n_slow if fast <= le else 0.0) + (n_slow if slow <= le else 0.0)
        buckets.append((le, below))
    return LatencyHistogram(buckets=tuple(buckets))


def red(requests: float, errors: float = 0.0, slow_fraction: float = 0.0, **shape: float) -> RedSample:
    return RedSample(requests=requests, errors=errors, latency=histogram(requests, slow_fraction, **shape))


def measurement(
    canary: RedSample | None,
    baseline: RedSample | None = None,
    *,
    traces: Pair[TraceSample] | None = None,
    errors: tuple[BackendError, ...] = (),
) -> Measurement:
    pair = None if canary is None and baseline is None else Pair[RedSample](canary=canary, baseline=baseline)
    return Measurement(target=TARGET, red=pair, traces=traces, errors=errors)


MIMIR_DOWN = BackendError(
    backend=Backend.MIMIR,
    query='sum by (k8s_replicaset_name) (increase(http_server_request_duration_seconds_count{service_name="checkout"}'
    "[2m]))",
    kind=BackendErrorKind.CONNECTION,
    reason="connection refused by 127.0.0.1:9009",
)
