"""What has been delivered, so each (deployment, revision, event, sink) is sent exactly once across restarts.

The controller implements `DeliveryLedger` on the Deployment's status annotation; `MemoryLedger` and
`JsonFileLedger` serve the tests and the demo.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ValidationError

from canary.notify.events import CanaryEvent


def delivery_key(event: CanaryEvent, sink: str) -> str:
    """`ns/deploy@revision:event|sink`: the unit of exactly-once delivery."""
    return f"{event.key}|{sink}"


def event_key(key: str) -> str:
    """The `CanaryEvent.key` a delivery key was made from (see `delivery_key`)."""
    return key.split("|", 1)[0]


class DeliveryLedger(Protocol):
    def is_delivered(self, key: str) -> bool:
        """True once `mark_delivered(key)` has been recorded (by this process or an earlier one)."""
        ...

    def mark_delivered(self, key: str) -> None:
        """Record that the sink answered 2xx for `key` (see `delivery_key`)."""
        ...

    def pending(self) -> list[CanaryEvent]:
        """Events recorded as due by the controller, possibly already delivered to some or every sink.

        The notifier re-publishes them on start and skips the keys already delivered.
        """
        ...


class LedgerState(BaseModel):
    due: list[CanaryEvent] = []
    delivered: list[str] = []


class MemoryLedger:
    """A ledger that lives as long as the object: a "restart" is a new Notifier on the same ledger."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = LedgerState()

    def record_due(self, event: CanaryEvent) -> None:
        """What the controller does in its status annotation when it emits `event`."""
        with self._lock:
            if all(e.key != event.key for e in self._state.due):
                self._state.due.append(event)

    def is_delivered(self, key: str) -> bool:
        with self._lock:
            return key in self._state.delivered

    def mark_delivered(self, key: str) -> None:
        with self._lock:
            if key not in self._state.delivered:
                self._state.delivered.append(key)

    def pending(self) -> list[CanaryEvent]:
        with self._lock:
            return list(self._state.due)


class JsonFileLedger(MemoryLedger):
    """A MemoryLedger saved to a JSON file after every change (written atomically), loaded on creation."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.exists():
            try:
                self._state = LedgerState.model_validate_json(self.path.read_bytes())
            except (OSError, ValidationError) as exc:
                raise ValueError(f"delivery ledger {self.path}: cannot read: {exc}") from exc

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self._state.model_dump(mode="json"), indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    def record_due(self, event: CanaryEvent) -> None:
        super().record_due(event)
        with self._lock:
            self._save()

    def mark_delivered(self, key: str) -> None:
        super().mark_delivered(key)
        with self._lock:
            self._save()
