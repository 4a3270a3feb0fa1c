"""The typed event the controller emits at each outcome; every sink renders it from this alone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

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
    def key(self) -> EventKey:
        """Identity for deduplication: exactly one message per (deployment, revision, event)."""
        return EventKey(namespace=self.namespace, deployment=self.deployment, revision=self.revision, type=self.type)

    def delivery_key(self, sink: str) -> DeliveryKey:
        return DeliveryKey(event=self.key, sink=sink)


class EventKey(BaseModel):
    """One event of one revision of one Deployment; written `ns/name@revision:event`."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    deployment: str
    revision: str
    type: NotifyEvent

    def __str__(self) -> str:
        return f"{self.namespace}/{self.deployment}@{self.revision}:{self.type}"


class DeliveryKey(BaseModel):
    """The unit of exactly-once delivery: one event to one sink; written `ns/name@revision:event|sink`."""

    model_config = ConfigDict(frozen=True)

    event: EventKey
    sink: str

    def __str__(self) -> str:
        return f"{self.event}|{self.sink}"

    @classmethod
    def parse(cls, value: object) -> object:
        """A key as written in the status annotation (`ns/name@revision:event|sink`) into its fields;
        anything else is left to validation, which names what is wrong."""
        if not isinstance(value, str):
            return value
        event, bar, sink = value.partition("|")
        ref, at, rest = event.partition("@")
        namespace, slash, deployment = ref.partition("/")
        revision, colon, kind = rest.rpartition(":")
        if not (bar and at and slash and colon):
            raise ValueError(f"delivery key {value[:120]!r} is not ns/name@revision:event|sink")
        return {"event": {"namespace": namespace, "deployment": deployment, "revision": revision, "type": kind},
                "sink": sink}


StoredDeliveryKey = Annotated[DeliveryKey, BeforeValidator(DeliveryKey.parse), PlainSerializer(str, return_type=str)]
"""A DeliveryKey kept in the status annotation as its one-line string."""
