"""Tempo (TraceQL) source: server-span error rates per canary and baseline, and example failing traces.

Error rate = `{ ... && kind = server && status = error } | rate()` divided client-side by the
unfiltered `{ ... && kind = server } | rate()`, both grouped by workload, in one query pair per tick
for every target with the same window.

Why `/api/metrics/query` (instant) and not `query_range`: an instant answer is one number per series
over exactly (start, end]. A range answer is aligned to the step and carries an extra first bucket
(start-step, start] outside the window, plus exemplars; summing it right needs care for no gain.

Tempo gotchas handled here (see tests/fixtures/tempo/README.md):
- The query frontend refuses windows that end less than `query_end_cutoff` (30 s) ago and shortens
  those that overlap it; the window is moved back to end at now-30s, keeping its length, so what is
  asked is what is answered.
- Protobuf JSON: zero values are omitted (a series without `value` is 0, a missing error series is
  0 errors), int64 come as strings, and an instant answer with no series has no `series` key (no data).
- An answer marked `status: PARTIAL`, or whose `metrics.completedJobs` is below `totalJobs`, is not a
  rate of all spans: it becomes a BackendError of kind `limit` quoting Tempo's message, never a
  silently wrong rate.
- Trace ids come back with leading zeros stripped; they are left-padded to 32 hex digits.

A source never raises: connection, timeout, HTTP status (Tempo's text/plain message quoted), JSON and
shape errors all become a BackendError that names the backend, the query and the reason.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from canary.samples import Backend, BackendError, BackendErrorKind, Pair, QueryRecord, Target, TraceSample, Workload
from canary.sources import limits, traceql
from canary.sources.base import BatchResult
from canary.sources.http import BackendFailure, HttpBackendSettings, JsonClient

INSTANT_PATH = "/api/metrics/query"
SEARCH_PATH = "/api/search"
_TRACE_ID = re.compile(r"[0-9a-fA-F]{1,32}")


class TempoSettings(HttpBackendSettings):
    """Where Tempo is and how to talk to it (`url`: the query frontend, e.g. `http://tempo:3200`)."""

    end_cutoff_seconds: float = Field(30.0, ge=0)
    """Tempo's `query_frontend.query_end_cutoff`: data newer than this is not queried."""
    search_limit: int = Field(20, ge=1, le=1000)
    """Traces asked from `/api/search` before keeping the newest few."""


# --- Tempo's answers (protobuf JSON) -------------------------------------------------------------


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _AnyValue(_Shape):
    stringValue: str | None = None
    intValue: int | None = None
    doubleValue: float | None = None
    boolValue: bool | None = None

    def text(self) -> str | None:
        for value in (self.stringValue, self.intValue, self.doubleValue, self.boolValue):
            if value is not None:
                return str(value)
        return None


class _Label(_Shape):
    key: str
    value: _AnyValue = _AnyValue()


class _InstantSeries(_Shape):
    labels: list[_Label] = []
    value: float = 0.0
    """Omitted by Tempo when 0."""


class _JobMetrics(_Shape):
    completedJobs: int = 0
    totalJobs: int = 0


class _InstantAnswer(_Shape):
    series: list[_InstantSeries] = []
    """Absent when nothing matched."""
    metrics: _JobMetrics | None = None
    """Always present in Tempo's answers, even with no series; an answer without it is not Tempo's."""
    status: str | None = None
    message: str | None = None


class _FoundSpan(_Shape):
    spanID: str = ""
    startTimeUnixNano: int = 0
    attributes: list[_Label] = []


class _SpanSet(_Shape):
    spans: list[_FoundSpan] = []
    matched: int = 0


class _FoundTrace(_Shape):
    traceID: str
    startTimeUnixNano: int = 0
    rootServiceName: str | None = None
    rootTraceName: str | None = None
    spanSets: list[_SpanSet] = []


class SpanHit(BaseModel):
    """A span a search matched, with the attributes Tempo returned (values as text)."""

    model_config = ConfigDict(frozen=True)

    span_id: str
    attributes: dict[str, str] = {}


class TraceHit(BaseModel):
    """A trace a search found: its id (32 hex digits), start and matched spans."""

    model_config = ConfigDict(frozen=True)

    trace_id: str
    start_ns: int
    root_service: str | None = None
    root_name: str | None = None
    spans: tuple[SpanHit, ...] = ()


class _SearchAnswer(_Shape):
    traces: list[_FoundTrace] = []


# --- the source ----------------------------------------------------------------------------------

A = TypeVar("A", bound=_Shape)


_SeriesKey = tuple[tuple[str, str | None], ...]
SeriesKey = _SeriesKey
"""A series' labels as sorted (key, value) pairs."""


