"""Bounds on every backend answer: one deadline per query and per tick, a body size cap, and JSON that
cannot crash the parser. Pure helpers shared by the sources; no backend-specific knowledge.

A socket timeout only bounds the wait for the next byte: a backend dripping one byte every half
second, or an endless chunked body, would hold a source (and its memory) forever. Here the body is
read chunk by chunk against a deadline and a byte cap, and the tick's deadline (set by the Analyzer
around one batch) shortens every query of that tick.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import json
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest answer read from a backend (a batched RED answer for thousands of canaries is a few MB)."""
MAX_COUNT = 1e15
"""Largest count or rate a backend may report for one workload; beyond it the answer is garbage."""
MAX_RETRY_AFTER = 30.0
"""A `Retry-After` longer than this is not waited for within a tick."""

_tick_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("canary_tick_deadline", default=None)


class LimitExceeded(Exception):
    """The answer broke a bound (deadline or size); the message says which, for the BackendError."""

    def __init__(self, reason: str, timeout: bool) -> None:
        super().__init__(reason)
        self.timeout = timeout


@contextlib.contextmanager
def tick_deadline(seconds: float | None) -> Iterator[None]:
    """Every query started inside this block ends at most `seconds` after it began."""
    if seconds is None:
        yield
        return
    token = _tick_deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _tick_deadline.reset(token)


def query_deadline(timeout: float) -> float:
    """The monotonic time by which one query must be answered: its own timeout, or the tick's, earlier."""
    deadline = time.monotonic() + timeout
    tick = _tick_deadline.get()
    return deadline if tick is None else min(deadline, tick)


def left(deadline: float) -> float:
    return deadline - time.monotonic()


def read_body(read_chunk: Callable[[], bytes], deadline: float, cap: int, where: str) -> bytes:
    """Read a body with `read_chunk()` (returning b"" at the end) until done, the deadline or the cap."""
    parts: list[bytes] = []
    size = 0
    while True:
        if left(deadline) <= 0:
            raise LimitExceeded(f"{where}: answer not complete within the deadline ({size} bytes read)", True)
        chunk = read_chunk()
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > cap:
            raise LimitExceeded(f"{where}: answer larger than {cap} bytes, not read further", False)
        parts.append(chunk)


def loads(body: bytes | str) -> Any:
    """JSON from a backend; ValueError (never RecursionError) for anything that is not sane JSON."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def plausible(value: float) -> bool:
    """A count or rate a backend can really have reported: finite, >= 0 and below MAX_COUNT."""
    return math.isfinite(value) and 0 <= value <= MAX_COUNT
