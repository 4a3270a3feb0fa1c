"""The notifier's delivery ledger, kept in each Deployment's status annotation.

A notification is decided in the same write as the transition that causes it (it enters the status
`outbox`); once a sink answers 2xx its key moves to `delivered` and the event leaves the outbox. So
exactly one message goes out per (deployment, revision, event), across restarts, and one still in
the outbox when the controller stops is sent by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from canary.controller.annotations import is_enabled
from canary.controller.mutations import write_status
from canary.controller.observe import Obj, meta
from canary.controller.reconciler import Deployments
from canary.controller.status import MAX_DELIVERED, read_status
from canary.notify.events import CanaryEvent
from canary.notify.ledger import event_key

log = logging.getLogger(__name__)


def _deployment_of(key: str) -> tuple[str, str]:
    """(namespace, name) from a delivery key `ns/name@revision:event|sink`."""
    ref = key.split("@", 1)[0]
    namespace, _, name = ref.partition("/")
    return namespace, name


class StatusLedger:
    def __init__(self, deployments: Deployments, cached: Callable[[], list[Obj]]) -> None:
        self.deployments = deployments
        self._cached = cached

    def is_delivered(self, key: str) -> bool:
        deployment = self.deployments.read_deployment(*_deployment_of(key))
        if deployment is None:
            return True  # nothing left to tell about a Deployment that is gone
        status, _ = read_status(meta(deployment).get("annotations"))
        return status is not None and key in status.delivered

    def mark_delivered(self, key: str) -> None:
        namespace, name = _deployment_of(key)

        def mutate(deployment: Obj) -> Obj | None:
            status, _ = read_status(meta(deployment).get("annotations"))
            if status is None or key in status.delivered:
                return None
            delivered = [*status.delivered, key][-MAX_DELIVERED:]
            outbox = [e for e in status.outbox if e.key != event_key(key)]
            write_status(deployment, status.model_copy(update={"delivered": delivered, "outbox": outbox}))
            return deployment

        outcome = self.deployments.update_deployment(namespace, name, mutate, expect_template_hash=None)
        if outcome.status not in ("written", "unchanged", "not-found"):
            raise RuntimeError(f"cannot record delivery of {key} on Deployment {namespace}/{name}: {outcome.reason}")

    def pending(self) -> list[CanaryEvent]:
        events: list[CanaryEvent] = []
        for deployment in self._cached():
            annotations = meta(deployment).get("annotations")
            status, _ = read_status(annotations)
            if status is not None and is_enabled(annotations):
                events.extend(status.outbox)
        return events
