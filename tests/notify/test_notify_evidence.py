"""Rollback messages with root-cause evidence: what on-call reads in Slack and gets in the JSON webhook."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from notify_fixtures import AT, event
from test_notify_render import assert_slack_accepts, texts

from canary.evidence.model import Downstream, Evidence, LogRef, RouteStat, TraceRef
from canary.notify import blocks
from canary.notify.render import render_slack, render_webhook
from canary.notify.settings import RenderSettings

SETTINGS = RenderSettings(grafana_url="https://grafana.example.com", cluster="prod-eu")
TRACES = (
    "c204ed7b2857fbc0c66cd5b356750c85",
    "19c4ef86c424d48f00b82c5f33a60562",
    "e7a00b71923798dae04df2cd06db982d",
    "66a71fe802c69a3c3298746956965f67",
)


def evidence(**changes: Any) -> Evidence:
    fields: dict[str, Any] = {
        "start": AT - timedelta(minutes=6),
        "end": AT,
        "routes": (
            RouteStat(
                route="POST /api/checkout",
                canary_requests=70,
                canary_errors=18,
                baseline_requests=249,
                baseline_errors=2,
                regressed=True,
            ),
            RouteStat(route="GET /api/cart", canary_requests=68, baseline_requests=213, baseline_errors=3),
        ),
        "downstream": (
            Downstream(service="checkout", span="INSERT orders", message="deadlock detected", canary=18),
            Downstream(
                service="payments", span="POST /v1/charges", message="upstream card network unavailable", baseline=1
            ),
        ),
        "traces": tuple(TraceRef(trace_id=t, at=AT, cause="checkout INSERT orders: deadlock detected") for t in TRACES),
        "logs": tuple(
            LogRef(
                at=AT,
                pod="checkout-7f8e9a1b2-p8lp8",
                trace_id=t,
                line=f'level=error msg="request failed" error="insert order: ERROR: deadlock detected" trace_id={t}',
            )
            for t in TRACES
        ),
        "traceql": '{ resource.k8s.replicaset.name = "checkout-7f8e9a1b2" && kind = server && status = error } '
        ">> { status = error }",
        "logql": '{namespace="shop", pod=~"checkout-7f8e9a1b2-[a-z0-9]+"} | detected_level=~"error|fatal"',
    }
    fields.update(changes)
    return Evidence(**fields)


def links(message: dict[str, Any]) -> dict[str, str]:
    found = {}
    for text in texts(message):
        for part in text.split("<")[1:]:
            url, _, rest = part.partition("|")
            found[rest.split(">")[0]] = url
    return found


def test_rollback_message_leads_with_the_route_and_holds_the_cause_traces_logs_and_next_steps() -> None:
    message = render_slack(event(evidence=evidence()), SETTINGS, mention="@oncall")
    assert_slack_accepts(message)
    assert message["blocks"][0]["text"]["text"] == "checkout 1.5.0 rolled back: 26% of POST /api/checkout failing"
    body = "\n".join(texts(message))
    assert ":x: POST /api/checkout 25.7% errors (18/70) vs 0.8% (2/249)" in body
    assert ":white_check_mark: GET /api/cart 0.0% errors (0/68) vs 1.4% (3/213)" in body
    assert '• checkout span "INSERT orders": deadlock detected (18 canary vs 0 baseline)' in body
    assert "*availability*: canary *5.00%* vs baseline 0.10%, limit 1.00%" in body
    found = links(message)
    shown = [t for t in TRACES if t in found]
    assert shown == list(TRACES[:3]), "3 trace links"
    for trace_id in shown:
        pane = json.loads(parse_qs(urlsplit(found[trace_id]).query)["panes"][0])["canary"]
        assert pane["datasource"] == "mop-tempo" and pane["queries"][0]["query"] == trace_id
        assert int(pane["range"]["from"]) <= int((AT - timedelta(minutes=6)).timestamp() * 1000)
    logs = json.loads(parse_qs(urlsplit(found["Canary error logs in Explore"]).query)["panes"][0])["logs"]
    assert logs["datasource"] == "mop-loki" and "detected_level" in logs["queries"][0]["expr"]
    assert "Failing spans in Explore" in found
    assert body.count('deadlock detected" trace_id=') == 3, "3 log lines"
    assert "`canary retry shop/checkout`" in body and "`canary promote shop/checkout`" in body
    assert "Evidence incomplete" not in body


def test_notes_say_what_is_missing_and_the_checks_still_show() -> None:
    note = "log lines of the traces: loki timeout error: GET /loki/api/v1/query_range: no answer within 10s"
    message = render_slack(event(evidence=evidence(logs=(), notes=(note,))), SETTINGS)
    assert_slack_accepts(message)
    body = "\n".join(texts(message))
    assert f"Evidence incomplete: {note}" in body and "*Breached checks* (2)" in body


def test_huge_and_hostile_evidence_stays_within_slack_limits_and_cannot_ping() -> None:
    hostile = "<!channel> ``` <https://evil.example|x> " + "y" * 5000
    big = evidence(
        routes=tuple(
            RouteStat(route=f"POST /r{i} <!here>" + "z" * 400, canary_requests=10, canary_errors=9, regressed=True)
            for i in range(8)
        ),
        downstream=tuple(Downstream(service=f"s{i}<@U1>", span="q" * 500, message=hostile, canary=5) for i in range(5)),
        logs=tuple(LogRef(at=AT, pod="p", trace_id=TRACES[0], line=hostile) for _ in range(5)),
        notes=tuple(hostile for _ in range(5)),
    )
    message = render_slack(event(evidence=big, deployment="d" * 253), SETTINGS, mention="@oncall")
    assert_slack_accepts(message)
    assert len(message["blocks"]) <= blocks.MAX_BLOCKS
    mrkdwn = json.dumps(texts(message)[1:])
    for dangerous in ("<!channel>", "<!here>", "<@U1>", "<https://evil"):
        assert dangerous not in mrkdwn
    assert "``` <" not in mrkdwn, "a log line cannot close the code block"


def test_webhook_payload_carries_the_evidence_the_headline_and_the_next_steps() -> None:
    payload = render_webhook(event(evidence=evidence()))
    assert payload["headline"] == "checkout 1.5.0 rolled back: 26% of POST /api/checkout failing"
    assert payload["evidence"]["downstream"][0]["message"] == "deadlock detected"
    assert payload["evidence"]["traces"][0]["trace_id"] == TRACES[0]
    assert payload["evidenceSummary"].startswith("POST /api/checkout 25.7% errors (18/70) vs 0.8% (2/249) | cause:")
    assert any("canary retry shop/checkout" in step for step in payload["nextSteps"])
    json.dumps(payload)


def test_promotions_have_no_next_steps_and_no_evidence_sections() -> None:
    from canary.config.slo import NotifyEvent

    message = render_slack(event(type=NotifyEvent.PROMOTED), SETTINGS)
    body = "\n".join(texts(message))
    assert "*Next steps*" not in body and "*Where*" not in body
