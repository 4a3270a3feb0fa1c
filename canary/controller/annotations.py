"""The annotation contract: parse a Deployment's `canary.mop.dev/*` annotations into typed settings.

Every problem names the annotation and the reason; an invalid annotation makes the Deployment
`Invalid` and nothing else is changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from canary.config.slo import (
    MAX_COUNT,
    MAX_WINDOW,
    MIN_INTERVAL,
    MIN_WINDOW,
    InconclusivePolicy,
    RollbackAction,
    ServiceSLOSpec,
    object_name_problem,
)
from canary.config.units import parse_duration

PREFIX = "canary.mop.dev/"
ENABLED = PREFIX + "enabled"
SLO = PREFIX + "slo"
BASELINE = PREFIX + "baseline"
INTERVAL = PREFIX + "interval"
FAILED_CHECKS = PREFIX + "failed-checks"
SUCCESSFUL_CHECKS = PREFIX + "successful-checks"
ROLLBACK_ACTION = PREFIX + "rollback-action"
MAX_DURATION = PREFIX + "max-duration"
ON_INCONCLUSIVE = PREFIX + "on-inconclusive"
SLACK_CHANNEL = PREFIX + "slack-channel"
ABORT = PREFIX + "abort"
SKIP = PREFIX + "skip"
PROMOTE = PREFIX + "promote"
RETRY = PREFIX + "retry"
REQUESTS = (ABORT, SKIP, PROMOTE, RETRY)
"""One-shot requests: each is consumed (acted on or refused) by the first reconcile that sees it."""

_BOOLEANS = {"true": True, "false": False}
C = TypeVar("C", bound=StrEnum)
_HASH_LENGTH = 16


class AnnotationError(ValueError):
    """An annotation that cannot be used; the message names it."""


class Annotations(BaseModel):
    """What a Deployment's annotations ask of the controller."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    slo: str | None = None
    baseline: str | None = None
    interval: float | None = None
    failed_checks: int | None = None
    successful_checks: int | None = None
    rollback_action: RollbackAction | None = None
    max_duration: float | None = None
    on_inconclusive: InconclusivePolicy | None = None
    slack_channel: str | None = None
    abort: str | None = None
    """A request: "true" (the revision under analysis) or the template hash it was issued for."""
    skip: str | None = None
    promote: str | None = None
    retry: str | None = None

    def apply(self, spec: ServiceSLOSpec) -> ServiceSLOSpec:
        """The SLO spec with this Deployment's overrides applied."""
        analysis = spec.analysis.model_copy(
            update={
                k: v
                for k, v in {
                    "interval": self.interval,
                    "failed_checks": self.failed_checks,
                    "successful_checks": self.successful_checks,
                    "max_duration": self.max_duration,
                    "on_inconclusive": self.on_inconclusive,
                }.items()
                if v is not None
            }
        )
        if analysis.window < analysis.interval:
            raise AnnotationError(
                f"annotation {INTERVAL}: interval {analysis.interval:g}s is longer than the SLO's window "
                f"{analysis.window:g}s"
            )
        rollback = spec.rollback.model_copy(update={"action": self.rollback_action or spec.rollback.action})
        return spec.model_copy(update={"analysis": analysis, "rollback": rollback})


def _bool(annotations: Mapping[str, str], key: str) -> bool:
    raw = annotations.get(key)
    if raw is None:
        return False
    value = _BOOLEANS.get(raw.strip().lower())
    if value is None:
        raise AnnotationError(f'annotation {key}: expected "true" or "false", got {raw!r}')
    return value


def _request(annotations: Mapping[str, str], key: str) -> str | None:
    """A one-shot request: "true", "false" (none) or the 16-hex-digit template hash it is for."""
    raw = annotations.get(key)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value == "false" or not value:
        return None
    if value == "true" or (len(value) == _HASH_LENGTH and all(c in "0123456789abcdef" for c in value)):
        return value
    raise AnnotationError(
        f'annotation {key}: expected "true" or the template hash the request is for, got {raw!r}'
    )


def _choice(annotations: Mapping[str, str], key: str, choices: type[C]) -> C | None:
    raw = annotations.get(key)
    if raw is None:
        return None
    try:
        return choices(raw.strip())
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise AnnotationError(f"annotation {key}: {raw!r} is not one of {allowed}") from None


def _count(annotations: Mapping[str, str], key: str) -> int | None:
    raw = annotations.get(key)
    if raw is None:
        return None
    text = raw.strip()
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise AnnotationError(f"annotation {key}: expected a whole number such as 3 (digits 0-9 only), got {raw!r}")
    value = int(text)
    if not 1 <= value <= MAX_COUNT:
        raise AnnotationError(f"annotation {key}: must be between 1 and {MAX_COUNT}, got {value}")
    return value


def _name(annotations: Mapping[str, str], key: str) -> str | None:
    raw = annotations.get(key)
    if raw is None:
        return None
    value = raw.strip()
    problem = object_name_problem(value)
    if problem:
        raise AnnotationError(f"annotation {key}: {problem}")
    return value


def parse_annotations(annotations: Mapping[str, str] | None) -> Annotations:
    """Parse the `canary.mop.dev/*` annotations; raise AnnotationError naming the first bad one."""
    ann = annotations or {}
    interval = None
    if INTERVAL in ann:
        try:
            interval = parse_duration(ann[INTERVAL])
        except ValueError as exc:
            raise AnnotationError(f"annotation {INTERVAL}: {exc}") from None
        if interval < MIN_INTERVAL:
            raise AnnotationError(f"annotation {INTERVAL}: {ann[INTERVAL]!r} is shorter than {MIN_INTERVAL:g}s")
    max_duration = None
    if MAX_DURATION in ann:
        try:
            max_duration = parse_duration(ann[MAX_DURATION])
        except ValueError as exc:
            raise AnnotationError(f"annotation {MAX_DURATION}: {exc}") from None
        if not MIN_WINDOW <= max_duration <= MAX_WINDOW:
            raise AnnotationError(f"annotation {MAX_DURATION}: {ann[MAX_DURATION]!r} is not between "
                                  f"{MIN_WINDOW:g}s and {MAX_WINDOW / 86400:g} days")
    channel = ann.get(SLACK_CHANNEL)
    if channel is not None and (not channel.strip() or len(channel) > 80 or any(c.isspace() for c in channel)):
        raise AnnotationError(f"annotation {SLACK_CHANNEL}: {channel!r} is not a Slack channel name")
    return Annotations(
        enabled=_bool(ann, ENABLED),
        max_duration=max_duration,
        on_inconclusive=_choice(ann, ON_INCONCLUSIVE, InconclusivePolicy),
        slo=_name(ann, SLO),
        baseline=_name(ann, BASELINE),
        interval=interval,
        failed_checks=_count(ann, FAILED_CHECKS),
        successful_checks=_count(ann, SUCCESSFUL_CHECKS),
        rollback_action=_choice(ann, ROLLBACK_ACTION, RollbackAction),
        slack_channel=channel.strip() if channel else None,
        abort=_request(ann, ABORT),
        skip=_request(ann, SKIP),
        promote=_request(ann, PROMOTE),
        retry=_request(ann, RETRY),
    )


def is_enabled(annotations: Mapping[str, str] | None) -> bool:
    """Opted in: `canary.mop.dev/enabled: "true"` (nothing else is ever touched)."""
    return (annotations or {}).get(ENABLED, "").strip().lower() == "true"
