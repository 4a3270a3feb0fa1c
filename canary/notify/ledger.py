"""What the notifier asks of a delivery ledger, so each (deployment, revision, event, sink) is sent
exactly once across restarts. The controller keeps it in each Deployment's status annotation
(canary.controller.outbox.Outbox)."""

from __future__ import annotations

from typing import Protocol

from canary.notify.events import DeliveryKey


class DeliveryLedger(Protocol):
    def is_delivered(self, key: DeliveryKey) -> bool:
        """True once `mark_delivered(key)` has been recorded (by this process or an earlier one)."""
        ...

    def mark_delivered(self, key: DeliveryKey) -> None:
        """Record that the sink answered 2xx for `key`."""
        ...
