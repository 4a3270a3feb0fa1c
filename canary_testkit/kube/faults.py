"""Fault injection: make the next matching requests fail or answer slowly."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "WATCH", "*")


@dataclass
class FaultRule:
    """Requests `method path` matching (`fnmatch` on the path, `*` method for any) get this treatment."""

    method: str
    path: str
    status: int | None
    times: int
    message: str | None = None
    delay: float = 0.0
    hits: int = field(default=0)

    def matches(self, method: str, path: str, watch: bool) -> bool:
        wanted = self.method
        if wanted == "WATCH":
            return watch and fnmatch.fnmatchcase(path, self.path)
        return wanted in ("*", method) and fnmatch.fnmatchcase(path, self.path)

    @property
    def remaining(self) -> int:
        return self.times - self.hits


def parse_pattern(pattern: str) -> tuple[str, str]:
    """`"PUT /apis/apps/v1/namespaces/*/deployments/web"` -> ("PUT", path); a bare path matches any method."""
    parts = pattern.strip().split(None, 1)
    if len(parts) == 2 and parts[0].upper() in METHODS:
        return parts[0].upper(), parts[1]
    if len(parts) == 1 and parts[0].upper() in METHODS:
        return parts[0].upper(), "*"
    if not pattern.strip().startswith(("/", "*")):
        raise ValueError(f"fault pattern {pattern!r} must be '[METHOD] /path/glob' with METHOD one of {METHODS}")
    return "*", pattern.strip()


class Faults:
    """Thread-safe list of pending fault rules, consumed in order of registration."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        if rule.times < 1:
            raise ValueError(f"times must be at least 1, not {rule.times}")
        with self._lock:
            self._rules.append(rule)
        return rule

    def take(self, method: str, path: str, watch: bool) -> FaultRule | None:
        """The first matching rule (counted as used), or None."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, watch):
                    rule.hits += 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
