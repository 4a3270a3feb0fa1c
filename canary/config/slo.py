"""The ServiceSLO: a service's objectives and how its canaries are analysed, rolled back and reported.

Field names in YAML are camelCase (`latencyP99`, `failedChecks`); every field but `spec.service` has a
default, documented on the field. Unknown fields are rejected so that a typo never silently falls
back to a default.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from canary.config.units import Duration, Percent

DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
"""RFC 1123 subdomain (ASCII only): Kubernetes object names, at most 253 characters."""
DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
"""RFC 1123 label (ASCII only): namespaces, at most 63 characters."""
MAX_RATIO = 1000.0
MAX_COUNT = 1_000_000
MIN_INTERVAL = 0.5
MIN_WINDOW = 1.0
MAX_WINDOW = 7 * 86400.0
MAX_LATENCY = 3600.0
MAX_QUERY_CHARS = 10_000


def object_name_problem(value: str, label: bool = False) -> str | None:
    """Why `value` is not a valid Kubernetes object name (label: a namespace), or None."""
    pattern, limit = (DNS_LABEL, 63) if label else (DNS_SUBDOMAIN, 253)
    if len(value) > limit:
        return f"{value[:80]!r} is longer than {limit} characters"
    if not pattern.fullmatch(value):
        kind = "RFC 1123 label" if label else "RFC 1123 subdomain"
        return f"{value[:80]!r} is not a valid {kind} (lowercase a-z, 0-9, '-'" + ("" if label else ", '.'") + ")"
    return None


API_VERSION: Final = "canary.mop.dev/v1alpha1"
KIND: Final = "ServiceSLO"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, allow_inf_nan=False
    )


class RollbackAction(StrEnum):
    UNDO = "undo"
    SCALE_TO_ZERO = "scale-to-zero"
    PAUSE = "pause"
    NOTIFY_ONLY = "notify-only"


class BackendFailurePolicy(StrEnum):
    HOLD = "hold"
    ROLLBACK = "rollback"


class OnStuck(StrEnum):
    HOLD = "hold"
    ROLLBACK = "rollback"
    PROMOTE = "promote"


class InconclusivePolicy(StrEnum):
    HOLD = "hold"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class PromoteMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class NotifyEvent(StrEnum):
    STARTED = "started"
    ROLLED_BACK = "rolled-back"
    PROMOTED = "promoted"
    FROZEN = "frozen"
    BACKEND_DOWN = "backend-down"
    BACKEND_RECOVERED = "backend-recovered"
    STUCK = "stuck"


DEFAULT_NOTIFY_EVENTS = (
    NotifyEvent.ROLLED_BACK,
    NotifyEvent.FROZEN,
    NotifyEvent.STUCK,
    NotifyEvent.BACKEND_DOWN,
    NotifyEvent.BACKEND_RECOVERED,
    NotifyEvent.PROMOTED,
)


class Objectives(_Model):
    availability: Percent = 99.0
    """% of requests that must succeed (HTTP 5xx and gRPC error codes fail). Default 99."""
    latency_p99: Duration | None = Field(0.5, le=MAX_LATENCY)
    """p99 request latency limit (at most 1h). Default 500ms; null disables the check."""
    trace_error_rate: Percent | None = None
    """Max % of server spans with status error, from Tempo. Default: no trace check."""


class Comparison(_Model):
    max_error_rate_ratio: float = Field(2.0, ge=1.0, le=MAX_RATIO)
    """Canary error rate may be at most this many times the baseline's. Default 2.0."""
    max_latency_ratio: float = Field(1.5, ge=1.0, le=MAX_RATIO)
    """Canary p99 may be at most this many times the baseline's. Default 1.5."""


class Analysis(_Model):
    interval: Duration = Field(30.0, ge=MIN_INTERVAL, le=MAX_WINDOW)
    """How often a check runs (the controller's --min-interval, 5s by default, is the floor). Default 30s."""
    window: Duration = Field(120.0, ge=MIN_WINDOW, le=MAX_WINDOW)
    """Span each check measures (1s to 7d); the judge tests the counts added up since the analysis began
    (each request counted once, see canary.cumulative). Keep it several scrape intervals long. Default 2m."""
    min_requests: int = Field(50, ge=1, le=MAX_COUNT)
    """Fewer canary requests than this since the analysis began: inconclusive, never a decision. Default 50."""
    successful_checks: int = Field(10, ge=1, le=MAX_COUNT)
    """Checks at which the evidence shows the canary within every limit, needed to promote. Default 10."""
    failed_checks: int = Field(1, ge=1, le=MAX_COUNT)
    """Consecutive checks at which the evidence must cross the rollback boundary. Default 1: one
    crossing is decisive (the 1% guarantee holds for any value; more only delays the rollback)."""
    max_duration: Duration | None = Field(None, ge=MIN_WINDOW, le=MAX_WINDOW)
    """Longest analysis: a canary still inconclusive after it gets `onInconclusive`. Default: none."""
    on_inconclusive: InconclusivePolicy = InconclusivePolicy.HOLD
    """hold (keep the canary held and keep analysing) | promote | rollback, once `maxDuration` is over
    with no decision (never for a canary without data or with a backend in error). Default hold."""
    backend_error_limit: int = Field(4, ge=1, le=MAX_COUNT)
    """Consecutive backend errors before `onBackendFailure` applies. Default 4."""
    on_backend_failure: BackendFailurePolicy = BackendFailurePolicy.HOLD
    """`hold` (freeze and alert) or `rollback`. Default hold."""
    max_wait: Duration = Field(600.0, gt=0)
    """How long a canary may stay not ready, or below `minRequests` in every check, before it is stuck:
    a Warning Event, a notification and the `canary_stuck` metric, once per revision. Default 10m."""
    on_stuck: OnStuck = OnStuck.HOLD
    """What a stuck canary then does: `hold` (keep waiting), `rollback` or `promote`. Default hold."""

    @model_validator(mode="after")
    def _window_covers_interval(self) -> Analysis:
        if self.window < self.interval:
            raise ValueError(
                f"window ({self.window:g}s) must be at least the interval ({self.interval:g}s), "
                "or requests between checks would never be looked at"
            )
        return self


