"""The report's chart: canary vs baseline error rate and p99 at every check, the SLO's limits, and the
story's moments (new version applied, fault, rollback, freeze). Drawn with matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from canary_testkit.demo.record import DecisionRecord, analyses
from canary_testkit.demo.story import Marks

CANARY_COLORS = ("tab:green", "tab:red", "tab:purple", "tab:brown")
"""One per analysed version, in order (the baseline is always blue)."""


def _moments(ax: Axes, marks: Marks, label: bool) -> None:
    moments = [
        (marks.v2_applied, "v2 applied", "tab:gray", ":"),
        (marks.fault, "v3 applied (fault)", "tab:orange", "--"),
        (marks.rollback, "rollback", "tab:red", "-"),
        (marks.reapplied, "v3 re-applied (frozen)", "tab:blue", "-."),
    ]
    for at, text, color, style in moments:
        if at is not None:
            ax.axvline(at, color=color, linestyle=style, linewidth=1.5, label=text if label else None)


def _points(run: Sequence[DecisionRecord], side: str, value: str, scale: float) -> tuple[list[float], list[float]]:
    times, values = [], []
    for record in run:
        sample = record.canary if side == "canary" else record.baseline
        number = getattr(sample, value) if sample is not None else None
        if number is not None:
            times.append(record.t)
            values.append(number * scale)
    return times, values


def draw_chart(
    records: Sequence[DecisionRecord], marks: Marks, *, error_rate_limit: float, p99_limit: float, title: str,
    path: Path,
) -> Path:
    """Write the PNG to `path` (its directory must exist) and return `path`. One line per analysed
    version and side, so the canary of one analysis is never joined to the next one's."""
    runs = [run for run in analyses(records) if any(r.measured for r in run)]
    figure = Figure(figsize=(10, 6.5), dpi=100)
    errors_ax, latency_ax = figure.subplots(2, 1, sharex=True)
    for ax, value, scale, limit, unit in (
        (errors_ax, "error_rate", 100.0, error_rate_limit * 100, "error rate (%)"),
        (latency_ax, "p99", 1000.0, p99_limit * 1000, "p99 latency (ms)"),
    ):
        for index, run in enumerate(runs):
            first = index == 0
            version = run[0].image
            ax.plot(*_points(run, "baseline", value, scale), marker="s", markersize=4, color="tab:blue",
                    label="baseline" if ax is errors_ax and first else None)
            ax.plot(*_points(run, "canary", value, scale), marker="o", markersize=4,
                    color=CANARY_COLORS[index % len(CANARY_COLORS)],
                    label=f"canary ({version})" if ax is errors_ax else None)
        ax.axhline(limit, color="black", linestyle="--", linewidth=1, label="SLO limit" if ax is errors_ax else None)
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        _moments(ax, marks, label=ax is errors_ax)
    last = max([r.t for r in records] + [m for m in (marks.reapplied, marks.rollback) if m is not None], default=1.0)
    latency_ax.set_xlim(0, last * 1.12 + 1)
    if marks.rollback is not None:
        errors_ax.annotate("rolled back", xy=(marks.rollback, errors_ax.get_ylim()[1] * 0.9), xytext=(4, 0),
                           textcoords="offset points", color="tab:red", fontweight="bold")
    latency_ax.set_xlabel("seconds since the demo started")
    errors_ax.legend(loc="upper left", fontsize="small", ncol=2)
    errors_ax.set_title(title)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
