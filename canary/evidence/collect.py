"""Collect root-cause evidence for one canary from Mimir, Tempo and Loki, within a deadline. Never raises.

Per call, whatever the number of routes: the route breakdown from Mimir's OBI series (requests, 5xx,
and p99 for a latency breach: at most 3 PromQL queries) or else from Tempo; at most 6 TraceQL queries
(route counts and failing or p99 per route when Mimir had none, downstream failures below canary and
baseline requests, one search for example traces, a second only when nothing failed below the
requests); at most 3 LogQL queries (lines by trace id in the text, by trace id in structured
metadata, error lines of the canary pods). A backend that is down, slow or refuses a query becomes a
note; what was found before it is kept. Past the deadline, the remaining queries are skipped with a note.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from canary.evidence import queries
from canary.evidence.model import (
    MAX_DOWNSTREAM,
    MAX_LOGS,
    MAX_ROUTES,
    MAX_TRACES,
    Downstream,
    Evidence,
    LogRef,
    RouteStat,
    TraceRef,
)
from canary.judge.model import Verdict
from canary.samples import QueryRecord, Target, Workload
from canary.sources import logql
from canary.sources.loki import LogEntry, LokiSource
from canary.sources.mimir import MimirSource
from canary.sources.tempo import SeriesKey, TempoSource, TraceHit
from canary.sources.traceql import DEPLOYMENT, NAMESPACE, REPLICASET

log = logging.getLogger(__name__)

SEARCH_LIMIT = 20
"""Traces asked from a search (Tempo returns the first it finds, not the newest: ask for more)."""
MIN_REGRESSION = 0.005
"""A route regresses when the canary's error ratio exceeds twice the baseline's by at least this much."""


def _labels(key: SeriesKey) -> dict[str, str]:
    return {k: v for k, v in key if v is not None}


def _of(labels: dict[str, str], workload: Workload) -> bool:
    if labels.get(DEPLOYMENT) != workload.deployment:
        return False
    if NAMESPACE in labels and labels[NAMESPACE] != workload.namespace:
        return False
    return workload.replicaset is None or labels.get(REPLICASET) == workload.replicaset


def _route(labels: dict[str, str]) -> str:
    path = labels.get(queries.ROUTE, "nil")
    method = labels.get(queries.METHOD, "nil")
    path = "(no route)" if path == "nil" else path
    return path if method == "nil" else f"{method} {path}"


def latency_breached(verdict: Verdict | None) -> bool:
    """The verdict failed on latency only (so routes are compared on p99, not on errors)."""
    failed = verdict.failed if verdict is not None else ()
    return bool(failed) and all(check.unit == "s" or check.name.startswith("latency") for check in failed)


def regressed(stat: RouteStat) -> bool:
    """Enough canary errors, and an error ratio above twice the baseline's by a margin."""
    canary, baseline = stat.canary_rate, stat.baseline_rate or 0.0
    return (
        canary is not None
        and stat.canary_errors >= 2
        and canary >= 2 * baseline
        and canary - baseline >= MIN_REGRESSION
    )


MIN_SLOWDOWN = 1.5
"""In a latency breach, a route regresses when its canary p99 is at least this many times the baseline's."""


def slower(stat: RouteStat) -> bool:
    """The canary's p99 on this route is well above the baseline's (or the baseline has none), on traffic."""
    if stat.canary_p99 is None or stat.canary_requests < 5:
        return False
    return stat.baseline_p99 is None or stat.canary_p99 >= MIN_SLOWDOWN * stat.baseline_p99


