"""Loki (LogQL) source: the canary pods' log lines for given trace ids, and their error lines.

Only log queries on `/loki/api/v1/query_range`; Loki refuses log queries as instant queries. The
selectors are built in `canary.sources.logql` with every value escaped.

Loki gotchas handled here (see tests/fixtures/loki/README.md):
- Structured metadata (`trace_id`, `span_id`) and `detected_level` come back merged into each
  result's `stream` labels, one stream per line; the trace id is read from there, else from the line.
- Streams are sorted by label set, not time: entries are re-sorted newest first here.
- Entry timestamps are nanosecond strings; `limit` is applied by Loki newest first (`backward`).

A source never raises: connection, timeout, HTTP status (Loki's text/plain message quoted), JSON and
shape errors all become a BackendError naming the backend, the query and the reason; every answer is
read within its deadline and the body cap (`canary.sources.http`).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from canary.samples import Backend, BackendError, BackendErrorKind, QueryRecord
from canary.sources import limits
from canary.sources.http import BackendFailure, HttpBackendSettings, JsonClient

QUERY_RANGE_PATH = "/loki/api/v1/query_range"
_TRACE_IN_LINE = re.compile(r"(?:trace_?id|traceID)[\"=: ]+\"?([0-9a-fA-F]{16,32})\b")
NS = 1_000_000_000


class LokiSettings(HttpBackendSettings):
    """Where Loki is and how to talk to it (`url`: the query frontend, e.g. `http://loki:3100`)."""

    max_line_chars: int = Field(1000, ge=80)
    """Longer lines are cut (a log line can be megabytes)."""


class LogEntry(BaseModel):
    """One log line as Loki returned it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    line: str
    pod: str | None = None
    trace_id: str | None = None
    """From structured metadata, else from the line's `trace_id=`; 32 lowercase hex digits."""
    level: str | None = None
    """Loki's `detected_level`."""


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Stream(_Shape):
    stream: dict[str, str] = {}
    values: list[tuple[str, str] | tuple[str, str, dict[str, Any]]] = []


class _Data(_Shape):
    resultType: str
    result: list[_Stream] = []


class _Answer(_Shape):
    status: str
    data: _Data


class LokiSource:
    """Log lines from Loki over its HTTP API."""

    def __init__(self, settings: LokiSettings, max_body_bytes: int = limits.MAX_BODY_BYTES) -> None:
        self.settings = settings
        self._http = JsonClient(settings, Backend.LOKI, max_body_bytes)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LokiSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def lines(self, query: str, start: datetime, end: datetime, limit: int = 100) -> tuple[list[LogEntry], QueryRecord]:
        """Up to `limit` lines matching the LogQL log query in [start, end), newest first.

        The record's `error` is set (and the list empty) when Loki could not answer.
        """
        params = {
            "query": query,
            "start": str(int(start.timestamp() * NS)),
            "end": str(int(end.timestamp() * NS)),
            "limit": str(limit),
            "direction": "backward",
        }
        began = time.monotonic()
        try:
            answer = self._get(params, query)
        except BackendFailure as failure:
            return [], self._record(query, began, 0, failure.error)
        if answer.data.resultType != "streams":
            error = self._error(
                query,
                BackendErrorKind.MALFORMED,
                f"GET {QUERY_RANGE_PATH}: expected resultType streams, got {answer.data.resultType!r}",
            )
            return [], self._record(query, began, 0, error)
        entries: list[tuple[int, LogEntry]] = []
        for stream in answer.data.result:
            for value in stream.values:
                entry = self._entry(stream.stream, value)
                if entry is not None:
                    entries.append(entry)
        entries.sort(key=lambda item: item[0], reverse=True)
        out = [entry for _, entry in entries[:limit]]
        return out, self._record(query, began, len(answer.data.result))

    def _entry(
        self, labels: dict[str, str], value: tuple[str, str] | tuple[str, str, dict[str, Any]]
    ) -> tuple[int, LogEntry] | None:
        try:
            ns = int(value[0])
        except ValueError:
            return None
        line = value[1]
        metadata = dict(labels)
        if len(value) == 3 and isinstance(value[2], dict):
            metadata.update(value[2].get("structuredMetadata") or {})
        trace_id = metadata.get("trace_id")
        if not (trace_id and re.fullmatch(r"[0-9a-fA-F]{1,32}", trace_id)):
            found = _TRACE_IN_LINE.search(line)
            trace_id = found.group(1) if found else None
        limit = self.settings.max_line_chars
        text = line if len(line) <= limit else line[:limit] + f"… ({len(line) - limit} more chars)"
        return ns, LogEntry(
            at=datetime.fromtimestamp(ns / NS, UTC),
            line=text,
            pod=metadata.get("pod"),
            trace_id=trace_id.lower().rjust(32, "0") if trace_id else None,
            level=metadata.get("detected_level"),
        )

    def _get(self, params: dict[str, str], query: str) -> _Answer:
        return self._http.get(QUERY_RANGE_PATH, params, query, _Answer)

    def _error(self, query: str, kind: BackendErrorKind, reason: str) -> BackendError:
        return BackendError(backend=Backend.LOKI, query=query, kind=kind, reason=reason)

    def _record(self, query: str, began: float, series: int, error: BackendError | None = None) -> QueryRecord:
        return QueryRecord(
            backend=Backend.LOKI, query=query, seconds=time.monotonic() - began, series=series, error=error
        )
