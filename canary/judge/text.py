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
    return format_duration(value)


def probability(value: float) -> str:
    """p-values and levels: two significant digits, `0.0016`, `3.1e-07`."""
    return f"{value:.2g}"


def evidence(p_value: float, alpha: float, look: int) -> str:
    relation = "<" if p_value < alpha else ">="
    return f"p={probability(p_value)} {relation} alpha {probability(alpha)} at look {look}"
