"""Root-cause evidence as data: where (routes), what failed downstream, which traces and log lines.

Bounded by construction (`MAX_*`), so it fits the status annotation, a Slack message and a webhook.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, field_validator

MAX_ROUTES: Final = 8
MAX_DOWNSTREAM: Final = 5
MAX_TRACES: Final = 5
MAX_LOGS: Final = 5
MAX_NOTES: Final = 5
MAX_TEXT: Final = 300
"""Characters kept of a log line, a status message or a note."""


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f}%" if value >= 0.001 or value == 0 else f"{value * 100:.2f}%"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"


class RouteStat(_Data):
    """One route's requests and errors, canary vs baseline (server spans in Tempo)."""

    route: str
    """`METHOD /path` (or the path alone when spans carry no method)."""
    canary_requests: float = 0
    canary_errors: float = 0
    baseline_requests: float = 0
    baseline_errors: float = 0
    canary_p99: float | None = None
    """Seconds; set when the breached signal is latency."""
    baseline_p99: float | None = None
    regressed: bool = False
    """This route carries the canary's regression (of the breached signal: errors, or latency)."""

    @property
    def canary_rate(self) -> float | None:
        return self.canary_errors / self.canary_requests if self.canary_requests else None

    @property
    def baseline_rate(self) -> float | None:
        return self.baseline_errors / self.baseline_requests if self.baseline_requests else None

    def text(self) -> str:
        """e.g. `POST /api/checkout 25.7% errors (18/70) vs 0.8% (2/249)`, or for latency
        `POST /api/orders p99 900ms vs 60ms (120 requests)`."""
        if self.canary_p99 is not None:
            base = _duration(self.baseline_p99) if self.baseline_p99 is not None else "no baseline traffic"
            return f"{self.route} p99 {_duration(self.canary_p99)} vs {base} ({self.canary_requests:g} requests)"
        canary = f"{_pct(self.canary_rate)} errors ({self.canary_errors:g}/{self.canary_requests:g})"
        baseline = (
            f"{_pct(self.baseline_rate)} ({self.baseline_errors:g}/{self.baseline_requests:g})"
            if self.baseline_requests
            else "no baseline traffic"
        )
        return f"{self.route} {canary} vs {baseline}"


class Downstream(_Data):
    """A failing span below the canary's server spans: which service, which span, what it said."""

    service: str
    span: str
    message: str = ""
    """The span's status message, e.g. `deadlock detected`."""
    canary: float = 0
    """Failing spans of this kind below canary requests."""
    baseline: float = 0
    """The same below baseline requests."""

    @field_validator("message")
    @classmethod
    def _clip(cls, value: str) -> str:
        return clip(value)

    def text(self) -> str:
        """e.g. `checkout span "INSERT orders": deadlock detected (18 canary vs 0 baseline)`."""
        said = f": {self.message}" if self.message else ""
        return f'{self.service} span "{self.span}"{said} ({self.canary:g} canary vs {self.baseline:g} baseline)'


class TraceRef(_Data):
    """One failing canary trace."""

    trace_id: str
    at: datetime | None = None
    cause: str | None = None
    """The failing downstream span in this trace, e.g. `checkout INSERT orders: deadlock detected`."""


class LogRef(_Data):
    """One log line of a canary pod."""

    at: datetime
    pod: str | None = None
    trace_id: str | None = None
    line: str

    @field_validator("line")
    @classmethod
    def _clip(cls, value: str) -> str:
        return clip(value)


class Evidence(_Data):
    """Why the canary is bad, as far as the traces and logs tell; `notes` say what could not be found."""

    start: datetime
    end: datetime
    """The time range the evidence covers (for links)."""
    routes: tuple[RouteStat, ...] = ()
    """Routes with traffic, the regressed ones first."""
    routes_source: str | None = None
    """Where the route counts come from: `mimir` (OBI's `http_route`, every request) or `tempo`
    (`span.http.route` of the server spans that were kept)."""
    downstream: tuple[Downstream, ...] = ()
    """Failing downstream spans below the canary's server spans, most frequent first."""
    traces: tuple[TraceRef, ...] = ()
    logs: tuple[LogRef, ...] = ()
    notes: tuple[str, ...] = ()
    """What could not be collected and why (a backend down, slow, refusing a query, no data)."""
    traceql: str | None = None
    """TraceQL finding the failing downstream spans, for an Explore link."""
    logql: str | None = None
    """LogQL for the canary pods' error lines, for an Explore link."""

    @field_validator("notes")
    @classmethod
    def _clip_notes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(clip(n) for n in value[:MAX_NOTES])

    @property
    def regressed_routes(self) -> tuple[RouteStat, ...]:
        return tuple(r for r in self.routes if r.regressed)

    @property
    def cause(self) -> Downstream | None:
        """The downstream failure most specific to the canary (more canary than baseline failures)."""
        return next((d for d in self.downstream if d.canary > d.baseline), None)

    @property
    def empty(self) -> bool:
        return not (self.routes or self.downstream or self.traces or self.logs)

    def summary(self) -> str:
        """One line for a Kubernetes Event: where and what, or why nothing was found."""
        parts = []
        regressed = self.regressed_routes
        if regressed:
            parts.append("; ".join(r.text() for r in regressed[:2]))
        cause = self.cause
        if cause is not None:
            parts.append(f"cause: {cause.text()}")
        if self.traces:
            parts.append("traces: " + ", ".join(t.trace_id for t in self.traces[:3]))
        if not parts:
            parts.append("no root-cause evidence found" + (f" ({self.notes[0]})" if self.notes else ""))
        return clip(" | ".join(parts), 900)


class RollbackEvidence(_Data):
    """The evidence of one rollback, as kept in the status annotation."""

    revision: str
    """The rolled-back revision (template hash) it explains."""
    at: datetime
    evidence: Evidence