def routes_from(
    target: Target,
    counts: dict[SeriesKey, float],
    errors: dict[SeriesKey, float],
    p99: dict[SeriesKey, float] | None = None,
) -> list[RouteStat]:
    """Per route: canary and baseline requests and errors (and p99 when `p99` is given: the breached
    signal is latency); regressed routes first (worst first). Several baseline ReplicaSets: the
    highest p99 of them."""
    table: dict[str, dict[str, float]] = {}
    for key, value in (p99 or {}).items():
        labels = _labels(key)
        side = "canary" if _of(labels, target.canary) else "baseline" if any(
            _of(labels, b) for b in target.baseline) else None
        if side is not None:
            row = table.setdefault(_route(labels), {})
            row[f"{side}_p99"] = max(row.get(f"{side}_p99", 0.0), value)
    for source, kind in ((counts, "requests"), (errors, "errors")):
        for key, value in source.items():
            labels = _labels(key)
            if _of(labels, target.canary):
                side = "canary"
            elif any(_of(labels, b) for b in target.baseline):
                side = "baseline"
            else:
                continue
            row = table.setdefault(_route(labels), {})
            row[f"{side}_{kind}"] = row.get(f"{side}_{kind}", 0.0) + round(value, 6)
    stats = [RouteStat(route=route, **values) for route, values in table.items()]
    judge = slower if p99 is not None else regressed
    stats = [s.model_copy(update={"regressed": judge(s)}) for s in stats if s.canary_requests or s.baseline_requests]
    worst = (lambda s: -(s.canary_p99 or 0.0)) if p99 is not None else (lambda s: -(s.canary_rate or 0.0))
    stats.sort(key=lambda s: (not s.regressed, worst(s), -s.canary_requests, s.route))
    return stats[:MAX_ROUTES]


def downstream_from(canary: dict[SeriesKey, float], baseline: dict[SeriesKey, float]) -> list[Downstream]:
    table: dict[tuple[str, str, str], dict[str, float]] = {}
    for source, side in ((canary, "canary"), (baseline, "baseline")):
        for key, value in source.items():
            labels = _labels(key)
            message = labels.get(queries.STATUS_MESSAGE, "")
            ident = (
                labels.get(queries.SPAN_SERVICE, "?"),
                labels.get(queries.SPAN_NAME, "?"),
                "" if message == "nil" else message,
            )
            row = table.setdefault(ident, {})
            row[side] = row.get(side, 0.0) + round(value, 6)
    out = [Downstream(service=s, span=n, message=m, **values) for (s, n, m), values in table.items()]
    out.sort(key=lambda d: (-(d.canary - d.baseline), -d.canary, d.service, d.span))
    return out[:MAX_DOWNSTREAM]


_MIMIR_LABELS = {
    NAMESPACE: "k8s_namespace_name",
    DEPLOYMENT: "k8s_deployment_name",
    REPLICASET: "k8s_replicaset_name",
    queries.METHOD: "http_request_method",
    queries.ROUTE: "http_route",
}


def _mimir_series(rows: Sequence[tuple[dict[str, str], float]]) -> dict[SeriesKey, float]:
    """Mimir rows keyed like Tempo's series, so one breakdown serves both."""
    out: dict[SeriesKey, float] = {}
    for labels, value in rows:
        key: SeriesKey = tuple(sorted((ours, labels.get(theirs, "nil")) for ours, theirs in _MIMIR_LABELS.items()))
        out[key] = out.get(key, 0.0) + value
    return out


def _slow_cause(hit: TraceHit) -> str | None:
    for span in hit.spans:
        route = span.attributes.get("http.route")
        if route and route != "nil":
            return f"slow request {route}"
    return None


def _trace_cause(hit: TraceHit, downstream: Sequence[Downstream]) -> str | None:
    """The failing span of one trace, named like the downstream breakdown: `service span: message`."""
    for span in hit.spans:
        service = span.attributes.get("service.name")
        message = span.attributes.get("statusMessage")
        message = "" if message in (None, "nil") else message
        if service and service != "nil":
            name = next((d.span for d in downstream if (d.service, d.message) == (service, message)), None)
            said = f": {message}" if message else ""
            return f"{service}{f' {name}' if name else ''}{said}"
    route = next((s.attributes.get("http.route") for s in hit.spans if s.attributes.get("http.route")), None)
    return f"failing request {route}" if route else None


class _Run:
    """The notes, records and deadline of one collection."""

    def __init__(self, deadline_seconds: float) -> None:
        self.began = time.monotonic()
        self.deadline_seconds = deadline_seconds
        self.notes: list[str] = []
        self.records: list[QueryRecord] = []

    def in_time(self, what: str) -> bool:
        if time.monotonic() - self.began < self.deadline_seconds:
            return True
        note = f"evidence deadline of {self.deadline_seconds:g}s reached before {what}"
        if note not in self.notes:
            self.notes.append(note)
        return False

    def ok(self, record: QueryRecord, what: str) -> bool:
        self.records.append(record)
        if record.error is not None:
            self.notes.append(f"{what}: {record.error.backend} {record.error.kind} error: {record.error.reason}")
            return False
        return True


