"""Enrich rollback notifications with root-cause evidence, after the rollback and off the reconcile path.

`EnrichingNotifications` wraps the controller's notification sink. The reconciler writes the rollback
first, then publishes; a rolled-back event that names its measured target is handed to a background
thread, which collects evidence (with its own timeout), then publishes the event with the evidence
and calls `on_evidence` (the controller stores it in the status annotation and records a short
Kubernetes Event). The reconciler never waits: `publish` returns at once. When collection fails or
is late, the message goes out with a note saying so; nothing is ever held back for evidence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Protocol

from canary.config.slo import NotifyEvent, ServiceSLO
from canary.evidence.collect import EvidenceCollector, collect_quietly, latency_breached
from canary.evidence.model import Evidence
from canary.notify.events import CanaryEvent

log = logging.getLogger(__name__)

OnEvidence = Callable[[CanaryEvent], None]
"""Called with the enriched event after it was published (store it, record an Event). Must not block long."""


class NotificationSink(Protocol):
    def destinations(self, event: CanaryEvent, slo: ServiceSLO) -> Sequence[object]: ...

    def publish(self, event: CanaryEvent, slo: ServiceSLO) -> None: ...


def late_evidence(event: CanaryEvent, timeout: float) -> Evidence:
    """What a message says when the evidence was not ready in time."""
    window = event.target.window if event.target else (event.window or 600)
    return Evidence(
        start=event.at - timedelta(seconds=window),
        end=event.at,
        notes=(f"evidence not collected within {timeout:g}s: the message was sent without it",),
    )


class EnrichingNotifications:
    """A NotificationSink that adds evidence to rolled-back events before passing them on."""

    def __init__(
        self,
        inner: NotificationSink,
        collector: EvidenceCollector,
        *,
        timeout_seconds: float = 30.0,
        on_evidence: OnEvidence | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.inner = inner
        self.collector = collector
        self.timeout_seconds = timeout_seconds
        self.on_evidence = on_evidence
        self.clock = clock
        self._lock = threading.Lock()
        self._running: set[threading.Thread] = set()

    def destinations(self, event: CanaryEvent, slo: ServiceSLO) -> Sequence[object]:
        return self.inner.destinations(event, slo)

    def publish(self, event: CanaryEvent, slo: ServiceSLO) -> None:
        """Return at once; rolled-back events with a measured target are enriched first, in the background."""
        if event.type is not NotifyEvent.ROLLED_BACK or event.target is None or event.evidence is not None:
            self.inner.publish(event, slo)
            return
        thread = threading.Thread(target=self._enrich, args=(event, slo), name="evidence", daemon=True)
        with self._lock:
            self._running.add(thread)
        thread.start()

    def enrich_only(self, event: CanaryEvent) -> None:
        """Collect the evidence of a rollback nobody is notified of, for `on_evidence` alone (status, Event)."""
        if event.target is None:
            return
        thread = threading.Thread(target=self._enrich, args=(event, None), name="evidence", daemon=True)
        with self._lock:
            self._running.add(thread)
        thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait for the enrichments under way (tests, shutdown); False when some are still running."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                with self._lock:
                    running = list(self._running)
                if not running:
                    return True
                running[0].join(0.05)
            return False
        finally:
            timer.cancel()

    def _enrich(self, event: CanaryEvent, slo: ServiceSLO | None) -> None:
        """Collect, then publish to `slo`'s sinks (none for `enrich_only`), then `on_evidence`."""
        try:
            evidence = self._collect(event)
            enriched = event.model_copy(update={"evidence": evidence})
            if slo is not None:
                self.inner.publish(enriched, slo)
            if self.on_evidence is not None:
                try:
                    self.on_evidence(enriched)
                except Exception:
                    log.exception("storing the evidence of %s failed", event.key)
        except Exception:  # never lose the message to a bug in enrichment
            log.exception("enrichment of %s failed; sending it without evidence", event.key)
            if slo is not None:
                self.inner.publish(event, slo)
        finally:
            with self._lock:
                self._running.discard(threading.current_thread())

    def _collect(self, event: CanaryEvent) -> Evidence:
        assert event.target is not None
        target = event.target
        result: Future[Evidence] = Future()

        def run() -> None:
            latency = latency_breached(event.verdict)
            result.set_result(collect_quietly(self.collector, target, self.clock(), latency))

        threading.Thread(target=run, name="evidence-collect", daemon=True).start()
        try:
            return result.result(timeout=self.timeout_seconds)
        except TimeoutError:
            log.warning("evidence for %s not ready within %gs; sending without it", event.key, self.timeout_seconds)
            return late_evidence(event, self.timeout_seconds)
