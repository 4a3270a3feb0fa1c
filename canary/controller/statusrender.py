"""Rendering of `canary status` views with rich: a list with a reason column, and a detail view per
Deployment with icons and colours in the manner of `kubectl argo rollouts get rollout`."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from canary.config.units import format_duration
from canary.controller.statusview import CheckView, DeploymentView
from canary.evidence.text import evidence_lines
from canary.judge.model import Phase
from canary.vocabulary import CanaryPhase

PHASE_STYLE: dict[CanaryPhase, tuple[str, str]] = {
    CanaryPhase.WAITING: ("◌", "yellow"),
    CanaryPhase.ANALYSING: ("◌", "cyan"),
    CanaryPhase.PROMOTING: ("◌", "blue"),
    CanaryPhase.SUCCEEDED: ("✔", "green"),
    CanaryPhase.ROLLING_BACK: ("✖", "red"),
    CanaryPhase.ROLLED_BACK: ("✖", "red"),
    CanaryPhase.FROZEN: ("॥", "magenta"),
    CanaryPhase.INVALID: ("⚠", "red"),
}
RESULT_STYLE: dict[Phase, tuple[str, str]] = {
    Phase.PASS: ("✔", "green"),
    Phase.FAIL: ("✖", "red"),
    Phase.INCONCLUSIVE: ("?", "yellow"),
    Phase.ERROR: ("⚠", "magenta"),
}


def age(since: datetime | None, now: datetime | None = None) -> str:
    if since is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - since).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def phase_text(view: DeploymentView) -> Text:
    if view.phase is None:
        return Text("◌ Unknown", style="dim")
    icon, style = PHASE_STYLE[view.phase]
    return Text(f"{icon} {view.phase.value}", style=style)


def result_text(result: Phase | None) -> Text:
    if result is None:
        return Text("-", style="dim")
    icon, style = RESULT_STYLE[result]
    return Text(f"{icon} {result.value}", style=style)


def _checks(view: DeploymentView) -> str:
    needed = f"/{view.checks_needed}" if view.checks_needed else ""
    limit = f"/{view.failed_limit}" if view.failed_limit else ""
    return f"{view.checks_passed}{needed} ✔ {view.checks_failed}{limit} ✖"


def list_view(views: list[DeploymentView], wide: bool = False) -> RenderableType:
    """The table, then what could not be read (once)."""
    warnings = sorted({w for v in views for w in v.warnings})
    if not warnings:
        return list_table(views, wide)
    return Group(list_table(views, wide), *(Text(f"⚠ {w}", style="yellow") for w in warnings))


def list_table(views: list[DeploymentView], wide: bool = False) -> Table:
    table = Table(title="guarded Deployments", title_justify="left", box=None, header_style="bold")
    columns = ["DEPLOYMENT", "MODE", "PHASE", "REV", "CHECKS", "LAST VERDICT", "AGE", "REASON"]
    if wide:
        columns[-1:-1] = ["SLO", "IMAGES", "NEXT"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for v in views:
        cells: list[RenderableType] = [
            f"{v.namespace}/{v.name}", v.mode or "-", phase_text(v), v.revision or "-", _checks(v),
            result_text(v.last_verdict), age(v.since),
        ]
        if wide:
            cells += [v.slo or "-", ", ".join(v.images) or "-", v.forecast or "-"]
        cells.append(v.reason or "-")
        table.add_row(*cells)
    return table


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "s":
        return format_duration(value) if value >= 0.001 else f"{value:.2g}s"
    if unit == "x":
        return f"{value:.3g}x"
    return f"{value:.4g}"


def checks_table(checks: list[CheckView]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("CHECK", "RESULT", "CANARY", "BASELINE", "LIMIT", "CONFIDENCE", "SAMPLES"):
        table.add_column(column, overflow="fold")
    for c in checks:
        confidence = "-" if c.confidence is None else f"{c.confidence * 100:.1f}%"
        samples = "-" if c.samples is None else f"{c.samples:g}"
        canary = _value(c.canary, c.unit)
        if c.lower is not None and c.upper is not None:
            canary += f" [{_value(c.lower, c.unit)}, {_value(c.upper, c.unit)}]"
        table.add_row(c.name, result_text(c.result), canary, _value(c.baseline, c.unit),
                      _value(c.limit, c.unit), confidence, samples)
    return table


def _baseline(view: DeploymentView) -> Text:
    b = view.baseline
    assert b is not None
    if not b.found:
        return Text(f"Deployment {b.name} not found", style="red")
    return Text.assemble(f"Deployment {b.name}  {b.ready}/{b.replicas} ready  ", (", ".join(b.images), "dim"))


def detail(view: DeploymentView) -> RenderableType:
    """`kubectl argo rollouts get`-like: summary lines, checks, a tree of ReplicaSets and pods, decisions."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    since = f" (since {view.since:%Y-%m-%d %H:%M:%S}Z, {age(view.since)})" if view.since else ""
    rows: list[tuple[str, RenderableType]] = [
        ("Name:", f"{view.namespace}/{view.name}"),
        ("Mode:", view.mode or "-"),
        ("Status:", Text.assemble(phase_text(view), since)),
        ("Reason:", view.reason or "-"),
        ("SLO:", view.slo or "-"),
        ("Revision:", view.revision or "-"),
        ("Images:", "\n".join(view.images) or "-"),
        *([("Baseline:", _baseline(view))] if view.baseline else []),
        ("Checks:", _checks(view) + (f" every {format_duration(view.interval_seconds)}"
                                     if view.interval_seconds else "")),
        ("Last verdict:", Text.assemble(result_text(view.last_verdict),
                                        f" {age(view.last_check_at)} ago" if view.last_check_at else "")),
        ("Next:", view.forecast or "-"),
    ]
    for label, value in rows:
        head.add_row(label, value)
    parts: list[RenderableType] = [head]
    if view.checks:
        parts += [Text("\nLast check", style="bold"), checks_table(view.checks)]
    tree = Tree(Text(f"⟳ {view.name}", style="bold"), guide_style="dim")
    for rs in view.replicasets:
        style = {"canary": "cyan", "stable": "green", "old": "dim"}[rs.role]
        branch = tree.add(Text.assemble(
            (f"# revision:{rs.revision if rs.revision is not None else '?'}  ", "bold"),
            (f"{rs.role}", style), f"  ReplicaSet {rs.name}  {rs.ready}/{rs.replicas} ready  ",
            (", ".join(rs.images), "dim"),
        ))
        for pod in (p for p in view.pods if p.replicaset == rs.name):
            mark, pstyle = ("✔", "green") if pod.ready else ("◌", "yellow")
            restarts = f"  restarts:{pod.restarts}" if pod.restarts else ""
            branch.add(Text.assemble((f"{mark} ", pstyle), f"Pod {pod.name}  {pod.phase}{restarts}"))
    if view.replicasets:
        parts += [Text(""), tree]
    if view.decisions:
        parts.append(Text("\nLast decisions", style="bold"))
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("AGE", "TYPE", "REASON", "MESSAGE"):
            table.add_column(column, overflow="fold")
        for d in view.decisions:
            count = f" (x{d.count})" if d.count > 1 else ""
            table.add_row(age(d.at), Text(d.type, style="yellow" if d.type == "Warning" else ""), d.reason + count,
                          d.message)
        parts.append(table)
    if view.evidence is not None:
        rollback = view.evidence
        parts.append(Text(f"\nRoot cause of the last rollback (template {rollback.revision}, {age(rollback.at)} ago)",
                          style="bold"))
        parts += [Text(f"  {line}") for line in evidence_lines(rollback.evidence)]
    for warning in view.warnings:
        parts.append(Text(f"⚠ {warning}", style="yellow"))
    if view.pending_notifications:
        parts.append(Text("\nPending notifications", style="bold"))
        for n in view.pending_notifications:
            parts.append(Text(f"  ✉ {n.type} (revision {n.revision}, {age(n.at)} ago): {n.reason}", style="yellow"))
    return Group(*parts)
