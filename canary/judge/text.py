"""How numbers read in check reasons (Slack, tables, Deployment annotations)."""

from __future__ import annotations

from canary.config.units import format_duration


def percent(ratio: float) -> str:
    """0.2 -> `20.0%`, 0.005 -> `0.5%`, 0.00012 -> `0.012%`."""
    value = ratio * 100
    return f"{value:.1f}%" if value >= 1 or value == 0 else f"{value:.2g}%"


def seconds(value: float) -> str:
    """0.32 -> `320ms`, 2 -> `2.00s`."""
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def window(value: float) -> str:
    """A span in seconds as a duration, to the second: `2m`, `18m23s`."""
    return format_duration(max(1, round(value)))


def minutes(value: float) -> str:
    """Roughly: `40s`, `12 min`, `3.5 h`."""
    if value < 60:
        return f"{value:.0f}s"
    if value < 3600:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def eta(detect: float | None, promote: float | None, what: str, per_second: float) -> str:
    """Why a check waits, in the operator's terms: what the current traffic can decide and when."""
    rate = f"{per_second:.2g} req/s"
    parts = []
    if detect is not None:
        parts.append(f"a {what} of 2x the limit would be detected in ~{minutes(detect)} at {rate}")
    if promote is not None:
        parts.append(f"promotion expected in ~{minutes(promote)} if the estimate holds")
    return "; ".join(parts) or f"no decision in sight at {rate}"
