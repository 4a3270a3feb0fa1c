"""The notification outbox and the rollback evidence, kept in each Deployment's status annotation.

A notification is decided in the same write as the transition that causes it (it enters the status
`outbox`); once a sink answers 2xx its key moves to `delivered` and the event leaves the outbox. So one
message goes out per (deployment, revision, event, sink), and one still in the outbox when the
controller stops is sent by the next leader.

The notifier's and the evidence collector's threads never write: they hand a `StatusChange` to the
controller's worker (`submit`), which writes it through the one writer of the status annotation
(canary.controller.executor.StatusWriter).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from canary.controller.annotations import is_enabled
from canary.controller.status import MAX_DELIVERED, CanaryStatus, read_status
from canary.evidence.model import RollbackEvidence
from canary.kube.bodies import DeploymentBody
from canary.kube.wire import JsonObject
from canary.notify.events import CanaryEvent, DeliveryKey
from canary.vocabulary import CanaryPhase

REMEMBERED = 4096
"""Deliveries this process remembers until the cache shows them written."""


@dataclass(frozen=True)
class RecordDelivery:
    """A sink answered 2xx: the key joins `delivered`, its event leaves the outbox."""

    key: DeliveryKey

    @property
    def ref(self) -> tuple[str, str]:
        return self.key.event.namespace, self.key.event.deployment

    def apply(self, status: CanaryStatus | None) -> CanaryStatus | None:
        if status is None or self.key in status.delivered:
            return None
        delivered = [*status.delivered, self.key][-MAX_DELIVERED:]
        outbox = [e for e in status.outbox if e.key != self.key.event]
        return status.model_copy(update={"delivered": delivered, "outbox": outbox})


@dataclass(frozen=True)
class StoreEvidence:
    """A rollback's evidence, kept in the status (and in its pending message) while the Deployment is still
    rolled back from that revision."""

    event: CanaryEvent

    @property
    def ref(self) -> tuple[str, str]:
        return self.event.namespace, self.event.deployment

    def apply(self, status: CanaryStatus | None) -> CanaryStatus | None:
        event, evidence = self.event, self.event.evidence
        if evidence is None or status is None:
            return None
        if status.phase not in (CanaryPhase.ROLLING_BACK, CanaryPhase.ROLLED_BACK):
            return None
        if event.revision not in status.rejected and status.template_hash != event.revision:
            return None
        delivered = {key.event for key in status.delivered}
        outbox = [event if e.key == event.key and e.key not in delivered else e for e in status.outbox]
        record = RollbackEvidence(revision=event.revision, at=event.at, evidence=evidence)
        return status.model_copy(update={"evidence": record, "outbox": outbox})


StatusChange = RecordDelivery | StoreEvidence


class Outbox:
    """The notifier's DeliveryLedger over the status annotations in the informer cache."""

    def __init__(self, cached: Callable[[str, str], JsonObject | None], submit: Callable[[StatusChange], None]) -> None:
        """`cached(namespace, name)` reads a Deployment from the informer cache; `submit` hands a change to
        the worker."""
        self._cached = cached
        self._submit = submit
        self._lock = threading.Lock()
        self._recorded: collections.OrderedDict[DeliveryKey, None] = collections.OrderedDict()

    def is_delivered(self, key: DeliveryKey) -> bool:
        with self._lock:
            if key in self._recorded:
                return True
        deployment = self._cached(key.event.namespace, key.event.deployment)
        if deployment is None:
            return True  # nothing left to tell about a Deployment that is gone
        status, _ = read_status(DeploymentBody(deployment).annotations)
        return status is not None and key in status.delivered

    def mark_delivered(self, key: DeliveryKey) -> None:
        with self._lock:
            self._recorded[key] = None
            while len(self._recorded) > REMEMBERED:
                self._recorded.popitem(last=False)
        self._submit(RecordDelivery(key))

    def store_evidence(self, event: CanaryEvent) -> None:
        self._submit(StoreEvidence(event))


def pending(deployments: Iterable[JsonObject]) -> list[CanaryEvent]:
    """Notifications decided but not delivered (before a restart or failover), from the cached Deployments."""
    events: list[CanaryEvent] = []
    for deployment in deployments:
        annotations = DeploymentBody(deployment).annotations
        status, _ = read_status(annotations)
        if status is not None and is_enabled(annotations):
            events.extend(status.outbox)
    return events
