"""What the demo shows: the live view while the story runs, Slack messages as a channel would show
them, and the closing summary. Rich renderables built from the story's steps and the decision records."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.rule import Rule
from rich.style import Style
from rich.table import Table
from rich.text import Text

from canary_testkit.demo import scenario as sc
from canary_testkit.demo.record import DecisionRecord, analyses
from canary_testkit.demo.story import Marks, Step, Story

PHASE_STYLE = {
    "Analysing": "yellow", "Promoting": "green", "Succeeded": "bold green", "RollingBack": "red",
    "RolledBack": "bold red", "Frozen": "bold blue", "Waiting": "dim", "Invalid": "magenta",
}


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def millis(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}ms"


def _analysis_row(run: list[DecisionRecord]) -> list[RenderableType]:
    last = run[-1]
    measured = next((r for r in reversed(run) if r.measured), None)
    passed = max(r.checks_passed for r in run)
    style = PHASE_STYLE.get(last.phase, "")
    bar = ProgressBar(total=sc.SUCCESSFUL_CHECKS, completed=min(last.checks_passed, sc.SUCCESSFUL_CHECKS), width=12,
                      complete_style="green", finished_style="bold green")
    failed = Text(f"{last.checks_failed}/{sc.FAILED_CHECKS}", style="red" if last.checks_failed else "")
    canary = measured.canary if measured else None
    baseline = measured.baseline if measured else None
    return [
        run[0].image,
        Text(last.phase, style=style),
        Group(bar, Text(f"{passed}/{sc.SUCCESSFUL_CHECKS} passed", style="dim")),
        failed,
        f"{percent(canary.error_rate if canary else None)} / {percent(baseline.error_rate if baseline else None)}",
        f"{millis(canary.p99 if canary else None)} / {millis(baseline.p99 if baseline else None)}",
        str(sum(1 for r in run if r.measured)),
    ]


def analyses_table(records: Sequence[DecisionRecord]) -> Table:
    table = Table(title="analyses of shop/checkout", title_justify="left", expand=False)
    for column in ("version", "phase", "checks", "failed", "errors canary / baseline", "p99 canary / baseline",
                   "looks"):
        table.add_column(column, no_wrap=column in ("phase", "failed", "looks"))
    for run in analyses(records):
        if run[0].signal == "adopt":
            continue
        table.add_row(*_analysis_row(run))
    return table


def _step_line(step: Step, now: float) -> Text:
    mark, style = {True: ("✓", "green"), False: ("✗", "bold red"), None: ("…", "yellow")}[step.ok]
    took = (step.ended if step.ended is not None else now) - step.started
    line = Text(f" {mark} ", style=style)
    line.append(f"{step.number}. {step.title}", style="bold" if step.ok is None else "")
    line.append(f"  {took:.1f}s", style="dim")
    if step.detail:
        line.append(f"  {step.detail}", style="dim" if step.ok else style)
    return line


class LiveView:
    """The live view's renderable: redrawn from the story and the records at every refresh."""

    def __init__(self, story: Story, speed: float) -> None:
        self.story = story
        self.speed = speed

    def __rich__(self) -> RenderableType:
        story = self.story
        now = story.recorder.now()
        title = (f"canary demo · scenario [bold]{story.scenario.value}[/bold] · speed {self.speed:g}x · "
                 f"checks every {story.pace.interval:g}s over {story.pace.window:g}s · {now:.0f}s")
        steps = [_step_line(s, now) for s in story.steps] or [Text(" starting…", style="dim")]
        return Panel(Group(*steps, Text(""), analyses_table(story.recorder.records())), title=title,
                     title_align="left")


# -- Slack ------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"<([^<>|]+)\|([^<>]+)>|<([^<>]+)>|\*([^*\n]+)\*|(?<!\w)_([^_\n]+)_(?!\w)|`([^`\n]+)`|:([a-z_]+):")
_EMOJI = {"x": ("✗", "bold red"), "white_check_mark": ("✓", "green"), "warning": ("!", "yellow")}


