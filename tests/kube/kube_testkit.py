"""Shared helpers for the canary.kube tests: bounded waiting and a thread-safe event recorder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Recorder:
    """An informer handler that remembers (kind, namespace, name, resourceVersion) of every call."""

    def __init__(self, fail_on: str | None = None) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, str, str]] = []
        self._fail_on = fail_on

    def __call__(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        with self._lock:
            self.calls.append((kind, meta.get("namespace", ""), meta["name"], meta.get("resourceVersion", "")))
        if self._fail_on is not None and meta["name"] == self._fail_on:
            raise RuntimeError(f"handler refuses {meta['name']}")

    def snapshot(self) -> list[tuple[str, str, str, str]]:
        with self._lock:
            return list(self.calls)

    def of(self, kind: str) -> list[str]:
        """Names seen with this event kind, in order."""
        return [name for k, _, name, _ in self.snapshot() if k == kind]

    def has(self, kind: str, name: str) -> bool:
        return name in self.of(kind)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
