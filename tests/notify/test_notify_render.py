"""The Slack message and webhook payload built from a CanaryEvent: content, links, escaping, limits."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from notify_fixtures import AT, TRACEQL, event

from canary import __version__
from canary.config.slo import NotifyEvent
from canary.judge.model import CheckResult, Phase, Verdict
from canary.notify.blocks import validate_message
from canary.notify.events import CanaryEvent
from canary.notify.render import headline, render_slack, render_webhook
from canary.notify.settings import RenderSettings
from canary_testkit.slack import check_payload

ROLLED_BACK = "checkout 1.5.0 rolled back: 5.0% of requests failing"
"""The headline of `event()`: image tag, and the availability check's canary error rate in plain words."""
GRAFANA = RenderSettings(
    grafana_url="https://grafana.example.com/", cluster="prod-eu", tempo_datasource_uid="tempo-main"
)


def texts(message: dict[str, Any]) -> list[str]:
    """Every text a reader sees, block by block."""
    out = []
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", [])]
        out += [e["text"] for e in block.get("elements", [])]
    return out


def assert_slack_accepts(message: dict[str, Any]) -> None:
    assert validate_message(message) == []
    payload, problems, _ = check_payload(json.dumps(message).encode())
    assert problems == [], problems
    assert payload == message


def test_rollback_message_shows_the_breached_checks_with_their_values() -> None:
    e = event()
    message = render_slack(e, GRAFANA, channel="#checkout-alerts", mention="<!subteam^S0ONCALL>")
    assert_slack_accepts(message)
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": ROLLED_BACK, "emoji": True},
    }
    assert message["text"].startswith(f"<!subteam^S0ONCALL> {ROLLED_BACK} (shop/checkout): ")
    assert message["channel"] == "#checkout-alerts"
    body = "\n".join(texts(message))
    availability = next(c for c in e.verdict.checks if c.name == "availability")  # type: ignore[union-attr]
    assert availability.result is Phase.FAIL
    # canary 5% errors vs baseline 0.1% against the 1% objective, as the judge measured them
    line = next(t for t in texts(message) if "*availability*" in t)
    assert "canary *5.00%*" in line and "baseline 0.10%" in line and "limit 1.00%" in line
    assert "window 2m" in line and "sample size 2,000" in line
    assert "*error-rate-ratio*" in body
    assert "*Breached checks* (2)" in body
    for passed in ("sample-size", "latency-p99", "latency-ratio"):
        assert f"*{passed}*" not in body
    assert "*Revision*\n7 → 8" in body
    assert "`registry.example.com/shop/checkout:1.4.2` → `registry.example.com/shop/checkout:1.5.0`" in body
    assert "*Mode*\nguard" in body and "*Checks*\n2 passed, 3 failed" in body
    assert "*Analysis duration*\n4m30s" in body
    assert message["blocks"][-1]["type"] == "context"
    assert "cluster *prod-eu*" in body and f"mop-canary {__version__}" in body