def mrkdwn(text: str) -> Text:
    """Slack mrkdwn as styled text: *bold*, _italic_, `code`, <url|label>, a few emoji; no markup injected."""
    out = Text()
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(html.unescape(text[pos:m.start()]))
        link_url, link_label, bare, bold, italic, code, emoji = m.groups()
        if link_label is not None:
            out.append(html.unescape(link_label), style=Style(underline=True, link=link_url))
        elif bare is not None:
            out.append(html.unescape(bare), style="underline")
        elif bold is not None:
            out.append(html.unescape(bold), style="bold")
        elif italic is not None:
            out.append(html.unescape(italic), style="italic")
        elif code is not None:
            out.append(html.unescape(code), style="cyan")
        else:
            symbol, style = _EMOJI.get(emoji, (f":{emoji}:", ""))
            out.append(symbol, style=style)
        pos = m.end()
    out.append(html.unescape(text[pos:]))
    return out


def _block(block: dict[str, Any]) -> list[RenderableType]:
    kind = block.get("type")
    if kind == "header":
        return [Text(str(block.get("text", {}).get("text", "")), style="bold")]
    if kind == "divider":
        return [Rule(style="dim")]
    if kind == "context":
        parts = [mrkdwn(str(e.get("text", ""))) for e in block.get("elements", []) if isinstance(e, dict)]
        line = Text(" · ", style="dim").join(parts)
        line.stylize("dim")
        return [line]
    out: list[RenderableType] = []
    if isinstance(block.get("text"), dict):
        out.append(mrkdwn(str(block["text"].get("text", ""))))
    fields = [f for f in block.get("fields", []) if isinstance(f, dict)]
    if fields:
        grid = Table.grid(padding=(0, 3))
        grid.add_column()
        grid.add_column()
        cells = [mrkdwn(str(f.get("text", ""))) for f in fields]
        for i in range(0, len(cells), 2):
            grid.add_row(*cells[i:i + 2])
        out.append(grid)
    return out


def slack_message(payload: dict[str, Any], title: str) -> Panel:
    """One received webhook payload, as the channel would show it (blocks, else the text)."""
    blocks = payload.get("blocks")
    parts: list[RenderableType] = []
    if isinstance(blocks, list) and blocks:
        for block in blocks:
            if isinstance(block, dict):
                parts.extend(_block(block))
    else:
        parts.append(mrkdwn(str(payload.get("text", ""))))
    channel = payload.get("channel")
    subtitle = f"to {channel}" if channel else None
    return Panel(Group(*parts), title=title, title_align="left", subtitle=subtitle, subtitle_align="left",
                 border_style="magenta")


# -- the end ----------------------------------------------------------------------------------------


def summary(story: Story, messages: int, report_files: Sequence[str], error: str | None) -> Panel:
    marks: Marks = story.marks
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for step in story.steps:
        took = (step.ended or story.recorder.now()) - step.started
        grid.add_row(f"step {step.number}", Text.assemble(
            ("passed " if step.ok else "FAILED ", "green" if step.ok else "bold red"),
            f"in {took:.1f}s: {step.title}",
        ))
    if marks.promoted is not None and marks.v2_applied is not None:
        grid.add_row("v2 promoted", f"{marks.promoted - marks.v2_applied:.1f}s after it was applied")
    if marks.fault is not None and marks.first_failed_check is not None:
        grid.add_row("fault detected", f"{marks.first_failed_check - marks.fault:.1f}s after v3 was applied "
                                       "(first failed check)")
    if marks.fault_to_rollback is not None:
        grid.add_row("fault → rollback", Text(f"{marks.fault_to_rollback:.1f}s", style="bold"))
    grid.add_row("Slack messages", str(messages))
    grid.add_row("report", ", ".join(report_files))
    ok = error is None
    return Panel(grid, title="[bold green]the story ended as expected" if ok else f"[bold red]{error}",
                 title_align="left", border_style="green" if ok else "red")
