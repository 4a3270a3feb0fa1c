"""A realistic rolled-back event for `canary notify test`: what a real bad canary's message looks like."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from canary.config.slo import NotifyEvent, ServiceSLO
from canary.judge import judge
from canary.judge.model import Phase, Verdict
from canary.notify.events import CanaryEvent
from canary.samples import LatencyHistogram, Measurement, Pair, RedSample, Target, Workload
from canary.vocabulary import Mode


def _histogram(requests: float, p50: float, p99: float) -> LatencyHistogram:
    buckets = ((p50, requests * 0.5), (p99, requests * 0.99), (p99 * 2, requests * 0.999), (math.inf, requests))
    return LatencyHistogram(buckets=buckets)


def sample_measurement(slo: ServiceSLO) -> Measurement:
    """A canary serving 3% errors next to a healthy baseline, over `slo`'s window."""
    namespace = slo.metadata.namespace or "default"
    service = slo.spec.service
    target = Target(
        key=f"{namespace}/{service}",
        service=service,
        canary=Workload(namespace=namespace, deployment=service, replicaset=f"{service}-6d5f7b9c48"),
        baseline=(Workload(namespace=namespace, deployment=service, replicaset=f"{service}-5c8d9f6b7a"),),
        window=slo.spec.analysis.window,
    )
    red = Pair[RedSample](
        canary=RedSample(requests=1840, errors=58, latency=_histogram(1840, 0.08, 0.41)),
        baseline=RedSample(requests=9120, errors=8, latency=_histogram(9120, 0.07, 0.39)),
    )
    return Measurement(target=target, red=red)


def sample_verdict(slo: ServiceSLO) -> Verdict:
    """What the judge says about `sample_measurement` under `slo`: availability and error ratio fail."""
    return judge(sample_measurement(slo), slo.spec, look=3)


def sample_event(slo: ServiceSLO, at: datetime | None = None) -> CanaryEvent:
    """A rolled-back event for `slo`'s service, marked as a test in its reason."""
    at = at or datetime.now(UTC)
    namespace = slo.metadata.namespace or "default"
    verdict = sample_verdict(slo)
    service = slo.spec.service
    return CanaryEvent(
        type=NotifyEvent.ROLLED_BACK,
        namespace=namespace,
        deployment=service,
        revision="8",
        baseline_revision="7",
        mode=Mode.GUARD,
        service=service,
        slo=f"{namespace}/{slo.metadata.name}",
        reason=f"TEST MESSAGE from `canary notify test`: {verdict.message}",
        verdict=verdict,
        images_from=(f"registry.example.com/{service}:1.4.2",),
        images_to=(f"registry.example.com/{service}:1.5.0",),
        checks_passed=sum(c.result is Phase.PASS for c in verdict.checks),
        checks_failed=slo.spec.analysis.failed_checks,
        window=slo.spec.analysis.window,
        started_at=at - timedelta(minutes=4, seconds=30),
        at=at,
        example_traces=("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"),
        traceql=f'{{ resource.service.name = "{service}" && kind = server && status = error }}',
    )
