"""The controller's words, in one place: how a Deployment is guarded, the phases of its analysis, why
it is frozen, and the types of the Kubernetes Events it records."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Mode(StrEnum):
    """Guard mode: the Deployment's own rolling update is the canary. Canary mode: a separate canary
    Deployment is compared with its baseline (`canary.mop.dev/baseline`) and promoted into it."""

    GUARD = "guard"
    CANARY = "canary"


class CanaryPhase(StrEnum):
    WAITING = "Waiting"
    ANALYSING = "Analysing"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    FROZEN = "Frozen"
    INVALID = "Invalid"


CHECKED_PHASES = frozenset({CanaryPhase.ANALYSING, CanaryPhase.PROMOTING, CanaryPhase.FROZEN})
"""Phases in which scheduled checks run (Frozen only while frozen by a backend outage)."""


class FreezeCause(StrEnum):
    REJECTED = "rejected-template"
    BACKEND = "backend-down"
    PAUSED = "rollback-pause"


EventType = Literal["Normal", "Warning"]
"""The type of a Kubernetes Event (core/v1 allows exactly these two)."""