class EvidenceCollector:
    """Root-cause evidence from Tempo (and Loki when configured)."""

    def __init__(
        self,
        tempo: TempoSource | None,
        loki: LokiSource | None = None,
        deadline_seconds: float = 30.0,
        mimir: MimirSource | Callable[[Target], MimirSource | None] | None = None,
    ) -> None:
        """`mimir`: the metrics source (or a function giving it for a target) whose OBI series give
        exact per-route counts (`http_route`); without it, or for presets without routes, Tempo's
        server spans (`span.http.route`) give them."""
        self.tempo = tempo
        self.loki = loki
        self.deadline_seconds = deadline_seconds
        self._mimir_for = mimir if callable(mimir) or mimir is None else (lambda _: mimir)

    def collect(self, target: Target, end: datetime, latency: bool = False) -> tuple[Evidence, list[QueryRecord]]:
        """Evidence for `target` over its window ending at `end`, and every query sent. `latency`: the
        breached signal is latency, so routes are compared on p99 (one more query) rather than errors."""
        run = _Run(self.deadline_seconds)
        notes, in_time, ok = run.notes, run.in_time, run.ok
        window = max(1.0, target.window)
        if self.tempo is not None:
            start_s, stop_s = self.tempo.window(end, window)
        else:
            stop_s = math.floor(end.timestamp())
            start_s = stop_s - round(window)
        start, stop = datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(stop_s, UTC)
        routes: list[RouteStat] = []
        downstream: list[Downstream] = []
        traces: list[TraceRef] = []
        traceql: str | None = None
        routes_source: str | None = None
        mimir = self._mimir_for(target) if self._mimir_for is not None else None
        if mimir is not None and in_time("the route breakdown"):
            found = mimir.route_counts(target, end)
            if found is not None:
                counts_rows, error_rows, records = found
                p99_rows: list[tuple[dict[str, str], float]] | None = None
                if all(ok(record, "routes") for record in records) and latency:
                    answer = mimir.route_p99(target, end)
                    if answer is not None and ok(answer[1], "route latency"):
                        p99_rows = answer[0]
                if all(r.error is None for r in run.records) and (p99_rows is not None or not latency):
                    p99 = _mimir_series(p99_rows) if p99_rows is not None else None
                    routes = routes_from(target, _mimir_series(counts_rows), _mimir_series(error_rows), p99)
                    routes_source = "mimir" if routes else None  # no OBI route series: ask Tempo
        if self.tempo is None:
            notes.append("Tempo is not configured: no routes, downstream cause or traces")
        else:
            tempo = self.tempo
            if routes_source is None and in_time("the route breakdown"):
                counts, record = tempo.instant(queries.route_counts(target, errors=False), start_s, stop_s)
                if ok(record, "routes"):
                    errors, record = tempo.instant(queries.route_counts(target, errors=True), start_s, stop_s)
                    tempo_p99: dict[SeriesKey, float] | None = None
                    if ok(record, "failing routes") and latency:
                        tempo_p99, record = tempo.instant(queries.route_p99(target), start_s, stop_s)
                        if not ok(record, "route latency"):
                            tempo_p99 = None
                    if record.error is None:
                        routes = routes_from(target, counts, errors, tempo_p99)
                        routes_source = "tempo"
            if in_time("the downstream breakdown"):
                canary, record = tempo.instant(queries.downstream_counts(target, (target.canary,)), start_s, stop_s)
                if ok(record, "downstream"):
                    baseline: dict[SeriesKey, float] = {}
                    if target.baseline:
                        query = queries.downstream_counts(target, target.baseline)
                        baseline, record = tempo.instant(query, start_s, stop_s)
                        if not ok(record, "downstream of the baseline"):
                            baseline = {}
                    downstream = downstream_from(canary, baseline)
            slow = [r.canary_p99 for r in routes if r.regressed and r.canary_p99 is not None]
            if latency and slow and in_time("the slow trace search"):
                # the slow tail of the regressed routes: at least 80% of their (smallest) canary p99
                least = round(min(slow) * 0.8 * 1000)
                traceql = queries.slow_requests(target, least)
                hits, record = tempo.search(queries.slow_requests_search(target, least), start_s, stop_s, SEARCH_LIMIT)
                ok(record, "slow traces")
                traces = [
                    TraceRef(trace_id=h.trace_id, at=datetime.fromtimestamp(h.start_ns / 1e9, UTC),
                             cause=_slow_cause(h))
                    for h in hits[:MAX_TRACES]
                ]
            elif in_time("the trace search"):
                traceql = queries.failing_below(target, (target.canary,))
                hits, record = tempo.search(queries.failing_downstream_search(target), start_s, stop_s, SEARCH_LIMIT)
                if ok(record, "failing traces") and not hits and in_time("the failing request search"):
                    traceql = queries.failing_requests(target, (target.canary,))
                    hits, record = tempo.search(queries.failing_requests_search(target), start_s, stop_s, SEARCH_LIMIT)
                    ok(record, "failing traces")
                traces = [
                    TraceRef(
                        trace_id=h.trace_id,
                        at=datetime.fromtimestamp(h.start_ns / 1e9, UTC),
                        cause=_trace_cause(h, downstream),
                    )
                    for h in hits[:MAX_TRACES]
                ]
        logs, logql_text = self._logs(target, start, stop, [t.trace_id for t in traces], run)
        if routes_source == "tempo" and not routes:
            notes.append("Tempo had no server spans of the canary in the window")
        evidence = Evidence(
            start=start,
            end=stop,
            routes=tuple(routes),
            routes_source=routes_source,
            downstream=tuple(downstream),
            traces=tuple(traces),
            logs=tuple(logs),
            notes=tuple(notes),
            traceql=traceql,
            logql=logql_text,
        )
        return evidence, run.records

    def _logs(
        self, target: Target, start: datetime, stop: datetime, trace_ids: Sequence[str], run: _Run
    ) -> tuple[list[LogRef], str | None]:
        """The canary pods' lines for the traces (in the text, in structured metadata), then error lines."""
        in_time, ok, notes = run.in_time, run.ok, run.notes
        if self.loki is None:
            return [], None
        workload = target.canary
        found: dict[tuple[datetime, str], LogEntry] = {}
        # Loki's end is exclusive and log lines are written when the request ends: look a little later.
        log_stop = stop + timedelta(seconds=30)
        asks: list[tuple[str, str]] = []
        if trace_ids:
            asks.append((logql.lines_with_trace_ids(workload, trace_ids[:MAX_TRACES]), "log lines of the traces"))
            asks.append(
                (
                    logql.lines_with_trace_id_metadata(workload, trace_ids[:MAX_TRACES]),
                    "log lines of the traces (structured metadata)",
                )
            )
        error_query = logql.error_lines(workload)
        asks.append((error_query, "error log lines"))
        for query, what in asks:
            if query == error_query and len(found) >= MAX_LOGS:
                break
            if not in_time(what):
                break
            entries, record = self.loki.lines(query, start, log_stop, limit=MAX_LOGS * 4)
            if not ok(record, what):
                if record.error is not None and record.error.kind in ("connection", "timeout"):
                    break
                continue
            for entry in entries:
                found.setdefault((entry.at, entry.line), entry)
        if not found and not any(n.startswith(("log lines", "error log lines")) for n in notes):
            notes.append("Loki had no log lines of the canary's pods for these traces, nor error lines")
        wanted = set(trace_ids)
        ordered = sorted(
            found.values(),
            key=lambda e: (
                e.trace_id not in wanted,
                (e.level or "") not in logql.ERROR_LEVELS.split("|"),
                -e.at.timestamp(),
            ),
        )
        logs = [LogRef(at=e.at, pod=e.pod, trace_id=e.trace_id, line=e.line) for e in ordered[:MAX_LOGS]]
        return logs, error_query


def collect_quietly(collector: EvidenceCollector, target: Target, end: datetime, latency: bool = False) -> Evidence:
    """`collector.collect`, turning any bug into a note (evidence must never break a rollback)."""
    try:
        return collector.collect(target, end, latency)[0]
    except Exception as exc:  # a bug in enrichment must not stop the message
        log.exception("evidence collection failed for %s", target.key)
        stop = end
        return Evidence(
            start=stop - timedelta(seconds=target.window),
            end=stop,
            notes=(f"evidence collection failed: {type(exc).__name__}: {exc}",),
        )
