"""The typed event the controller emits at each outcome; every sink renders it from this alone."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from canary.config.slo import NotifyEvent
from canary.evidence.model import Evidence
from canary.judge.model import Verdict
from canary.samples import Target
from canary.vocabulary import Mode


class CanaryEvent(BaseModel):
    """One thing that happened to one revision of one guarded Deployment, with its evidence."""

    model_config = ConfigDict(frozen=True)

    type: NotifyEvent
    namespace: str
    deployment: str
    revision: str
    """The canary's `deployment.kubernetes.io/revision` (guard mode) or template hash (canary mode)."""
    baseline_revision: str | None = None
    """The revision the canary is compared with (and rolled back to), when known."""
    mode: Mode
    service: str
    slo: str
    """`namespace/name` of the ServiceSLO, or `default`."""
    reason: str
    """One line: why this happened."""
    verdict: Verdict | None = None
    """The last verdict, with every check's canary/baseline/threshold values."""
    images_from: tuple[str, ...] = ()
    images_to: tuple[str, ...] = ()
    checks_passed: int = 0
    checks_failed: int = 0
    window: float | None = None
    """Seconds of data each check looked at."""
    started_at: datetime | None = None
    """When the analysis of this revision started."""
    at: datetime
    example_traces: tuple[str, ...] = ()
    """Up to 5 failing trace ids from Tempo."""
    traceql: str | None = None
    """The TraceQL query that finds the canary's failing spans, for an Explore link."""
    slack_channel: str | None = None
    """Overrides the SLO's channel (the `canary.mop.dev/slack-channel` annotation)."""
    target: Target | None = None
    """What the last check measured (workloads, window): what root-cause evidence is collected for."""
    evidence: Evidence | None = None
    """Root-cause evidence (routes, downstream cause, traces, log lines), added after a rollback."""

    @property
    def key(self) -> str:
        """Identity for deduplication: exactly one message per (deployment, revision, event)."""
        return f"{self.namespace}/{self.deployment}@{self.revision}:{self.type}"
