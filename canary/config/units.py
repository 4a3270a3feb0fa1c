"""Durations (`30s`, `2m`, `500ms`, `1h30m`) and percentages (`99.5`, `2%`) as pydantic field types.

Both parse the forms users write in YAML and annotations and serialise back to that form, so a
model dumped to JSON/YAML reads the way it was written.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
MAX_DURATION_SECONDS = 366 * 86400.0
"""No duration (window, interval, latency) may exceed a year; fields set tighter bounds."""
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from `30s`, `2m`, `500ms`, `1h30m`, `1.5s` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 2m or 500ms, got a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"invalid duration {value!r}: use forms such as 30s, 2m, 500ms or 1h30m")
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise ValueError(f"expected a duration such as 30s, 2m or 500ms, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"duration {value!r} is longer than a year")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest usual spelling: 0.5 -> `500ms`, 90 -> `1m30s`, 120 -> `2m`."""
    if seconds < 1 or not float(seconds).is_integer():
        if (seconds * 1000).is_integer():
            return f"{int(seconds * 1000)}ms"
        return f"{seconds:g}s"
    total = int(seconds)
    out = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out


def parse_percent(value: object) -> float:
    """A percentage in [0, 100] from `99.5`, `99.5%` or `2%`."""
    if isinstance(value, bool):
        raise ValueError("expected a percentage such as 99.5 or 2%, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        if not re.fullmatch(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", text):
            raise ValueError(f"invalid percentage {value!r}: use forms such as 99.5 or 2%")
        number = float(text)
    else:
        raise ValueError(f"expected a percentage such as 99.5 or 2%, got {type(value).__name__}")
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise ValueError(f"percentage must be between 0 and 100, got {value!r}")
    return number


def format_percent(number: float) -> str:
    return f"{number:g}%"


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
"""Seconds, written as `30s`, `2m`, `500ms`."""

Percent = Annotated[float, BeforeValidator(parse_percent), PlainSerializer(format_percent, return_type=str)]
"""A percentage in [0, 100], written as `99.5` or `2%`."""
