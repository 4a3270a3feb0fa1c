"""Delivery: a queue per webhook, paced, retried, deduplicated through a ledger. `publish` never blocks.

    publish() ─> intake queue ─> dispatcher thread ─> one worker thread per webhook URL ─> HTTP POST
                                 (ledger check, Secret          (1 message / min_interval, 429 ->
                                  lookup, rendering)              Retry-After, 5xx -> backoff)

A message is marked delivered in the ledger only after a 2xx. A message still queued when the
process stops is sent by the next process: the controller keeps it in the status outbox.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import queue
import random
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from canary.config.slo import ServiceSLO
from canary.notify.destinations import Destination, SecretLocation, destinations_for
from canary.notify.events import CanaryEvent, DeliveryKey
from canary.notify.ledger import DeliveryLedger
from canary.notify.render import render_payload
from canary.notify.secrets import SecretError, SecretResolver, mask_url
from canary.notify.settings import DeliveryPolicy, RenderSettings
from canary.notify.transport import Answer, Result, post_json

log = logging.getLogger(__name__)

OnFailure = Callable[[CanaryEvent, str], None]
"""`(event, reason)`: the message will not be delivered. The reason names the sink, never its URL."""
OnDelivered = Callable[[CanaryEvent, str], None]
"""`(event, sink)`: the sink answered 2xx."""

_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def notifications_counter(registry: CollectorRegistry = REGISTRY) -> Counter:
    """`canary_notifications_total{sink,result}`, registered once per registry."""
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(registry)
        if counter is None:
            counter = Counter(
                "canary_notifications_total",
                "Notification delivery attempts and outcomes, by sink and result "
                "(delivered, rate_limited, retried, failed, gave_up, duplicate).",
                ["sink", "result"],
                registry=registry,
            )
            _COUNTERS[registry] = counter
        return counter


@dataclass
class _Job:
    event: CanaryEvent
    destination: Destination
    key: DeliveryKey
    queued: float
    payload: dict[str, Any] = field(default_factory=dict)
    failures: int = 0


_STOP = None
MAX_WORKERS = 16
"""Webhook sender threads at most; messages for further URLs wait for one to be free."""
WORKER_IDLE = 5.0
"""Seconds a sender thread stays without work before it ends."""


class Notifier:
    """Sends CanaryEvents to Slack and generic webhooks without ever making the caller wait."""

    def __init__(
        self,
        ledger: DeliveryLedger,
        *,
        render: RenderSettings | None = None,
        policy: DeliveryPolicy | None = None,
        secrets: SecretResolver | None = None,
        on_permanent_failure: OnFailure | None = None,
        on_delivered: OnDelivered | None = None,
        registry: CollectorRegistry = REGISTRY,
        slack_api_url: str = "https://slack.com/api",
        max_workers: int = MAX_WORKERS,
        worker_idle: float = WORKER_IDLE,
    ) -> None:
        self.ledger = ledger
        self.render = render or RenderSettings()
        self.policy = policy or DeliveryPolicy()
        self.secrets = secrets
        self.on_permanent_failure = on_permanent_failure
        self.on_delivered = on_delivered
        self.slack_api_url = slack_api_url.rstrip("/")
        """Slack's Web API, for bot-token destinations (`chat.postMessage`)."""
        self.metric = notifications_counter(registry)
        self._random = random.Random()
        self._stop = threading.Event()
        self._intake: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._delayed: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        self._lock = threading.Condition()
        self._inflight: set[DeliveryKey] = set()
        self._unfinished = 0
        self._workers: dict[str, _Worker] = {}
        self.max_workers = max_workers
        """Sender threads at most (one per webhook URL in use; each leaves after `worker_idle` idle seconds)."""
        self.worker_idle = worker_idle
        self._worker_numbers = itertools.count()
        self._waiting: collections.deque[tuple[str, str, str | None, _Job]] = collections.deque()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="notify-dispatcher", daemon=True)

    # -- public API --------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering."""
        self._dispatcher.start()

    def publish(self, event: CanaryEvent, destinations: Sequence[Destination]) -> None:
        """Queue `event` for each destination and return at once. Delivered keys are skipped later."""
        if self._stop.is_set():
            log.warning("notifier: closed, %s not queued (it is sent after the restart if pending)", event.key)
            return
        now = time.monotonic()
        for destination in destinations:
            with self._lock:
                self._unfinished += 1
            self._intake.put(_Job(event, destination, event.delivery_key(destination.sink), now))

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued message is delivered, skipped or failed; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop all threads. Undelivered messages stay pending in the ledger for the next start."""
        self._stop.set()
        self._intake.put(_STOP)
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in [self._dispatcher, *(w.thread for w in workers)]:
            if thread.is_alive():
                thread.join(max(deadline - time.monotonic(), 0))

    def __enter__(self) -> Notifier:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatcher: ledger, Secret, rendering -----------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            wait = 0.5
            if self._delayed:
                wait = min(wait, max(self._delayed[0][0] - time.monotonic(), 0))
            try:
                job = self._intake.get(timeout=wait)
            except queue.Empty:
                job = None
            if job is not None:
                self._dispatch(job)
            while self._delayed and self._delayed[0][0] <= time.monotonic() and not self._stop.is_set():
                self._dispatch(heapq.heappop(self._delayed)[2])

    def _dispatch(self, job: _Job) -> None:
        sink = job.destination.sink
        with self._lock:
            if job.key in self._inflight:
                self._finish(job, "duplicate")
                return
        try:
            delivered = self.ledger.is_delivered(job.key)
        except Exception as exc:
            log.warning("notifier: ledger unavailable for %s (%s), retrying", job.key, type(exc).__name__)
            self._later(job, f"ledger unavailable: {type(exc).__name__}")
            return
        if delivered:
            self._finish(job, "duplicate")
            return
        try:
            url = self._url(job.destination)
        except SecretError as exc:
            if exc.transient:
                self._later(job, str(exc))
            else:
                self._fail(job, f"{job.destination.label}: {exc}")
            return
        try:
            job.payload = render_payload(job.event, job.destination, self.render)
        except Exception as exc:
            log.exception("notifier: cannot render %s for %s", job.key, sink)
            self._fail(job, f"{job.destination.label}: cannot render the message: {type(exc).__name__}")
            return
        token = None
        if job.destination.bot:
            url, token = f"{self.slack_api_url}/chat.postMessage", url
        key = url if token is None else f"{url} {token}"
        with self._lock:
            if not self._assign(key, url, token, job):
                self._waiting.append((key, url, token, job))  # every sender is busy with another webhook

    def _assign(self, key: str, url: str, token: str | None, job: _Job) -> bool:
        """Hand `job` to the sender of `key`, starting one if fewer than max_workers run (lock held)."""
        worker = self._workers.get(key)
        if worker is None and len(self._workers) >= self.max_workers:
            return False
        self._inflight.add(job.key)
        if worker is None:
            worker = self._workers[key] = _Worker(self, key, url, next(self._worker_numbers), token)
        worker.queue.put(job)  # under the lock: an idle worker leaves only with an empty queue
        return True

    def _assign_waiting(self) -> None:
        """A sender left: hand waiting messages out, in order, while senders are free (lock held)."""
        still: collections.deque[tuple[str, str, str | None, _Job]] = collections.deque()
        while self._waiting:
            key, url, token, job = self._waiting.popleft()
            if not self._assign(key, url, token, job):
                still.append((key, url, token, job))
        self._waiting = still

    def _url(self, destination: Destination) -> str:
        if destination.url is not None:
            return destination.url.get_secret_value()
        assert destination.secret is not None
        if self.secrets is None:
            raise SecretError(f"{destination.secret}: no Kubernetes API configured to read it", transient=False)
        if destination.bot:
            return self.secrets.token(destination.secret).get_secret_value()
        return self.secrets.url(destination.secret).get_secret_value()

    def _later(self, job: _Job, detail: str) -> None:
        delay = self._backoff_or_give_up(job, detail, "")
        if delay is not None:
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._seq), job))

    # -- shared by dispatcher and workers ----------------------------------------------------

    def _backoff_or_give_up(self, job: _Job, detail: str, where: str) -> float | None:
        """The delay before the next attempt, or None after giving up (callback and metric done)."""
        job.failures += 1
        delay = self.policy.backoff(job.failures, self._random.random())
        age = time.monotonic() - job.queued
        if job.failures >= self.policy.max_attempts or age + delay > self.policy.max_age:
            what = f"gave up after {job.failures} failed attempts over {age:.0f}s, last: {detail}"
            self._fail(job, f"{job.destination.label}{where}: {what}", result="gave_up")
            return None
        log.info(
            "notifier: %s to %s%s failed (%s), retry in %.1fs", job.key, job.destination.label, where, detail, delay
        )
        return delay

    def _fail(self, job: _Job, reason: str, result: str = "failed") -> None:
        log.warning("notifier: %s not delivered: %s", job.key, reason)
        self._finish(job, result)
        if self.on_permanent_failure is not None:
            try:
                self.on_permanent_failure(job.event, reason)
            except Exception:
                log.exception("notifier: on_permanent_failure callback failed for %s", job.key)

    def _delivered(self, job: _Job) -> None:
        try:
            self.ledger.mark_delivered(job.key)
        except Exception:
            log.exception("notifier: %s delivered but not recorded; it may be sent again after a restart", job.key)
        self._finish(job, "delivered")
        if self.on_delivered is not None:
            try:
                self.on_delivered(job.event, job.destination.sink)
            except Exception:
                log.exception("notifier: on_delivered callback failed for %s", job.key)

    def _finish(self, job: _Job, result: str) -> None:
        self.metric.labels(sink=job.destination.sink, result=result).inc()
        with self._lock:
            if result != "duplicate":
                self._inflight.discard(job.key)
            self._unfinished -= 1
            self._lock.notify_all()


class _Worker:
    """One thread per webhook URL in use (at most MAX_WORKERS): sends its queue in order, at most one request
    per min_interval, and ends after `worker_idle` seconds without work."""

    def __init__(self, notifier: Notifier, key: str, url: str, number: int, token: str | None = None) -> None:
        self.notifier = notifier
        self.key = key
        """Where this sender is filed in the notifier (the URL, with the bot token for chat.postMessage)."""
        self.url = url
        self.token = token
        self.masked = mask_url(url)
        self.queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.last_request = float("-inf")
        # The thread name shows up in logs: never the URL.
        self.thread = threading.Thread(target=self._loop, name=f"notify-webhook-{number}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        n = self.notifier
        idle_since = time.monotonic()
        while not n._stop.is_set():
            try:
                job = self.queue.get(timeout=min(0.5, n.worker_idle))
            except queue.Empty:
                if time.monotonic() - idle_since >= n.worker_idle and self._retire():
                    return
                continue
            if job is None:
                return
            idle_since = time.monotonic()
            try:
                self._send(job)
            except Exception as exc:  # a bug must not silently stop this webhook's queue
                log.exception("notifier: sending %s failed unexpectedly", job.key)
                n._fail(job, f"{job.destination.label} {self.masked}: internal error {type(exc).__name__}")
            if n._waiting and self._retire():  # others wait for a sender: make room at once
                return

    def _retire(self) -> bool:
        """Leave when idle and nothing was queued meanwhile, so threads do not pile up per URL ever used."""
        n = self.notifier
        with n._lock:
            if not self.queue.empty() or n._workers.get(self.key) is not self:
                return False
            del n._workers[self.key]
            n._assign_waiting()
            return True

    def _answer(self, job: _Job) -> Answer:
        policy = self.notifier.policy
        answer = post_json(self.url, job.payload, policy.timeout, self.token)
        self.last_request = time.monotonic()
        return Answer(answer.result, answer.detail.replace(self.url, self.masked), answer.retry_after)

    def _send(self, job: _Job) -> None:
        n = self.notifier
        sink = job.destination.sink
        where = f" {self.masked}"
        while True:
            pause = self.last_request + n.policy.min_interval - time.monotonic()
            if (pause > 0 and n._stop.wait(pause)) or n._stop.is_set():
                return
            answer = self._answer(job)
            if answer.result is Result.DELIVERED:
                n._delivered(job)
                return
            if answer.result is Result.PERMANENT:
                n._fail(job, f"{job.destination.label}{where}: {answer.detail}")
                return
            if answer.result is Result.RATE_LIMITED:
                n.metric.labels(sink=sink, result="rate_limited").inc()
                delay = answer.retry_after if answer.retry_after is not None else n.policy.backoff(1, 1.0)
                age = time.monotonic() - job.queued
                if age + delay > n.policy.max_age:
                    n._fail(
                        job,
                        f"{job.destination.label}{where}: rate limited past the max age, last: {answer.detail}",
                        result="gave_up",
                    )
                    return
                log.info("notifier: %s%s rate limited, retry in %.1fs", job.destination.label, where, delay)
            else:
                backoff = n._backoff_or_give_up(job, answer.detail, where)
                if backoff is None:
                    return
                n.metric.labels(sink=sink, result="retried").inc()
                delay = backoff
            if n._stop.wait(delay):
                return


class SLONotifications:
    """The controller's notification sink: `publish(event, slo)` sends to the sinks `slo` names."""

    def __init__(self, notifier: Notifier, default_slack_secret: SecretLocation | None = None) -> None:
        self.notifier = notifier
        self.default_slack_secret = default_slack_secret

    def destinations(self, event: CanaryEvent, slo: ServiceSLO) -> list[Destination]:
        return destinations_for(event, slo, self.default_slack_secret)

    def publish(self, event: CanaryEvent, slo: ServiceSLO) -> None:
        """Queue `event` and return at once (see `Notifier.publish`)."""
        self.notifier.publish(event, self.destinations(event, slo))
