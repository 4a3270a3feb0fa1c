"""CanaryEvent -> Slack Block Kit message, and -> the generic JSON webhook payload. Pure functions."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from canary import __version__
from canary.config.slo import NotifyEvent
from canary.config.units import format_duration
from canary.evidence.model import Evidence
from canary.judge.model import CheckResult
from canary.notify import blocks
from canary.notify.blocks import Block, escape, fit_mrkdwn, join_within, truncate
from canary.notify.destinations import Destination, SinkKind
from canary.notify.events import CanaryEvent
from canary.notify.links import dashboard_url, explore_url, logs_explore_url, trace_url
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

MAX_EVIDENCE_TRACES: Final = 3
MAX_EVIDENCE_LOGS: Final = 3
_TAG = re.compile(r"[:@]([^:@/]+)$")
_RATE_CHECKS: Final = {
    "availability": "requests",
    "error-rate-ratio": "requests",
    "trace-error-rate": "traced requests",
}


def version(event: CanaryEvent) -> str:
    """What on-call calls the canary: its image tag (`v3`), else its revision."""
    for image in event.images_to:
        found = _TAG.search(image)
        if found and not found.group(1).startswith("sha256"):
            return found.group(1)
    return f"revision {event.revision[:12]}"


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value >= 0.095 else f"{value * 100:.1f}%"


def what_failed(event: CanaryEvent) -> str | None:
    """The breach in plain words: `24% of POST /api/checkout failing`, `p99 latency 1.20s (limit 500ms)`."""
    evidence = event.evidence
    if evidence is not None and evidence.regressed_routes:
        route = evidence.regressed_routes[0]
        if route.canary_p99 is not None:
            limits = [c.threshold for c in (event.verdict.failed if event.verdict else ()) if c.unit == "s"]
            limit = f" (limit {format_value(limits[0], 's')})" if limits and limits[0] is not None else ""
            return f"p99 latency {format_value(route.canary_p99, 's')} on {route.route}{limit}"
        if route.canary_rate is not None:
            return f"{_percent(route.canary_rate)} of {route.route} failing"
    for check in event.verdict.failed if event.verdict else ():
        if check.name in _RATE_CHECKS and check.canary is not None:
            return f"{_percent(check.canary)} of {_RATE_CHECKS[check.name]} failing"
        if check.unit == "s" and check.canary is not None:
            limit = f" (limit {format_value(check.threshold, 's')})" if check.threshold is not None else ""
            return f"p99 latency {format_value(check.canary, 's')}{limit}"
        return f"{check.name} breached"
    return None


def headline(event: CanaryEvent) -> str:
    """Plain words for on-call, e.g. `checkout v3 rolled back: 24% of POST /api/checkout failing`."""
    who = f"{event.deployment} {version(event)}"
    kind = event.type
    if kind is NotifyEvent.ROLLED_BACK:
        what = what_failed(event)
        return f"{who} rolled back: {what}" if what else f"{who} rolled back"
    if kind is NotifyEvent.PROMOTED:
        return f"{who} promoted: {event.checks_passed} checks passed"
    if kind is NotifyEvent.FROZEN:
        return f"{who} frozen: not rolled out, not analysed"
    if kind is NotifyEvent.STUCK:
        return f"{who} stuck: the canary is not progressing"
    if kind is NotifyEvent.BACKEND_DOWN:
        return f"{who}: analysis on hold, a metrics or trace backend is down"
    if kind is NotifyEvent.BACKEND_RECOVERED:
        return f"{who}: backends recovered, analysing again"
    return f"{who}: analysing"


def next_steps(event: CanaryEvent) -> list[str]:
    """What on-call can do now, as commands (mrkdwn); the manual requests are those of `canary --help`."""
    ref = escape(f"{event.namespace}/{event.deployment}")
    retry, promote, abort = (f"`canary {verb} {ref}`" for verb in ("retry", "promote", "abort"))
    if event.type is NotifyEvent.ROLLED_BACK:
        return [
            "Fix and roll out a new revision: it is analysed like any other",
            "False alarm? Apply this revision again (it is held, not rolled out), then "
            f"{retry} to analyse it again, or {promote} during that analysis to promote it without the rest "
            "(recorded on the Deployment)",
        ]
    if event.type is NotifyEvent.FROZEN:
        return [f"{retry}: analyse this revision again from zero", f"{abort}: write the stable template back"]
    if event.type in (NotifyEvent.STUCK, NotifyEvent.BACKEND_DOWN):
        first = (
            "Check Mimir/Tempo (the reason above names the query and the error)"
            if event.type is NotifyEvent.BACKEND_DOWN
            else "Check why the canary's pods are not ready (`kubectl describe`, `canary status`)"
        )
        return [first, f"{promote}: promote now without the rest of the analysis", f"{abort}: roll back now"]
    return []


def _check_text(check: CheckResult) -> str:
    unit = check.unit
    values = (
        f"canary *{format_value(check.canary, unit)}*"
        f" vs baseline {format_value(check.baseline, unit)}"
        f", limit {format_value(check.threshold, unit)}"
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


def _trace(trace_id: str, event: CanaryEvent, settings: RenderSettings, evidence: Evidence | None = None) -> str:
    if not _TRACE_ID.fullmatch(trace_id):
        return fit_mrkdwn(trace_id, 64)
    url = trace_url(trace_id, event, settings, evidence)
    return f"<{url}|{trace_id}>" if url and len(url) <= MAX_URL else f"`{trace_id}`"


def _link_blocks(event: CanaryEvent, settings: RenderSettings) -> list[Block]:
    out: list[Block] = []
    links = []
    dashboard = dashboard_url(event, settings)
    if dashboard:
        links.append(_link(dashboard, "Grafana dashboard"))
    if event.traceql and (event.evidence is None or not event.evidence.traceql):
        explore = explore_url(event.traceql, event, settings)
        if explore:
            links.append(_link(explore, "Failing spans in Explore"))
        links.append(f"TraceQL: `{fit_mrkdwn(event.traceql, 1000)}`")
    if links:
        out.append(blocks.section(join_within(links, blocks.MAX_SECTION_TEXT, "\n")))
    traces = event.example_traces if event.evidence is None or not event.evidence.traces else ()
    if traces:
        more = f" … ({len(traces) - MAX_TRACES} more)" if len(traces) > MAX_TRACES else ""
        fields = [_trace(t, event, settings) for t in traces[:MAX_TRACES]]
        out.append(blocks.fields_section(fields, text=f"*Example failing traces*{more}"))
    return out


def _evidence_blocks(event: CanaryEvent, settings: RenderSettings) -> list[Block]:
    """Where (routes), the downstream cause, 3 failing traces, 3 log lines, and what could not be found."""
    evidence = event.evidence
    if evidence is None:
        return []
    out: list[Block] = []
    if evidence.routes:
        lines = [(":x: " if r.regressed else ":white_check_mark: ") + escape(r.text()) for r in evidence.routes]
        out.append(blocks.section("*Where*\n" + join_within(lines, blocks.MAX_SECTION_TEXT - 10, "\n")))
    if evidence.downstream:
        lines = [("• " if d.canary > d.baseline else "◦ ") + fit_mrkdwn(d.text(), 600) for d in evidence.downstream]
        title = "*Failing downstream* (below failing requests)\n"
        out.append(blocks.section(title + join_within(lines, blocks.MAX_SECTION_TEXT - len(title), "\n")))
    if evidence.traces:
        fields = []
        for ref in evidence.traces[:MAX_EVIDENCE_TRACES]:
            cause = f"\n{fit_mrkdwn(ref.cause, 300)}" if ref.cause else ""
            fields.append(_trace(ref.trace_id, event, settings, evidence) + cause)
        out.append(blocks.fields_section(fields, text="*Failing traces*"))
    if evidence.logs:
        budget = (blocks.MAX_SECTION_TEXT - 60) // MAX_EVIDENCE_LOGS
        lines = [
            f"{ref.pod or '?'} {ref.at.strftime('%H:%M:%S')} {truncate(ref.line, budget - 60)}"
            for ref in evidence.logs[:MAX_EVIDENCE_LOGS]
        ]
        body = escape("\n".join(line.replace("`", "'") for line in lines))
        out.append(blocks.section("*Log lines* (canary pods)\n```" + body + "```"))
    links = []
    if evidence.traceql:
        links.append(_link(explore_url(evidence.traceql, event, settings, evidence), "Failing spans in Explore"))
    if evidence.logql:
        links.append(_link(logs_explore_url(evidence.logql, event, settings, evidence), "Canary error logs in Explore"))
    if links and settings.grafana_url:
        out.append(blocks.section(" · ".join(links)))
    if evidence.notes:
        out.append(blocks.context([fit_mrkdwn("Evidence incomplete: " + "; ".join(evidence.notes), 1900)]))
    return out


def _steps_block(event: CanaryEvent) -> list[Block]:
    steps = next_steps(event)
    if not steps:
        return []
    return [blocks.section("*Next steps*\n" + "\n".join(f"• {step}" for step in steps))]


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
        *_evidence_blocks(event, settings),
        *_link_blocks(event, settings),
        *_steps_block(event),
        footer,
    ]
    where = fit_mrkdwn(f"{event.namespace}/{event.deployment}", 300)
    prefix = f"{_mention(mention)}{fit_mrkdwn(title, 300)} ({where}): "
    fallback = prefix + fit_mrkdwn(event.reason, blocks.MAX_FALLBACK_TEXT - len(prefix))
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
    """The generic JSON payload: the whole event (with its evidence), its key, a plain-words headline,
    the next steps, the evidence in one line, and a schema version."""
    payload: dict[str, Any] = {
        "schemaVersion": WEBHOOK_SCHEMA_VERSION,
        "key": str(event.key),
        "headline": headline(event),
        "nextSteps": next_steps(event),
    }
    if event.evidence is not None:
        payload["evidenceSummary"] = event.evidence.summary()
    return {**payload, **event.model_dump(mode="json")}


def render_payload(event: CanaryEvent, destination: Destination, settings: RenderSettings) -> dict[str, Any]:
    """The body for `destination`: a Slack message or the generic webhook payload."""
    if destination.kind is SinkKind.SLACK:
        return render_slack(event, settings, channel=destination.channel, mention=destination.mention)
    return render_webhook(event)
