"""Delivery over real HTTP to the Slack sim: pacing, 429, retries, give-up, 4xx, dedup, restarts, hangs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from notify_fixtures import FAST, WAIT, Recorder, event
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from canary.config.slo import NotifyEvent
from canary.notify.destinations import Destination, SinkKind
from canary.notify.notifier import Notifier
from canary.notify.settings import DeliveryPolicy
from canary_testkit.ledger import MemoryLedger
from canary_testkit.slack import Reply, SlackSim


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def slack_to(sim: SlackSim, **kw: str) -> Destination:
    return Destination(kind=SinkKind.SLACK, url=SecretStr(sim.url), **kw)


def make(
    ledger: MemoryLedger, recorder: Recorder, registry: CollectorRegistry, policy: DeliveryPolicy = FAST, **kw: object
) -> Notifier:
    return Notifier(
        ledger,
        policy=policy,
        on_permanent_failure=recorder.on_failure,
        on_delivered=recorder.on_delivered,
        registry=registry,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def notifier(recorder: Recorder, registry: CollectorRegistry) -> Iterator[Notifier]:
    n = make(MemoryLedger(), recorder, registry)
    n.start()
    yield n
    n.close()


def count(registry: CollectorRegistry, result: str, sink: str = "slack") -> float:
    return registry.get_sample_value("canary_notifications_total", {"sink": sink, "result": result}) or 0.0


def test_delivered_once_and_recorded_in_the_ledger(
    slack: SlackSim, notifier: Notifier, recorder: Recorder, registry: CollectorRegistry
) -> None:
    e = event()
    notifier.publish(e, [slack_to(slack, channel="#checkout")])
    assert recorder.wait(delivered=1)
    [message] = slack.messages
    assert message["blocks"][0]["text"]["text"].startswith("checkout 1.5.0 rolled back")
    assert message["channel"] == "#checkout"
    assert notifier.ledger.is_delivered(e.delivery_key("slack"))
    assert count(registry, "delivered") == 1
    assert recorder.failures == []


def test_429_waits_for_retry_after_then_delivers(
    slack: SlackSim, notifier: Notifier, recorder: Recorder, registry: CollectorRegistry
) -> None:
    slack.script(Reply.rate_limited(retry_after=1), Reply.ok())
    notifier.publish(event(), [slack_to(slack)])
    assert recorder.wait(delivered=1)
    first, second = slack.requests
    assert first.status == 429 and second.status == 200
    assert first.answered_at is not None
    assert second.at - first.answered_at >= 1.0  # the server's own clock: Retry-After was honoured
    assert count(registry, "rate_limited") == 1 and count(registry, "delivered") == 1
    assert recorder.failures == []


def test_server_errors_are_retried_with_growing_backoff_until_slack_recovers(
    slack: SlackSim, recorder: Recorder, registry: CollectorRegistry
) -> None:
    policy = DeliveryPolicy(min_interval=0, backoff_base=0.05, backoff_cap=1, max_attempts=10, max_age=60)
    slack.script(*[Reply.server_error()] * 4, Reply.ok())
    with make(MemoryLedger(), recorder, registry, policy) as n:
        n.publish(event(), [slack_to(slack)])
        assert recorder.wait(delivered=1)
    requests = slack.requests
    assert [r.status for r in requests] == [500, 500, 500, 500, 200]
    for failures, (before, after) in enumerate(itertools.pairwise(requests), start=1):
        assert before.answered_at is not None
        # equal jitter: at least half of base * 2^(failures-1)
        assert after.at - before.answered_at >= 0.05 * 2 ** (failures - 1) / 2
    assert count(registry, "retried") == 4 and count(registry, "delivered") == 1
    assert recorder.failures == []


def test_server_errors_give_up_after_max_attempts_and_report_once(
    slack: SlackSim, recorder: Recorder, registry: CollectorRegistry
) -> None:
    policy = DeliveryPolicy(min_interval=0, backoff_base=0.01, backoff_cap=0.02, max_attempts=3, max_age=60)
    slack.set_default(Reply.server_error())
    ledger = MemoryLedger()
    e = event()
    with make(ledger, recorder, registry, policy) as n:
        n.publish(e, [slack_to(slack)])
        assert recorder.wait(failures=1)
        assert n.wait_idle(WAIT)
    assert len(slack.requests) == 3
    [(failed, reason)] = recorder.failures
    assert failed == e
    assert "gave up after 3 failed attempts" in reason and "HTTP 500 internal_error" in reason
    assert slack.token not in reason and "/services/T…/***" in reason
    assert not ledger.is_delivered(e.delivery_key("slack"))
    assert count(registry, "gave_up") == 1 and count(registry, "retried") == 2


def test_give_up_when_the_next_retry_would_pass_the_max_age(
    slack: SlackSim, recorder: Recorder, registry: CollectorRegistry
) -> None:
    policy = DeliveryPolicy(min_interval=0, backoff_base=0.1, backoff_cap=0.4, max_attempts=1000, max_age=1.0)
    slack.set_default(Reply.server_error())
    with make(MemoryLedger(), recorder, registry, policy) as n:
        n.publish(event(), [slack_to(slack)])
        assert recorder.wait(failures=1)
        assert n.wait_idle(WAIT)
    [(_, reason)] = recorder.failures
    attempts = len(slack.requests)
    # delays of 0.05-0.1, 0.1-0.2, then 0.2-0.4 s fit a handful of attempts in 1 s, far from max_attempts
    assert 2 <= attempts < 15
    assert f"gave up after {attempts} failed attempts" in reason


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply.channel_not_found(), "HTTP 404 channel_not_found"),
        (Reply.invalid_payload(), "HTTP 400 invalid_payload"),
        (Reply.action_prohibited(), "HTTP 403 action_prohibited"),
        (Reply.channel_is_archived(), "HTTP 410 channel_is_archived"),
    ],
)
def test_client_errors_are_not_retried_and_reported_once(
    slack: SlackSim, notifier: Notifier, recorder: Recorder, registry: CollectorRegistry, reply: Reply, code: str
) -> None:
    slack.set_default(reply)
    e = event()
    notifier.publish(e, [slack_to(slack)])
    assert recorder.wait(failures=1)
    assert notifier.wait_idle(WAIT)
    assert not slack.wait_for(2, timeout=0.3)
    assert len(slack.requests) == 1
    [(failed, reason)] = recorder.failures
    assert failed == e and code in reason
    assert slack.token not in reason
    assert count(registry, "failed") == 1 and count(registry, "delivered") == 0
    assert not notifier.ledger.is_delivered(e.delivery_key("slack"))


def test_messages_to_one_webhook_are_paced(slack: SlackSim, recorder: Recorder, registry: CollectorRegistry) -> None:
    policy = FAST.model_copy(update={"min_interval": 0.25})
    with make(MemoryLedger(), recorder, registry, policy) as n:
        for revision in ("8", "9", "10"):
            n.publish(event(revision=revision), [slack_to(slack)])
        assert recorder.wait(delivered=3)
    requests = slack.requests
    assert len(requests) == 3
    for before, after in itertools.pairwise(requests):
        assert before.answered_at is not None and after.at - before.answered_at >= 0.25


def test_same_event_published_repeatedly_is_sent_once(
    slack: SlackSim, notifier: Notifier, recorder: Recorder, registry: CollectorRegistry
) -> None:
    slack.script(Reply.hang_up())  # the first delivery is in flight while the controller publishes again
    e = event()
    notifier.publish(e, [slack_to(slack)])
    assert slack.wait_for(1, WAIT)
    notifier.publish(e, [slack_to(slack)])
    notifier.publish(e, [slack_to(slack)])
    slack.release()
    assert recorder.wait(delivered=1)
    notifier.publish(e, [slack_to(slack)])  # and again once it is delivered
    assert notifier.wait_idle(WAIT)
    assert len(slack.requests) == 1
    assert count(registry, "duplicate") == 3


def test_no_duplicates_after_a_restart(slack: SlackSim, recorder: Recorder, registry: CollectorRegistry) -> None:
    ledger = MemoryLedger()
    e = event()
    with make(ledger, recorder, registry) as first:
        first.publish(e, [slack_to(slack)])
        assert recorder.wait(delivered=1)
    with make(ledger, recorder, registry) as second:
        second.publish(e, [slack_to(slack)])  # the controller publishes its outbox again after a restart
        assert second.wait_idle(WAIT)
    assert len(slack.requests) == 1
    assert len(recorder.delivered) == 1
    assert count(registry, "duplicate") == 1


def test_undelivered_message_is_sent_after_a_restart(
    slack: SlackSim, recorder: Recorder, registry: CollectorRegistry
) -> None:
    ledger = MemoryLedger()
    e, other = event(), event(type=NotifyEvent.PROMOTED, revision="9")
    slack.set_default(Reply.server_error())  # Slack is down while the first controller runs
    with make(ledger, recorder, registry) as first:
        first.publish(e, [slack_to(slack)])
        assert slack.wait_for(1, WAIT)
    assert recorder.delivered == [] and recorder.failures == []
    assert not ledger.is_delivered(e.delivery_key("slack")), "a failed attempt is not recorded as delivered"

    slack.set_default(Reply.ok())
    with make(ledger, recorder, registry) as second:
        for pending in (e, other):  # what the next controller finds in the status outboxes
            second.publish(pending, [slack_to(slack)])
        assert recorder.wait(delivered=2)
        assert second.wait_idle(WAIT)
    headers = sorted(m["blocks"][0]["text"]["text"] for m in slack.messages)
    assert headers == [
        "checkout 1.5.0 promoted: 2 checks passed",
        "checkout 1.5.0 rolled back: 5.0% of requests failing",
    ]
    assert ledger.is_delivered(e.delivery_key("slack"))


def test_publish_returns_while_the_webhook_hangs(
    slack: SlackSim, notifier: Notifier, recorder: Recorder, registry: CollectorRegistry
) -> None:
    slack.script(Reply.hang_up())
    e = event()
    notifier.publish(e, [slack_to(slack)])  # returns at once...
    notifier.publish(event(revision="9"), [slack_to(slack)])  # ...and so does the next one
    assert slack.wait_for(1, WAIT)
    [held] = slack.requests
    assert held.status is None  # the server has not answered: publish did not wait for it
    assert recorder.delivered == []
    slack.release()
    assert recorder.wait(delivered=2)
    assert [r.status for r in slack.requests] == [200, 200]


def test_a_timeout_is_retried(slack: SlackSim, recorder: Recorder, registry: CollectorRegistry) -> None:
    policy = FAST.model_copy(update={"timeout": 0.3})
    slack.script(Reply.hang_up())
    with make(MemoryLedger(), recorder, registry, policy) as n:
        n.publish(event(), [slack_to(slack)])
        assert recorder.wait(delivered=1)
    requests = slack.requests
    assert len(requests) >= 2 and requests[-1].status == 200
    assert count(registry, "retried") == len(requests) - 1 and len(recorder.delivered) == 1
    slack.release()


def test_a_hanging_webhook_does_not_hold_up_another(recorder: Recorder, registry: CollectorRegistry) -> None:
    with SlackSim(hang_limit=10) as stuck, SlackSim(slack=False) as healthy:
        stuck.set_default(Reply.hang_up())
        with make(MemoryLedger(), recorder, registry) as n:
            n.publish(event(), [slack_to(stuck), Destination(kind=SinkKind.WEBHOOK, url=SecretStr(healthy.url))])
            assert recorder.wait(delivered=1)
            assert recorder.delivered[0][1] == "webhook"
            assert stuck.wait_for(1, WAIT)
            assert stuck.requests[0].status is None  # still held: the JSON webhook did not wait for it
            stuck.release()
            assert recorder.wait(delivered=2)


def test_generic_webhook_receives_the_event_payload(recorder: Recorder, registry: CollectorRegistry) -> None:
    e = event()
    with SlackSim(slack=False) as hook, make(MemoryLedger(), recorder, registry) as n:
        n.publish(e, [Destination(kind=SinkKind.WEBHOOK, url=SecretStr(hook.url))])
        assert recorder.wait(delivered=1)
        [payload] = hook.messages
    assert payload["schemaVersion"] == 1 and payload["key"] == str(e.key) == "shop/checkout@8:rolled-back"
    assert payload["verdict"]["phase"] == "fail"
    assert count(registry, "delivered", sink="webhook") == 1
