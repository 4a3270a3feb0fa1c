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
    """Anytime-valid p-value of "the canary breaks this limit is false" (1 / the e-value, at most 1)."""
    alpha: float | None = None
    """The family's rollback level: P(a canary within every limit is ever rolled back) <= alpha."""
    e_value: float | None = None
    """Evidence against the limit since the analysis began: the rollback comes when the checks'
    average e-value reaches 1/alpha."""
    lower: float | None = None
    upper: float | None = None
    """Anytime-valid (1 - alpha) bounds of the canary's value (same unit), when the check has them."""
    detect_seconds: float | None = None
    """At the current traffic, the expected time until a breach of 2x the limit would be detected."""
    promote_seconds: float | None = None
    """At the current traffic and estimate, the expected further time until this check allows promotion."""
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
