"""A delivery ledger in memory, for tests and the demo's mirror webhook: a "restart" is a new Notifier
on the same ledger."""

from __future__ import annotations

import threading

from canary.notify.events import DeliveryKey


class MemoryLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delivered: set[DeliveryKey] = set()

    def is_delivered(self, key: DeliveryKey) -> bool:
        with self._lock:
            return key in self._delivered

    def mark_delivered(self, key: DeliveryKey) -> None:
        with self._lock:
            self._delivered.add(key)
