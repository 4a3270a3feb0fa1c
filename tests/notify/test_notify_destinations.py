"""Which sinks an event goes to, from the SLO's notify section; ledger files; delivery policy."""

from __future__ import annotations

import json

import pytest
from notify_fixtures import event
from pydantic import SecretStr, ValidationError

from canary.config.slo import NotifyEvent, ServiceSLO, default_slo
from canary.controller.status import CanaryStatus
from canary.notify.destinations import Destination, SecretLocation, SinkKind, destinations_for
from canary.notify.settings import DeliveryPolicy, RenderSettings
from canary.vocabulary import CanaryPhase, Mode

DEFAULT_SECRET = SecretLocation(namespace="canary-system", name="slack-default")


def slo(notify: dict[str, object]) -> ServiceSLO:
    return ServiceSLO.model_validate(
        {"metadata": {"name": "checkout", "namespace": "shop"}, "spec": {"service": "checkout", "notify": notify}}
    )


def test_slack_secret_channel_and_mention_come_from_the_slo() -> None:
    config = slo({"slack": {"webhookSecretRef": {"name": "team-slack"}, "channel": "#checkout", "mention": "@oncall"}})
    [d] = destinations_for(event(), config, DEFAULT_SECRET)
    assert d.kind is SinkKind.SLACK
    assert d.secret == SecretLocation(namespace="shop", name="team-slack", key="url")
    assert (d.channel, d.mention) == ("#checkout", "@oncall")


def test_promotions_and_recoveries_do_not_ping_unless_configured() -> None:
    config = slo({"slack": {"webhookSecretRef": {"name": "team-slack"}, "mention": "@oncall"}})
    sent = [kind for kind in NotifyEvent if kind != "started"]
    mentions = {kind: destinations_for(event(type=kind), config)[0].mention for kind in sent}
    assert mentions == {
        NotifyEvent.ROLLED_BACK: "@oncall",
        NotifyEvent.FROZEN: "@oncall",
        NotifyEvent.BACKEND_DOWN: "@oncall",
        NotifyEvent.STUCK: "@oncall",
        NotifyEvent.PROMOTED: None,
        NotifyEvent.BACKEND_RECOVERED: None,
    }
    everything = slo(
        {"slack": {"webhookSecretRef": {"name": "s"}, "mention": "@oncall", "mentionOn": ["promoted", "rolled-back"]}}
    )
    [promoted] = destinations_for(event(type=NotifyEvent.PROMOTED), everything)
    [frozen] = destinations_for(event(type=NotifyEvent.FROZEN), everything)
    assert (promoted.mention, frozen.mention) == ("@oncall", None)


def test_annotation_channel_overrides_the_slo_channel() -> None:
    config = slo({"slack": {"webhookSecretRef": {"name": "team-slack"}, "channel": "#checkout"}})
    [d] = destinations_for(event(slack_channel="#payments-war-room"), config)
    assert d.channel == "#payments-war-room"


def test_controller_default_secret_when_the_slo_names_none() -> None:
    [d] = destinations_for(event(), default_slo("checkout", "shop"), DEFAULT_SECRET)
    assert d.secret == DEFAULT_SECRET
    assert destinations_for(event(), default_slo("checkout", "shop")) == []
    [d] = destinations_for(event(), slo({"slack": {"channel": "#c"}}), DEFAULT_SECRET)
    assert d.secret == DEFAULT_SECRET and d.channel == "#c"


def test_events_are_filtered_by_each_sinks_list() -> None:
    config = slo(
        {
            "slack": {"webhookSecretRef": {"name": "s"}, "events": ["rolled-back", "started"]},
            "webhook": {"urlSecretRef": {"name": "w", "key": "endpoint"}, "events": ["promoted"]},
        }
    )
    assert [d.kind for d in destinations_for(event(type=NotifyEvent.STARTED), config)] == [SinkKind.SLACK]
    assert [d.kind for d in destinations_for(event(type=NotifyEvent.FROZEN), config)] == []
    [hook] = destinations_for(event(type=NotifyEvent.PROMOTED), config)
    assert hook.kind is SinkKind.WEBHOOK and hook.secret == SecretLocation(namespace="shop", name="w", key="endpoint")
    # the default list leaves out `started`
    assert destinations_for(event(type=NotifyEvent.STARTED), default_slo("c", "shop"), DEFAULT_SECRET) == []


def test_destination_needs_exactly_one_url_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of `url` and `secret`"):
        Destination(kind=SinkKind.SLACK)
    with pytest.raises(ValidationError, match="exactly one of `url` and `secret`"):
        Destination(kind=SinkKind.SLACK, url=SecretStr("https://x"), secret=DEFAULT_SECRET)
    assert "hooks.slack.com" not in repr(Destination(kind=SinkKind.SLACK, url=SecretStr("https://hooks.slack.com/x")))


def test_delivery_keys_are_stored_as_one_line_and_read_back() -> None:
    key = event().delivery_key("slack")
    status = CanaryStatus(phase=CanaryPhase.ROLLED_BACK, mode=Mode.GUARD, delivered=[key])
    stored = json.loads(status.to_annotation())["delivered"]
    assert stored == ["shop/checkout@8:rolled-back|slack"]
    assert CanaryStatus.model_validate_json(status.to_annotation()).delivered == [key]
    with pytest.raises(ValidationError, match=r"is not ns/name@revision:event\|sink"):
        CanaryStatus(phase=CanaryPhase.ROLLED_BACK, mode=Mode.GUARD, delivered=["checkout"])  # type: ignore[list-item]


def test_default_policy_rides_out_an_hour_of_slack_downtime() -> None:
    policy = DeliveryPolicy()
    assert policy.max_age >= 3600
    # even with the least jitter, max_attempts failures take longer than an hour
    assert sum(policy.backoff(n, 0.0) for n in range(1, policy.max_attempts)) > 3600
    assert policy.backoff(50, 1.0) == policy.backoff_cap
    with pytest.raises(ValidationError, match="backoff_cap"):
        DeliveryPolicy(backoff_base=10, backoff_cap=1)


def test_render_settings_reject_a_grafana_url_that_would_break_links() -> None:
    assert RenderSettings(grafana_url="https://grafana.example.com/").grafana_url == "https://grafana.example.com"
    with pytest.raises(ValidationError, match="grafana_url must be an http"):
        RenderSettings(grafana_url="https://grafana.example.com/|x>")
