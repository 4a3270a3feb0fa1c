"""Slack bot-token mode: `chat.postMessage` with a Bearer token and a `channel` (incoming webhooks post to
their own channel and ignore `channel`). Slack answers HTTP 200 with `ok`; an error is in the body."""

from __future__ import annotations

import pytest
from notify_fixtures import FAST, Recorder, event
from prometheus_client import CollectorRegistry
from pydantic import SecretStr, ValidationError

from canary.config.slo import ServiceSLO
from canary.notify.destinations import Destination, SecretLocation, SinkKind, destinations_for
from canary.notify.notifier import Notifier
from canary_testkit.ledger import MemoryLedger
from canary_testkit.slack import Reply, SlackSim


def bot(sim: SlackSim, channel: str = "#checkout", token: str | None = None) -> Destination:
    return Destination(kind=SinkKind.SLACK, url=SecretStr(token or sim.bot_token), channel=channel, bot=True)


def notifier(sim: SlackSim, recorder: Recorder, registry: CollectorRegistry) -> Notifier:
    return Notifier(MemoryLedger(), policy=FAST, on_permanent_failure=recorder.on_failure,
                    on_delivered=recorder.on_delivered, registry=registry, slack_api_url=sim.api_url)


def test_bot_mode_posts_to_the_channel_with_the_token(slack: SlackSim, registry: CollectorRegistry) -> None:
    recorder = Recorder()
    with notifier(slack, recorder, registry) as n:
        n.publish(event(), [bot(slack)])
        assert recorder.wait(delivered=1)
    [request] = slack.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["Authorization"] == f"Bearer {slack.bot_token}"
    [message] = slack.messages
    assert message["channel"] == "#checkout" and message["blocks"][0]["text"]["text"].startswith("checkout 1.5.0")
    assert recorder.failures == []


@pytest.mark.parametrize(
    ("destination", "error"),
    [
        (lambda sim: bot(sim, channel="#nope"), "channel_not_found"),
        (lambda sim: bot(sim, token="xoxb-wrong"), "invalid_auth"),
    ],
)
def test_an_ok_false_answer_is_a_permanent_failure_naming_slacks_error(
    slack: SlackSim, registry: CollectorRegistry, destination: object, error: str
) -> None:
    recorder = Recorder()
    with notifier(slack, recorder, registry) as n:
        n.publish(event(), [destination(slack)])  # type: ignore[operator]
        assert recorder.wait(failures=1)
    [(_, reason)] = recorder.failures
    assert reason.startswith("Slack chat.postMessage") and f"HTTP 200 {error}" in reason
    assert slack.bot_token not in reason and slack.messages == []


def test_ratelimited_and_server_errors_are_retried(slack: SlackSim, registry: CollectorRegistry) -> None:
    recorder = Recorder()
    slack.script(Reply(200, '{"ok": false, "error": "ratelimited"}', (("Retry-After", "0"),)),
                 Reply(200, '{"ok": false, "error": "internal_error"}'))
    with notifier(slack, recorder, registry) as n:
        n.publish(event(), [bot(slack)])
        assert recorder.wait(delivered=1)
    assert len(slack.requests) == 3 and len(slack.messages) == 1


def test_slo_bot_token_needs_a_channel_and_makes_bot_destinations() -> None:
    def slo(slack: dict[str, object]) -> ServiceSLO:
        return ServiceSLO.model_validate({"metadata": {"name": "c", "namespace": "shop"},
                                          "spec": {"service": "c", "notify": {"slack": slack}}})

    with pytest.raises(ValidationError, match="botTokenSecretRef needs a channel"):
        slo({"botTokenSecretRef": {"name": "slack-bot", "key": "token"}})
    with pytest.raises(ValidationError, match="not both"):
        slo({"botTokenSecretRef": {"name": "b", "key": "token"}, "webhookSecretRef": {"name": "w"}, "channel": "#c"})
    [d] = destinations_for(event(), slo({"botTokenSecretRef": {"name": "slack-bot", "key": "token"}, "channel": "#c"}))
    assert d.bot and d.channel == "#c" and d.secret == SecretLocation(namespace="shop", name="slack-bot", key="token")
    assert d.label == "Slack chat.postMessage"
