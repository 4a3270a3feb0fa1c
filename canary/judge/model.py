"""An analysis result is data: one CheckResult per check and a Verdict, printable, storable, testable."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Phase(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    """e.g. `availability`, `latency-p99`, `trace-error-rate`, `error-rate-ratio`, `sample-size`."""
    result: Phase
    reason: str
    """One human-readable sentence: what was compared and why this result."""
    canary: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    unit: str = ""
    """`ratio` (0..1), `s`, `x` (times baseline) or `requests`."""
    samples: float | None = None
    """Canary sample size the value rests on (requests or spans)."""
    window: float | None = None
    """Seconds of data."""
    p_value: float | None = None
    """p-value of the statistical test behind a fail or an unconfirmed breach."""
    alpha: float | None = None
    """Significance level spent on this check at this look (sequential analysis)."""
    skipped: bool = False
    """The check could not run (e.g. no baseline traffic); it does not count towards the verdict."""


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    phase: Phase
    checks: tuple[CheckResult, ...]
    message: str
    """Why this phase, in one line (the failing checks' reasons, or the backend error)."""

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.result is Phase.FAIL)
