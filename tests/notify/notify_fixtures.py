"""Events for the notifier tests, built from real judge verdicts."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from canary.config.slo import NotifyEvent, default_slo
from canary.judge import judge
from canary.judge.model import Verdict
from canary.notify.events import CanaryEvent
from canary.notify.settings import DeliveryPolicy
from canary.samples import LatencyHistogram, Measurement, Pair, RedSample, Target, Workload
from canary.vocabulary import Mode

AT = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
TRACEQL = (
    '{ resource.service.name = "checkout" && kind = server && status = error && span.http.route = "/pay?x=1&y=2" }'
)


def histogram(requests: float, p99: float) -> LatencyHistogram:
    return LatencyHistogram(buckets=((p99 / 4, requests * 0.5), (p99, requests * 0.99), (math.inf, requests)))


def bad_canary_verdict() -> Verdict:
    """The real judge on a canary failing 5% of 2,000 requests next to a baseline failing 0.1%."""
    target = Target(
        key="shop/checkout",
        service="checkout",
        canary=Workload(namespace="shop", deployment="checkout", replicaset="checkout-7f9c"),
        baseline=(Workload(namespace="shop", deployment="checkout", replicaset="checkout-5d4b"),),
        window=120,
    )
    red = Pair[RedSample](
        canary=RedSample(requests=2000, errors=100, latency=histogram(2000, 0.3)),
        baseline=RedSample(requests=8000, errors=8, latency=histogram(8000, 0.28)),
    )
    return judge(Measurement(target=target, red=red), default_slo("checkout", "shop").spec, look=3)


def event(**changes: Any) -> CanaryEvent:
    """A rolled-back event of shop/checkout with a real failing verdict; `changes` override fields."""
    verdict = changes.pop("verdict", None) or bad_canary_verdict()
    fields: dict[str, Any] = {
        "type": NotifyEvent.ROLLED_BACK,
        "namespace": "shop",
        "deployment": "checkout",
        "revision": "8",
        "baseline_revision": "7",
        "mode": Mode.GUARD,
        "service": "checkout",
        "slo": "shop/checkout",
        "reason": verdict.message,
        "verdict": verdict,
        "images_from": ("registry.example.com/shop/checkout:1.4.2",),
        "images_to": ("registry.example.com/shop/checkout:1.5.0",),
        "checks_passed": 2,
        "checks_failed": 3,
        "window": 120.0,
        "started_at": AT - timedelta(minutes=4, seconds=30),
        "at": AT,
        "example_traces": ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"),
        "traceql": TRACEQL,
    }
    fields.update(changes)
    return CanaryEvent(**fields)


FAST = DeliveryPolicy(min_interval=0, timeout=5, backoff_base=0.02, backoff_cap=0.1, max_attempts=20, max_age=60)
WAIT = 10.0


class Recorder:
    """Collects the notifier's callbacks and lets a test wait for them."""

    def __init__(self) -> None:
        self.failures: list[tuple[CanaryEvent, str]] = []
        self.delivered: list[tuple[CanaryEvent, str]] = []
        self._changed = threading.Condition()

    def on_failure(self, e: CanaryEvent, reason: str) -> None:
        with self._changed:
            self.failures.append((e, reason))
            self._changed.notify_all()

    def on_delivered(self, e: CanaryEvent, sink: str) -> None:
        with self._changed:
            self.delivered.append((e, sink))
            self._changed.notify_all()

    def wait(self, failures: int = 0, delivered: int = 0) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: len(self.failures) >= failures and len(self.delivered) >= delivered, WAIT
            )
