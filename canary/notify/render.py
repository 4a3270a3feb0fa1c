"""CanaryEvent -> Slack Block Kit message, and -> the generic JSON webhook payload. Pure functions."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from canary import __version__
from canary.config.slo import NotifyEvent
from canary.config.units import format_duration
from canary.judge.model import CheckResult
from canary.notify import blocks
from canary.notify.blocks import Block, escape, fit_mrkdwn, join_within
from canary.notify.destinations import Destination, SinkKind
from canary.notify.events import CanaryEvent
from canary.notify.links import dashboard_url, explore_url, trace_url
from canary.notify.settings import RenderSettings
from canary.report import format_value

log = logging.getLogger(__name__)

WEBHOOK_SCHEMA_VERSION: Final = 1
MAX_CHECK_BLOCKS: Final = 20
"""Breached checks shown one per block; the rest are named in one `… (n more)` line."""
MAX_TRACES: Final = 5
MAX_URL: Final = 1900
_TRACE_ID = re.compile(r"[0-9a-fA-F]{1,32}")
_SPECIAL_MENTION = re.compile(r"<(?:!subteam\^[A-Z0-9]+|@[UW][A-Z0-9]+|!here|!channel|!everyone)>")

_HEADLINE = {
    NotifyEvent.STARTED: "Analysing {}",
    NotifyEvent.ROLLED_BACK: "Rolled back {}",
    NotifyEvent.PROMOTED: "Promoted {}",
    NotifyEvent.FROZEN: "Frozen {}",
    NotifyEvent.BACKEND_DOWN: "Backend down, analysis on hold: {}",
    NotifyEvent.BACKEND_RECOVERED: "Backend recovered, analysing again: {}",
    NotifyEvent.STUCK: "Canary stuck: {}",
}


def headline(event: CanaryEvent) -> str:
    """e.g. `Rolled back shop/checkout`."""
    return _HEADLINE[event.type].format(f"{event.namespace}/{event.deployment}")


def _check_text(check: CheckResult) -> str:
    unit = check.unit
    values = (
        f"canary *{format_value(check.canary, unit)}*"
        f" vs baseline {format_value(check.baseline, unit)}"
        f", threshold {format_value(check.threshold, unit)}"
    )
    extra = []
    if check.window is not None:
        extra.append(f"window {format_duration(check.window)}")
    if check.samples is not None:
        extra.append(f"sample size {check.samples:,.0f}")
    tail = f" ({', '.join(extra)})" if extra else ""
    head = f":x: *{escape(check.name)}*: {values}{tail}\n"
    return head + "_" + fit_mrkdwn(check.reason, blocks.MAX_SECTION_TEXT - len(head) - 2) + "_"


def _check_blocks(event: CanaryEvent) -> list[Block]:
    failed = event.verdict.failed if event.verdict else ()
    if not failed:
        return []
    out = [blocks.section(f"*Breached checks* ({len(failed)})")]
    out += [blocks.section(_check_text(c)) for c in failed[:MAX_CHECK_BLOCKS]]
    rest = failed[MAX_CHECK_BLOCKS:]
    if rest:
        names = join_within([escape(c.name) for c in rest], blocks.MAX_CONTEXT_TEXT - 40, ", ")
        out.append(blocks.context([f"… ({len(rest)} more failed checks: {names})"]))
    return out


def _images(event: CanaryEvent) -> str:
    before = ", ".join(event.images_from) or "?"
    after = ", ".join(event.images_to) or "?"
    return f"`{before}` → `{after}`" if event.images_from or event.images_to else "-"


def _facts(event: CanaryEvent) -> Block:
    revision = f"{event.baseline_revision} → {event.revision}" if event.baseline_revision else event.revision
    facts = [
        ("Revision", escape(revision)),
        ("Images", escape(_images(event))),
        ("Mode", event.mode.value),
        ("Checks", f"{event.checks_passed} passed, {event.checks_failed} failed"),
    ]
    if event.started_at is not None:
        seconds = max((event.at - event.started_at).total_seconds(), 0.001)
        facts.append(("Analysis duration", format_duration(round(seconds) if seconds >= 1 else round(seconds, 3))))
    if event.window is not None:
        facts.append(("Window", format_duration(event.window)))
    facts.append(("SLO", escape(event.slo)))
    return blocks.fields_section(
        [f"*{name}*\n" + blocks.truncate(value, blocks.MAX_FIELD_TEXT - len(name) - 3) for name, value in facts]
    )


def _link(url: str | None, label: str) -> str:
    """`<url|label>` when the URL fits a Slack field comfortably, else the escaped label alone."""
    return f"<{url}|{escape(label)}>" if url and len(url) <= MAX_URL else escape(label)


def _trace(trace_id: str, event: CanaryEvent, settings: RenderSettings) -> str:
    if not _TRACE_ID.fullmatch(trace_id):
        return fit_mrkdwn(trace_id, 64)
    url = trace_url(trace_id, event, settings)
    return f"<{url}|{trace_id}>" if url and len(url) <= MAX_URL else f"`{trace_id}`"


def _link_blocks(event: CanaryEvent, settings: RenderSettings) -> list[Block]:
    out: list[Block] = []
    links = []
    dashboard = dashboard_url(event, settings)
    if dashboard:
        links.append(_link(dashboard, "Grafana dashboard"))
    if event.traceql:
        explore = explore_url(event.traceql, event, settings)
        if explore:
            links.append(_link(explore, "Failing spans in Explore"))
        links.append(f"TraceQL: `{fit_mrkdwn(event.traceql, 1000)}`")
    if links:
        out.append(blocks.section(join_within(links, blocks.MAX_SECTION_TEXT, "\n")))
    traces = event.example_traces
    if traces:
        more = f" … ({len(traces) - MAX_TRACES} more)" if len(traces) > MAX_TRACES else ""
        fields = [_trace(t, event, settings) for t in traces[:MAX_TRACES]]
        out.append(blocks.fields_section(fields, text=f"*Example failing traces*{more}"))
    return out


def _mention(mention: str | None) -> str:
    """`<!subteam^ID>`, `<@U123>`, `<!here>` pass as they are; `@oncall` is sent as text with `link_names`."""
    if not mention:
        return ""
    return (mention if _SPECIAL_MENTION.fullmatch(mention) else escape(mention)) + " "


def render_slack(
    event: CanaryEvent, settings: RenderSettings, channel: str | None = None, mention: str | None = None
) -> dict[str, Any]:
    """A Block Kit message with a `text` fallback, within Slack's limits.

    `channel` is overridden by `event.slack_channel`. Should the rendered message break a limit
    anyway (a bug), a plain-text message is sent instead: an invalid payload is never returned.
    """
    title = headline(event)
    summary = _mention(mention) + fit_mrkdwn(event.reason, blocks.MAX_SECTION_TEXT - 200)
    checks = _check_blocks(event)
    footer = blocks.context(
        [
            f"cluster *{escape(settings.cluster)}*",
            f"mop-canary {__version__}",
            f"event `{escape(event.type.value)}` at {event.at.isoformat(timespec='seconds')}",
        ]
    )
    all_blocks = [
        blocks.header(title),
        blocks.section(summary),
        _facts(event),
        *([blocks.divider(), *checks] if checks else []),
        *_link_blocks(event, settings),
        footer,
    ]
    fallback = f"{_mention(mention)}{escape(title)}: {fit_mrkdwn(event.reason, blocks.MAX_FALLBACK_TEXT - 400)}"
    message: dict[str, Any] = {"text": fallback, "blocks": all_blocks}
    target = event.slack_channel or channel
    if target:
        message["channel"] = target
    if mention and mention.startswith("@"):
        message["link_names"] = True
    problems = blocks.validate_message(message)
    if problems:
        log.error("rendered Slack message for %s breaks Slack limits, sending text only: %s", event.key, problems)
        message = {k: v for k, v in message.items() if k != "blocks"}
    return message


def render_webhook(event: CanaryEvent) -> dict[str, Any]:
    """The generic JSON payload: the whole event, its deduplication key and a schema version."""
    return {"schemaVersion": WEBHOOK_SCHEMA_VERSION, "key": event.key, **event.model_dump(mode="json")}


def render_payload(event: CanaryEvent, destination: Destination, settings: RenderSettings) -> dict[str, Any]:
    """The body for `destination`: a Slack message or the generic webhook payload."""
    if destination.kind is SinkKind.SLACK:
        return render_slack(event, settings, channel=destination.channel, mention=destination.mention)
    return render_webhook(event)