class TempoSource:
    """Implements `canary.sources.base.TraceSource` over Tempo's HTTP API."""

    def __init__(
        self, settings: TempoSettings, clock: Callable[[], float] = time.time,
        max_body_bytes: int = limits.MAX_BODY_BYTES,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._http = JsonClient(settings, Backend.TEMPO, max_body_bytes)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TempoSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- public API ---

    def failing_spans_query(self, target: Target) -> str:
        """TraceQL for the canary's failing server spans (for a Grafana Explore link)."""
        return traceql.failing_spans_query(target)

    def window(self, end: datetime, seconds: float) -> tuple[int, int]:
        """(start, end) in unix seconds: `end` moved back before Tempo's end cutoff, length kept."""
        latest = self._clock() - self.settings.end_cutoff_seconds
        stop = math.floor(min(end.timestamp(), latest))
        return stop - max(1, round(seconds)), stop

    def fetch_trace_errors(self, targets: Sequence[Target], end: datetime) -> BatchResult[TraceSample]:
        """Server spans and error spans per canary and baseline; one query pair per distinct window."""
        by_window: dict[int, list[Target]] = {}
        for target in targets:
            by_window.setdefault(max(1, round(target.window)), []).append(target)
        values: dict[str, Pair[TraceSample]] = {}
        records: list[QueryRecord] = []
        errors: dict[str, BackendError] = {}
        for seconds, group in sorted(by_window.items()):
            try:
                values.update(self._fetch_group(seconds, group, end, records))
            except BackendFailure as failure:
                errors.update({target.key: failure.error for target in group})
        if errors and len(by_window) == 1:
            return BatchResult(error=next(iter(errors.values())), queries=tuple(records))
        return BatchResult(values=values, target_errors=errors, queries=tuple(records))

    def _fetch_group(
        self, seconds: int, group: list[Target], end: datetime, records: list[QueryRecord]
    ) -> dict[str, Pair[TraceSample]]:
        """The query pair of one window; a BackendFailure spoils this window's targets only."""
        start, stop = self.window(end, seconds)
        rates: list[dict[_SeriesKey, float]] = []
        queries: list[str] = []
        for errors in (False, True):
            query = traceql.rate_query(group, errors=errors)
            queries.append(query)
            began = time.monotonic()
            try:
                series = self._instant(query, start, stop)
            except BackendFailure as failure:
                records.append(self._record(query, began, 0, failure.error))
                raise
            records.append(self._record(query, began, len(series)))
            rates.append(series)
        all_rates, error_rates = rates
        by = traceql.group_by(group)
        values: dict[str, Pair[TraceSample]] = {}
        for target in group:
            try:
                values[target.key] = Pair(
                    canary=_sample(all_rates, error_rates, (target.canary,), by, stop - start),
                    baseline=_sample(all_rates, error_rates, target.baseline, by, stop - start),
                )
            except ValueError as exc:
                reason = f"GET {INSTANT_PATH}: {exc}"
                raise BackendFailure(self._error(queries[1], BackendErrorKind.MALFORMED, reason)) from None
        return values

    def example_failing_traces(
        self, target: Target, end: datetime, limit: int = 5
    ) -> tuple[list[str], BackendError | None]:
        """Up to `limit` ids (32 hex digits) of the canary's failing traces in its window, newest first.

        Tempo stops a search once `limit` traces are found, taking them from whichever jobs finish
        first, so it is asked for `search_limit` traces and the newest of those are kept.
        """
        query = traceql.failing_spans_query(target)
        stop = math.ceil(end.timestamp())
        params = {
            "q": query,
            "start": str(stop - max(1, round(target.window))),
            "end": str(stop),
            "limit": str(max(limit, self.settings.search_limit)),
            "spss": "1",
        }
        try:
            answer = self._get(SEARCH_PATH, params, query, _SearchAnswer)
            ids = [(trace.startTimeUnixNano, _trace_id(trace.traceID, query)) for trace in answer.traces]
        except BackendFailure as failure:
            return [], failure.error
        ids.sort(key=lambda item: item[0], reverse=True)
        return [trace_id for _, trace_id in ids[:limit]], None

    def instant(self, query: str, start: int, stop: int) -> tuple[dict[_SeriesKey, float], QueryRecord]:
        """One instant metrics query over (start, stop] (unix seconds): value per label set, and its record.

        The record's `error` is set (and the values empty) when Tempo could not answer in full.
        """
        began = time.monotonic()
        try:
            series = self._instant(query, start, stop)
        except BackendFailure as failure:
            return {}, self._record(query, began, 0, failure.error)
        return series, self._record(query, began, len(series))

    def search(
        self, query: str, start: int, stop: int, limit: int, spans_per_set: int = 3
    ) -> tuple[list[TraceHit], QueryRecord]:
        """Traces matching `query` in [start, stop] (unix seconds), newest first, with their matched spans.

        Tempo returns the first `limit` traces its jobs find, not the newest: ask for more than needed.
        """
        params = {"q": query, "start": str(start), "end": str(stop), "limit": str(limit), "spss": str(spans_per_set)}
        began = time.monotonic()
        try:
            answer = self._get(SEARCH_PATH, params, query, _SearchAnswer)
            hits = [
                TraceHit(
                    trace_id=_trace_id(trace.traceID, query),
                    start_ns=trace.startTimeUnixNano,
                    root_service=trace.rootServiceName,
                    root_name=trace.rootTraceName,
                    spans=tuple(
                        SpanHit(
                            span_id=span.spanID,
                            attributes={a.key: text for a in span.attributes if (text := a.value.text()) is not None},
                        )
                        for span_set in trace.spanSets[:1]
                        for span in span_set.spans
                    ),
                )
                for trace in answer.traces
            ]
        except BackendFailure as failure:
            return [], self._record(query, began, 0, failure.error)
        hits.sort(key=lambda hit: hit.start_ns, reverse=True)
        return hits, self._record(query, began, len(hits))

    # --- HTTP ---

    def _instant(self, query: str, start: int, stop: int) -> dict[_SeriesKey, float]:
        answer = self._get(INSTANT_PATH, {"q": query, "start": str(start), "end": str(stop)}, query, _InstantAnswer)
        if answer.status is not None and answer.status.upper() == "PARTIAL":
            raise BackendFailure(
                self._error(
                    query,
                    BackendErrorKind.LIMIT,
                    f"GET {INSTANT_PATH}: partial result: {answer.message or 'no reason'}",
                )
            )
        if answer.metrics is None and "series" not in answer.model_fields_set:
            reason = f"GET {INSTANT_PATH}: answer has neither series nor metrics: not a Tempo metrics answer"
            raise BackendFailure(self._error(query, BackendErrorKind.MALFORMED, reason))
        jobs = answer.metrics or _JobMetrics()
        if jobs.completedJobs < jobs.totalJobs:
            reason = f"GET {INSTANT_PATH}: incomplete result: {jobs.completedJobs} of {jobs.totalJobs} jobs completed"
            raise BackendFailure(self._error(query, BackendErrorKind.LIMIT, reason))
        rates: dict[_SeriesKey, float] = {}
        for index, series in enumerate(answer.series):
            key = tuple(sorted((label.key, label.value.text()) for label in series.labels))
            if not limits.plausible(series.value):
                reason = (
                    f"GET {INSTANT_PATH}: series[{index}] {dict(key)} value is {series.value!r}, expected a rate >= 0"
                )
                raise BackendFailure(self._error(query, BackendErrorKind.MALFORMED, reason))
            rates[key] = rates.get(key, 0.0) + series.value
            if not limits.plausible(rates[key]):
                reason = f"GET {INSTANT_PATH}: series {dict(key)} sum to {rates[key]!r}, not a plausible rate"
                raise BackendFailure(self._error(query, BackendErrorKind.MALFORMED, reason))
        return rates

    def _get(self, path: str, params: dict[str, str], query: str, shape: type[A]) -> A:
        return self._http.get(path, params, query, shape)

    def _error(self, query: str, kind: BackendErrorKind, reason: str) -> BackendError:
        return BackendError(backend=Backend.TEMPO, query=query, kind=kind, reason=reason)

    def _record(self, query: str, began: float, series: int, error: BackendError | None = None) -> QueryRecord:
        return QueryRecord(
            backend=Backend.TEMPO, query=query, seconds=time.monotonic() - began, series=series, error=error
        )


# --- pure helpers ----------------------------------------------------------------------------------


def _matches(key: _SeriesKey, workload: Workload, by: tuple[str, ...]) -> bool:
    labels = dict(key)
    if labels.get(traceql.DEPLOYMENT) != workload.deployment:
        return False
    if traceql.NAMESPACE in by and labels.get(traceql.NAMESPACE) != workload.namespace:
        return False
    return workload.replicaset is None or labels.get(traceql.REPLICASET) == workload.replicaset


def _sample(
    all_rates: dict[_SeriesKey, float],
    error_rates: dict[_SeriesKey, float],
    workloads: Sequence[Workload],
    by: tuple[str, ...],
    seconds: int,
) -> TraceSample | None:
    """Spans and error spans of `workloads` (summed); None when Tempo had no server span of theirs.

    Tempo's rate is count / window seconds, so count = rate * seconds (rounded to undo float noise).
    A missing error series is 0 errors. Should errors exceed all spans (late spans between the two
    queries, or a broken backend), ValueError: a backend error, never a wrong rate or a silent gap.
    """
    keys = {key for key in all_rates if any(_matches(key, w, by) for w in workloads)}
    if not keys:
        return None
    spans = round(sum(all_rates[k] for k in keys) * seconds, 6)
    error_keys = {key for key in error_rates if any(_matches(key, w, by) for w in workloads)}
    errors = round(sum(error_rates[k] for k in error_keys) * seconds, 6)
    if errors > spans:
        raise ValueError(
            f"{errors:g} error spans but only {spans:g} spans for {', '.join(str(w) for w in workloads)}: "
            "the two answers do not fit together"
        )
    return TraceSample(spans=spans, error_spans=errors)


def _trace_id(raw: str, query: str) -> str:
    if not _TRACE_ID.fullmatch(raw):
        error = BackendError(
            backend=Backend.TEMPO,
            query=query,
            kind=BackendErrorKind.MALFORMED,
            reason=f"GET {SEARCH_PATH}: traces[].traceID {raw!r} is not 1 to 32 hex digits",
        )
        raise BackendFailure(error)
    return raw.lower().rjust(32, "0")
