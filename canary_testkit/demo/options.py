"""The demo's choices, importable without its heavy dependencies (the CLI loads the rest on use)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

MIN_SPEED: Final = 0.25
MAX_SPEED: Final = 4.0


class Scenario(StrEnum):
    ERRORS = "errors"
    """v3 has an error spike."""
    LATENCY = "latency"
    """v3 has a p99 latency regression."""
    HEALTHY = "healthy"
    """Only the promotion of a healthy v2."""


@dataclass(frozen=True)
class DemoOptions:
    scenario: Scenario = Scenario.ERRORS
    speed: float = 1.0
    report_dir: Path = Path("demo-report")
    keep: bool = False
    slack_webhook: str | None = None
    metrics_port: int = 0