class Rollback(_Model):
    action: RollbackAction | None = None
    """undo | scale-to-zero | pause | notify-only. Default: undo in guard mode, scale-to-zero in canary mode."""


class SecretKeyRef(_Model):
    name: str = Field(min_length=1)
    key: str = "url"


DEFAULT_MENTION_EVENTS = (NotifyEvent.ROLLED_BACK, NotifyEvent.FROZEN, NotifyEvent.STUCK, NotifyEvent.BACKEND_DOWN)
"""Events that ping `mention`: those that need someone; a promotion or a recovery does not."""


class SlackNotify(_Model):
    webhook_secret_ref: SecretKeyRef | None = None
    """Secret holding the incoming-webhook URL. Default: the controller-wide Secret."""
    channel: str | None = None
    mention: str | None = None
    """`@oncall`, `<!subteam^ID>` or `<@U123>`."""
    mention_on: tuple[NotifyEvent, ...] = DEFAULT_MENTION_EVENTS
    """Events whose message carries `mention`. Default: rolled-back, frozen, backend-down (no ping on promotions)."""
    events: tuple[NotifyEvent, ...] = DEFAULT_NOTIFY_EVENTS
    """Events that are sent. Default: all but `started`."""
    bot_token_secret_ref: SecretKeyRef | None = None
    """Bot mode: a Secret holding a bot token (`xoxb-...`, scope `chat:write`); messages go through
    `chat.postMessage` to `channel` (incoming webhooks post to their own channel and ignore `channel`)."""

    @model_validator(mode="after")
    def _bot_needs_channel(self) -> SlackNotify:
        if self.bot_token_secret_ref is not None and not self.channel:
            raise ValueError("botTokenSecretRef needs a channel: chat.postMessage posts to `channel`")
        if self.bot_token_secret_ref is not None and self.webhook_secret_ref is not None:
            raise ValueError("give webhookSecretRef or botTokenSecretRef, not both")
        return self


class WebhookNotify(_Model):
    url_secret_ref: SecretKeyRef
    """Secret holding the URL that receives the JSON event payload."""
    events: tuple[NotifyEvent, ...] = DEFAULT_NOTIFY_EVENTS


class Notify(_Model):
    slack: SlackNotify | None = None
    webhook: WebhookNotify | None = None


class MetricsPreset(StrEnum):
    OBI = "obi"
    SPANMETRICS = "spanmetrics"
    CUSTOM = "custom"


class QueryTemplates(_Model):
    """User-supplied PromQL for `preset: custom`.

    Each template must keep the grouping labels and may use the placeholders `$window` (e.g. `2m`),
    `$selector` (the label matchers the controller adds, already escaped) and `$service`.
    `requests` and `errors` return counts per workload over the window; `latencyBuckets` returns
    counts per workload and `le`.
    """

    requests: str = Field(max_length=MAX_QUERY_CHARS)
    errors: str = Field(max_length=MAX_QUERY_CHARS)
    latency_buckets: str = Field(max_length=MAX_QUERY_CHARS)



class Metrics(_Model):
    preset: MetricsPreset = MetricsPreset.OBI
    """obi (OBI's http/rpc server metrics) | spanmetrics (Tempo's metrics-generator) | custom."""
    queries: QueryTemplates | None = None

    @model_validator(mode="after")
    def _custom_needs_queries(self) -> Metrics:
        if self.preset is MetricsPreset.CUSTOM and self.queries is None:
            raise ValueError("preset 'custom' needs 'queries' (requests, errors, latencyBuckets)")
        return self


class ServiceSLOSpec(_Model):
    service: str = Field(min_length=1, max_length=253)
    """`service_name` in metrics, `resource.service.name` in traces. Required."""

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if value != value.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError(f"{value[:80]!r} has surrounding spaces or control characters")
        return value
    objectives: Objectives = Objectives()
    comparison: Comparison = Comparison()
    analysis: Analysis = Analysis()
    rollback: Rollback = Rollback()
    promote: PromoteMode = PromoteMode.AUTO
    """Canary mode: `auto` copies a healthy canary into the baseline; `manual` waits for the
    `canary.mop.dev/promote: "true"` annotation. Default auto."""
    notify: Notify = Notify()
    metrics: Metrics = Metrics()


class ObjectMeta(_Model):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    namespace: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = object_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        problem = object_name_problem(value, label=True) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value


class ServiceSLO(_Model):
    api_version: Literal["canary.mop.dev/v1alpha1"] = API_VERSION
    kind: Literal["ServiceSLO"] = KIND
    metadata: ObjectMeta
    spec: ServiceSLOSpec

    @property
    def ref(self) -> str:
        """`namespace/name`, or just `name` when no namespace is set."""
        ns = self.metadata.namespace
        return f"{ns}/{self.metadata.name}" if ns else self.metadata.name


def default_slo(service: str, namespace: str | None = None) -> ServiceSLO:
    """The embedded SLO for a Deployment that names none: every field at its default."""
    return ServiceSLO(
        metadata=ObjectMeta(name="default", namespace=namespace), spec=ServiceSLOSpec(service=service)
    )
