"""Webhook URLs from Kubernetes Secrets (real client against the simulated API), and that they never leak."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
from kubernetes.client import CoreV1Api
from notify_fixtures import FAST, WAIT, Recorder, event
from prometheus_client import CollectorRegistry

from canary.config.slo import NotifyEvent, ServiceSLO
from canary.kube.events import EventRecorder
from canary.notify.destinations import SecretLocation
from canary.notify.events import CanaryEvent
from canary.notify.notifier import Notifier, SLONotifications
from canary.notify.secrets import SecretError, SecretResolver, mask_url
from canary.rbac import secret_grant
from canary_testkit.kube import KubeSim
from canary_testkit.kube.identity import install_controller_identity
from canary_testkit.ledger import MemoryLedger
from canary_testkit.slack import Reply, SlackSim

WHERE = SecretLocation(namespace="shop", name="slack-webhook", key="url")


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeSim]:
    with KubeSim(rollout_step_seconds=None) as sim:
        sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        yield sim


def put_secret(kube: KubeSim, name: str, data: dict[str, str], namespace: str = "shop") -> None:
    if kube.get("v1", "secrets", namespace, name) is not None:
        kube.delete("v1", "secrets", namespace, name)
    kube.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "stringData": data}
    )


def slo(**notify: object) -> ServiceSLO:
    return ServiceSLO.model_validate(
        {"metadata": {"name": "checkout", "namespace": "shop"}, "spec": {"service": "checkout", "notify": notify}}
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def secret_gets(kube: KubeSim, name: str) -> int:
    return sum(1 for r in kube.requests if r.method == "GET" and r.path.endswith(f"/secrets/{name}"))


def test_url_is_read_from_the_secret_and_cached_for_the_ttl(kube: KubeSim, slack: SlackSim) -> None:
    put_secret(kube, "slack-webhook", {"url": slack.url})
    clock = Clock()
    resolver = SecretResolver(CoreV1Api(kube.api_client()), ttl=30, clock=clock)
    before = secret_gets(kube, "slack-webhook")
    assert resolver.url(WHERE).get_secret_value() == slack.url
    assert slack.token not in repr(resolver.url(WHERE))
    clock.now = 29
    kube.delete("v1", "secrets", "shop", "slack-webhook")
    assert resolver.url(WHERE).get_secret_value() == slack.url  # cached
    assert secret_gets(kube, "slack-webhook") - before == 1
    clock.now = 31
    with pytest.raises(SecretError, match=r"Secret shop/slack-webhook key 'url': not found") as missing:
        resolver.url(WHERE)
    assert not missing.value.transient


def test_a_secret_the_controller_may_not_read_says_how_to_grant_it(kube: KubeSim, slack: SlackSim) -> None:
    identity = install_controller_identity(kube)
    put_secret(kube, "ungranted", {"url": slack.url})
    resolver = SecretResolver(CoreV1Api(kube.api_client(identity.token)), ttl=0)
    with pytest.raises(SecretError) as refused:
        resolver.url(SecretLocation(namespace="shop", name="ungranted"))
    assert str(refused.value) == (
        "Secret shop/ungranted key 'url': forbidden: the controller may not read it "
        "(grant it with: canary rbac grant-secrets -n shop --secret ungranted --apply)"
    )
    assert not refused.value.transient
    for obj in secret_grant("shop", ["ungranted"], (identity.namespace, identity.service_account)):
        kube.apply(obj, manager="canary")
    assert resolver.url(SecretLocation(namespace="shop", name="ungranted")).get_secret_value() == slack.url


def test_secret_problems_name_the_secret_and_key_but_never_the_value(kube: KubeSim, slack: SlackSim) -> None:
    resolver = SecretResolver(CoreV1Api(kube.api_client()), ttl=0)
    put_secret(kube, "wrong-key", {"webhook": slack.url})
    with pytest.raises(SecretError, match=r"Secret shop/wrong-key key 'url': no such key \(keys: webhook\)"):
        resolver.url(SecretLocation(namespace="shop", name="wrong-key"))
    put_secret(kube, "not-a-url", {"url": f"hooks.slack.com/{slack.token}"})
    with pytest.raises(SecretError, match="value is not an http") as bad:
        resolver.url(SecretLocation(namespace="shop", name="not-a-url"))
    assert slack.token not in str(bad.value)

    put_secret(kube, "flaky", {"url": slack.url})
    kube.fail_next("GET /api/v1/namespaces/shop/secrets/flaky", status=500)
    with pytest.raises(SecretError, match="API answered 500") as flaky:
        resolver.url(SecretLocation(namespace="shop", name="flaky"))
    assert flaky.value.transient
    assert resolver.url(SecretLocation(namespace="shop", name="flaky")).get_secret_value() == slack.url


def test_slo_secret_to_slack_end_to_end(kube: KubeSim, slack: SlackSim, registry: CollectorRegistry) -> None:
    put_secret(kube, "checkout-slack", {"webhook": slack.url})
    kube.fail_next("GET /api/v1/namespaces/shop/secrets/checkout-slack", status=503)  # retried, not fatal
    recorder = Recorder()
    config = {"slack": {"webhookSecretRef": {"name": "checkout-slack", "key": "webhook"}, "channel": "#checkout"}}
    notifier = Notifier(
        MemoryLedger(),
        policy=FAST,
        secrets=SecretResolver(CoreV1Api(kube.api_client())),
        on_delivered=recorder.on_delivered,
        on_permanent_failure=recorder.on_failure,
        registry=registry,
    )
    with notifier:
        sink = SLONotifications(notifier)
        sink.publish(event(), slo(**config))
        sink.publish(event(type=NotifyEvent.STARTED), slo(**config))  # not in the default event list
        assert recorder.wait(delivered=1)
        assert notifier.wait_idle(WAIT)
    [message] = slack.messages
    assert message["channel"] == "#checkout"
    assert message["blocks"][0]["text"]["text"].startswith("checkout 1.5.0 rolled back")
    assert recorder.failures == []


def test_the_webhook_url_never_reaches_logs_failure_reasons_or_events(
    kube: KubeSim, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "checkout", "namespace": "shop"}}
    deployment["metadata"]["uid"] = "4f1c8a2e-0000-4000-8000-000000000001"
    events = EventRecorder(kube.api_client())

    def on_failure(e: CanaryEvent, reason: str) -> None:  # what the controller does with a failure
        recorder.on_failure(e, reason)
        events.record(deployment, "Warning", "NotificationFailed", reason)

    policy = FAST.model_copy(update={"timeout": 0.5, "max_attempts": 2})
    with SlackSim(hang_limit=5) as archived, SlackSim(hang_limit=5) as down, SlackSim(hang_limit=5) as hanging:
        archived.set_default(Reply.channel_is_archived())
        down.set_default(Reply.server_error())
        hanging.set_default(Reply.hang_up())
        sims = {"archived": archived, "down": down, "hanging": hanging}
        for name, sim in sims.items():
            put_secret(kube, f"hook-{name}", {"url": sim.url})
        notifier = Notifier(
            MemoryLedger(),
            policy=policy,
            secrets=SecretResolver(CoreV1Api(kube.api_client())),
            on_permanent_failure=on_failure,
            registry=registry,
        )
        with notifier:
            for revision, name in enumerate([*sims, "missing"]):
                config = {"slack": {"webhookSecretRef": {"name": f"hook-{name}"}}}
                SLONotifications(notifier).publish(event(revision=str(revision)), slo(**config))
            assert recorder.wait(failures=4)
            assert notifier.wait_idle(WAIT)
        hanging.release()
    reasons = sorted(reason for _, reason in recorder.failures)
    assert any("HTTP 410 channel_is_archived" in r for r in reasons)
    assert any("gave up after 2 failed attempts" in r and "HTTP 500" in r for r in reasons)
    assert any("timed out after 0.5s" in r for r in reasons)
    assert any("Secret shop/hook-missing key 'url': not found" in r for r in reasons)
    assert "channel_is_archived" in caplog.text and "retry in" in caplog.text  # the logs do tell the story
    warnings = [e["message"] for e in kube.list("v1", "events", "shop") if e["reason"] == "NotificationFailed"]
    assert sorted(warnings) == reasons
    for sim in sims.values():
        encoded = base64.b64encode(sim.url.encode()).decode()
        for text in (caplog.text, *reasons, *warnings):
            assert sim.token not in text and encoded not in text
        assert mask_url(sim.url) in caplog.text


def test_mask_url() -> None:
    assert mask_url("https://hooks.slack.com/services/T0123/B456/abcdef") == "https://hooks.slack.com/services/T…/***"
    assert mask_url("https://user:pw@example.com:8443/hook?token=x") == "https://example.com:8443/***"
    assert mask_url("http://[::1") == "<invalid URL>"
