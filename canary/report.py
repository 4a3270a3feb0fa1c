"""Human-readable rendering of analysis results (rich tables), shared by the CLI and the demo."""

from __future__ import annotations

from rich.table import Table

from canary.judge.model import CheckResult, Phase, Verdict

PHASE_STYLE = {Phase.PASS: "green", Phase.FAIL: "bold red", Phase.INCONCLUSIVE: "yellow", Phase.ERROR: "magenta"}


def format_value(value: float | None, unit: str) -> str:
    """`ratio` as a percentage, `s` as ms or s, `x` as a multiplier, anything else as a number."""
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    if unit == "s":
        return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:g}"


def check_row(check: CheckResult) -> list[str]:
    style = PHASE_STYLE[check.result]
    return [
        check.name,
        format_value(check.canary, check.unit),
        format_value(check.baseline, check.unit),
        format_value(check.threshold, check.unit),
        f"{check.samples:g}" if check.samples is not None else "-",
        f"[{style}]{check.result}[/{style}]",
    ]


def verdict_table(verdict: Verdict, title: str) -> Table:
    """One row per check with its values; the reasons follow as numbered notes under the table."""
    table = Table(title=title, title_justify="left")
    for column in ("check", "canary", "baseline", "threshold", "samples", "result"):
        table.add_column(column, no_wrap=column != "check")
    for check in verdict.checks:
        table.add_row(*check_row(check))
    style = PHASE_STYLE[verdict.phase]
    notes = "\n".join(f"  {c.name}: {c.reason}" for c in verdict.checks)
    table.caption = f"{notes}\nverdict: [{style}]{verdict.phase}[/{style}] - {verdict.message}"
    table.caption_justify = "left"
    return table
