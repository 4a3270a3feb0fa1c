"""Where an event goes: the SLO's Slack and generic webhook sinks, filtered by their event lists. Pure."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from canary.config.slo import DEFAULT_NOTIFY_EVENTS, SecretKeyRef, ServiceSLO
from canary.notify.events import CanaryEvent


class SinkKind(StrEnum):
    SLACK = "slack"
    """A Slack incoming webhook: Block Kit message, success is 200 `ok`."""
    WEBHOOK = "webhook"
    """Any URL that takes the generic JSON event payload; success is any 2xx."""


class SecretLocation(BaseModel):
    """One key of one Kubernetes Secret, holding a webhook URL."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    name: str
    key: str = "url"

    def __str__(self) -> str:
        return f"Secret {self.namespace}/{self.name} key {self.key!r}"


class Destination(BaseModel):
    """One sink for one event: a webhook URL given directly or read from a Secret when sending."""

    model_config = ConfigDict(frozen=True)

    kind: SinkKind
    url: SecretStr | None = None
    secret: SecretLocation | None = None
    channel: str | None = None
    mention: str | None = None
    bot: bool = False
    """Slack bot mode: the secret (or `url`) holds a bot token; the message goes through `chat.postMessage`."""

    @model_validator(mode="after")
    def _one_source(self) -> Destination:
        if (self.url is None) == (self.secret is None):
            raise ValueError("a destination needs exactly one of `url` and `secret`")
        return self

    @property
    def label(self) -> str:
        """How messages name this kind of sink: `Slack webhook` or `JSON webhook`."""
        if self.kind is SinkKind.SLACK:
            return "Slack chat.postMessage" if self.bot else "Slack webhook"
        return "JSON webhook"

    @property
    def sink(self) -> str:
        """Name in delivery keys and the `sink` metric label."""
        return self.kind.value


def _location(ref: SecretKeyRef, namespace: str) -> SecretLocation:
    return SecretLocation(namespace=namespace, name=ref.name, key=ref.key)


def destinations_for(
    event: CanaryEvent, slo: ServiceSLO, default_slack_secret: SecretLocation | None = None
) -> list[Destination]:
    """The sinks `slo` sends `event` to.

    Slack: the SLO's `notify.slack.webhookSecretRef` (a Secret in the SLO's namespace), else the
    controller-wide `default_slack_secret`; channel from `event.slack_channel`, else the SLO's.
    Generic webhook: `notify.webhook.urlSecretRef`. Each only for the event types it lists.
    """
    namespace = slo.metadata.namespace or event.namespace
    notify = slo.spec.notify
    out: list[Destination] = []
    slack = notify.slack
    events = slack.events if slack else DEFAULT_NOTIFY_EVENTS
    ref = slack.webhook_secret_ref or slack.bot_token_secret_ref if slack else None
    secret = _location(ref, namespace) if ref else default_slack_secret
    if secret is not None and event.type in events:
        out.append(
            Destination(
                kind=SinkKind.SLACK,
                secret=secret,
                channel=event.slack_channel or (slack.channel if slack else None),
                mention=slack.mention if slack and event.type in slack.mention_on else None,
                bot=bool(slack and slack.bot_token_secret_ref),
            )
        )
    if notify.webhook is not None and event.type in notify.webhook.events:
        out.append(Destination(kind=SinkKind.WEBHOOK, secret=_location(notify.webhook.url_secret_ref, namespace)))
    return out
