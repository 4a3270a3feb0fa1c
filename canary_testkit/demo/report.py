"""`demo-report/`: `decisions.json` (the story, its moments and every decision) and `chart.png`."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from canary_testkit.demo import scenario as sc
from canary_testkit.demo.chart import draw_chart
from canary_testkit.demo.environment import Endpoints
from canary_testkit.demo.record import DecisionRecord
from canary_testkit.demo.story import Marks, Step

DECISIONS = "decisions.json"
CHART = "chart.png"


class Limits(BaseModel):
    """The SLO the demo's canaries are held to."""

    availability: float
    error_rate: float
    """1 - availability: the highest error ratio the SLO allows."""
    latency_p99: float
    successful_checks: int
    failed_checks: int
    interval: float
    window: float


class DemoReport(BaseModel):
    scenario: str
    speed: float
    started_at: datetime
    ok: bool
    error: str | None = None
    limits: Limits
    steps: list[Step]
    marks: Marks
    fault_to_rollback_seconds: float | None
    endpoints: Endpoints | None
    slack_messages: list[dict[str, Any]]
    mirrored_messages: int | None = None
    """Messages delivered to `--slack-webhook` (None without it)."""
    decisions: list[DecisionRecord]


def limits(pace: sc.Pace) -> Limits:
    spec = sc.slo(pace).spec
    return Limits(
        availability=spec.objectives.availability, error_rate=1 - spec.objectives.availability / 100,
        latency_p99=spec.objectives.latency_p99 or 0.0, successful_checks=spec.analysis.successful_checks,
        failed_checks=spec.analysis.failed_checks, interval=spec.analysis.interval, window=spec.analysis.window,
    )


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def write_report(report: DemoReport, directory: Path) -> list[Path]:
    """Write `decisions.json` and `chart.png` into `directory` (created if needed); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    decisions = directory / DECISIONS
    _write_atomically(decisions, json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    chart = draw_chart(
        report.decisions, report.marks, error_rate_limit=report.limits.error_rate,
        p99_limit=report.limits.latency_p99,
        title=f"shop/checkout: canary vs baseline at every check (scenario {report.scenario})",
        path=directory / CHART,
    )
    return [decisions, chart]
