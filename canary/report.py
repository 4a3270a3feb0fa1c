"""Human-readable rendering of analysis results (rich tables), shared by the CLI and the demo."""

from __future__ import annotations

from rich.table import Table

from canary.judge.model import CheckResult, Phase, Verdict
from canary.judge.text import minutes

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


def bounds(check: CheckResult) -> str:
    """The anytime-valid bounds of the canary's value, `[0.05%, 1.2%]`, or `-`."""
    if check.lower is None or check.upper is None:
        return "-"
    return f"[{format_value(check.lower, check.unit)}, {format_value(check.upper, check.unit)}]"


def check_row(check: CheckResult) -> list[str]:
    style = PHASE_STYLE[check.result]
    return [
        check.name,
        format_value(check.canary, check.unit) + (f"\n{bounds(check)}" if check.lower is not None else ""),
        format_value(check.baseline, check.unit),
        format_value(check.threshold, check.unit),
        f"{check.samples:.0f}" if check.samples is not None else "-",
        f"[{style}]{check.result}[/{style}]",
    ]


def waiting_for(verdict: Verdict | None) -> str:
    """Why an inconclusive canary waits, in one short line: the undecided checks' estimates with
    their bounds, and the expected time to a decision at the current traffic."""
    if verdict is None or verdict.phase is not Phase.INCONCLUSIVE:
        return "-"
    open_checks = [c for c in verdict.checks if c.result is Phase.INCONCLUSIVE and not c.skipped]
    parts = [
        f"{c.name} {format_value(c.canary, c.unit)} {bounds(c)}".replace(" -", "")
        for c in open_checks
        if c.name != "sample-size"
    ]
    promote = [c.promote_seconds for c in open_checks if c.promote_seconds is not None]
    detect = [c.detect_seconds for c in open_checks if c.detect_seconds is not None]
    if promote:
        parts.append(f"promotion in ~{minutes(max(promote))} if the estimates hold")
    if detect:
        parts.append(f"a 2x breach would be caught in ~{minutes(min(detect))}")
    sizes = [c for c in open_checks if c.name == "sample-size"]
    if sizes:
        parts.insert(0, f"{sizes[0].samples or 0:.0f}/{sizes[0].threshold or 0:.0f} requests")
    return "; ".join(parts) or "-"


def verdict_table(verdict: Verdict, title: str) -> Table:
    """One row per check with its values; the reasons follow as numbered notes under the table."""
    table = Table(title=title, title_justify="left")
    for column in ("check", "canary (bounds)", "baseline", "threshold", "samples", "result"):
        table.add_column(column, no_wrap=True, min_width=16 if column == "check" else None)
    for check in verdict.checks:
        table.add_row(*check_row(check))
    style = PHASE_STYLE[verdict.phase]
    notes = "\n".join(f"  {c.name}: {c.reason}" for c in verdict.checks)
    table.caption = f"{notes}\nverdict: [{style}]{verdict.phase}[/{style}] - {verdict.message}"
    table.caption_justify = "left"
    return table