def _query(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "grafana.example.com"
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def _links(message: dict[str, Any]) -> dict[str, str]:
    """label -> url for every `<url|label>` link in the message."""
    found = {}
    for text in texts(message):
        for piece in text.split("<")[1:]:
            url, _, rest = piece.partition("|")
            if url.startswith("http"):
                found[rest.split(">")[0]] = url
    return found


def test_grafana_links_open_the_dashboard_the_traceql_query_and_each_trace() -> None:
    traces = tuple(f"{i:032x}" for i in range(1, 8))
    message = render_slack(event(example_traces=traces), GRAFANA)
    assert_slack_accepts(message)
    links = _links(message)
    dashboard = _query(links["Grafana dashboard"])
    assert urlsplit(links["Grafana dashboard"]).path == "/d/service-red"
    assert dashboard["var-namespace"] == "shop" and dashboard["var-deployment"] == "checkout"
    start_ms = int((AT.timestamp() - 270 - 300) * 1000)
    assert dashboard["from"] == str(start_ms) and dashboard["to"] == str(int((AT.timestamp() + 300) * 1000))

    explore = _query(links["Failing spans in Explore"])
    assert urlsplit(links["Failing spans in Explore"]).path == "/explore"
    pane = json.loads(explore["panes"])["canary"]
    assert pane["queries"][0]["query"] == TRACEQL  # quotes, &&, ?, = survive the round trip
    assert pane["queries"][0]["datasource"] == {"type": "tempo", "uid": "tempo-main"}
    assert pane["range"] == {"from": str(start_ms), "to": dashboard["to"]}

    shown = [t for t in traces if t in links]
    assert shown == list(traces[:5])
    for trace_id in shown:
        assert json.loads(_query(links[trace_id])["panes"])["canary"]["queries"][0]["query"] == trace_id
    assert "*Example failing traces* … (2 more)" in texts(message)


def test_without_grafana_there_are_no_links_but_the_query_and_trace_ids_are_shown() -> None:
    message = render_slack(event(), RenderSettings())
    assert_slack_accepts(message)
    assert _links(message) == {}
    body = "\n".join(texts(message))
    assert "`4bf92f3577b34da6a3ce929d0e0e4736`" in body
    assert "TraceQL: `" in body and "&amp;&amp; kind = server" in body


def test_sixty_failed_checks_with_huge_reasons_stay_within_slack_limits_and_say_what_was_cut() -> None:
    checks = tuple(
        CheckResult(
            name=f"check-{i:02d}",
            result=Phase.FAIL,
            reason="the canary misbehaved " * 500,
            canary=0.5,
            baseline=0.01,
            threshold=0.02,
            unit="ratio",
            samples=100,
            window=120,
        )
        for i in range(60)
    )
    verdict = Verdict(phase=Phase.FAIL, checks=checks, message="x" * 50_000)
    e = event(
        verdict=verdict,
        reason="y" * 50_000,
        deployment="d" * 253,
        images_from=tuple(f"registry.example.com/img-{i}:{'v' * 100}" for i in range(40)),
        images_to=tuple(f"registry.example.com/img-{i}:{'w' * 100}" for i in range(40)),
        example_traces=tuple(f"{i:032x}" for i in range(40)),
        traceql="{ " + " || ".join(f'span.id = "{i}"' for i in range(2000)) + " }",
    )
    message = render_slack(e, GRAFANA, channel="#c", mention="@oncall")
    assert_slack_accepts(message)
    assert len(message["blocks"]) <= 50
    header = message["blocks"][0]["text"]["text"]
    assert header.startswith("ddd") and header.endswith("more chars)") and len(header) <= 150
    body = "\n".join(texts(message))
    assert "*Breached checks* (60)" in body
    assert "*check-19*" in body and "*check-20*" not in body
    assert "… (40 more failed checks: check-20, check-21" in body
    assert "more chars)_" in body  # each long reason is cut visibly
    assert "… (35 more)" in body  # example traces
    assert message["link_names"] is True
    # the Explore link of a 40,000-character query would not fit: the label is shown without it
    assert "Failing spans in Explore" in body and "Failing spans in Explore" not in _links(message)


def test_user_text_cannot_ping_or_inject_links() -> None:
    hostile = "boom <!channel> <https://evil.example|click me> & <@U123>"
    e = event(reason=hostile, deployment="checkout<!here>", example_traces=("<!channel>",), images_to=("<x>",))
    message = render_slack(e, GRAFANA)
    assert_slack_accepts(message)
    # the header is plain_text, which Slack never parses for mentions; every mrkdwn text is escaped
    assert message["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "checkout<!here> revision 8 rolled back: 5.0% of requests failing",
        "emoji": True,
    }
    mrkdwn = json.dumps([message["text"], texts(message)[1:]])
    for dangerous in ("<!channel>", "<!here>", "<https://evil", "<@U123>", "<x>"):
        assert dangerous not in mrkdwn
    assert "boom &lt;!channel&gt; &lt;https://evil.example|click me&gt; &amp; &lt;@U123&gt;" in message["text"]


def test_mentions_and_channel_override() -> None:
    group = render_slack(event(), GRAFANA, channel="#team", mention="<!subteam^S0ONCALL>")
    assert group["blocks"][1]["text"]["text"].startswith("<!subteam^S0ONCALL> ")
    assert "link_names" not in group
    handle = render_slack(event(slack_channel="#override"), GRAFANA, channel="#team", mention="@oncall")
    assert handle["channel"] == "#override"
    assert handle["link_names"] is True and handle["text"].startswith(f"@oncall {ROLLED_BACK}")
    assert "channel" not in render_slack(event(), GRAFANA)


@pytest.mark.parametrize(
    ("kind", "title"),
    [
        (NotifyEvent.STARTED, "checkout 1.5.0: analysing"),
        (NotifyEvent.ROLLED_BACK, "checkout 1.5.0 rolled back"),
        (NotifyEvent.PROMOTED, "checkout 1.5.0 promoted: 2 checks passed"),
        (NotifyEvent.FROZEN, "checkout 1.5.0 frozen: not rolled out, not analysed"),
        (NotifyEvent.BACKEND_DOWN, "checkout 1.5.0: analysis on hold, a metrics or trace backend is down"),
        (NotifyEvent.BACKEND_RECOVERED, "checkout 1.5.0: backends recovered, analysing again"),
        (NotifyEvent.STUCK, "checkout 1.5.0 stuck: the canary is not progressing"),
    ],
)
def test_every_event_type_has_its_own_header(kind: NotifyEvent, title: str) -> None:
    e = event(type=kind, verdict=Verdict(phase=Phase.ERROR, checks=(), message="mimir timeout"), reason="r")
    assert headline(e) == title
    message = render_slack(e, GRAFANA)
    assert_slack_accepts(message)
    assert message["blocks"][0]["text"]["text"] == title
    assert "*Breached checks*" not in "\n".join(texts(message))


def test_minimal_event_renders() -> None:
    bare = CanaryEvent(
        type=NotifyEvent.BACKEND_DOWN, namespace="a", deployment="b", revision="1", mode="canary", service="b",
        slo="default", reason="Mimir answered 503 for 4 checks in a row", at=AT,
    )  # fmt: skip
    message = render_slack(bare, RenderSettings())
    assert_slack_accepts(message)
    assert "*Images*\n-" in texts(message)


def test_webhook_payload_is_the_whole_event_with_key_and_schema_version() -> None:
    e = event()
    payload = render_webhook(e)
    assert payload["schemaVersion"] == 1
    assert payload["key"] == "shop/checkout@8:rolled-back"
    data = json.loads(json.dumps(payload))
    assert CanaryEvent.model_validate({k: v for k, v in data.items() if k not in ("schemaVersion", "key")}) == e
    assert data["verdict"]["checks"][1]["name"] == "availability"
