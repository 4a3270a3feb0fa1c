"""The `canary.mop.dev/status` annotation: the controller's whole state for one Deployment.

Written after every check and every transition, in the same write as any change to the Deployment,
so a controller killed at any moment resumes each analysis with the same counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canary.cumulative import Cumulative
from canary.evidence.model import RollbackEvidence
from canary.judge.model import Verdict
from canary.notify.events import CanaryEvent, StoredDeliveryKey
from canary.vocabulary import CanaryPhase, FreezeCause, Mode

STATUS_ANNOTATION = "canary.mop.dev/status"
MAX_REJECTED = 20
MAX_DELIVERED = 50
MAX_STATUS_BYTES = 64 * 1024
"""A status annotation longer than this is not read (the controller's own stays far below)."""


class CanaryStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phase: CanaryPhase
    mode: Mode
    revision: str = ""
    """The Deployment's `deployment.kubernetes.io/revision` when this analysis started."""
    template_hash: str = ""
    """The pod template this status is about (under analysis, promoted, or restored)."""
    stable_hash: str = ""
    """The last known-good template: the rollback target."""
    checks_passed: int = 0
    checks_failed: int = 0
    """Consecutive failed checks."""
    backend_errors: int = 0
    """Consecutive checks that ended in a backend error."""
    looks: int = 0
    """Checks run on this revision, the judge's sequential look index."""
    last_verdict: Verdict | None = None
    cumulative: Cumulative | None = None
    """The canary's and baseline's counts since the analysis began (what the judge tests)."""
    last_check_at: datetime | None = None
    conclusive_at: datetime | None = None
    """The last check that passed or failed (not inconclusive): progress, for `analysis.maxWait`."""
    stuck_at: datetime | None = None
    """When this revision was reported stuck (once per revision)."""
    started_at: datetime | None = None
    updated_at: datetime | None = None
    message: str = ""
    freeze_cause: FreezeCause | None = None
    rejected: list[str] = Field(default_factory=list)
    """Template hashes that were rolled back (newest last)."""
    replicas_before: int | None = None
    """Canary mode, scale-to-zero: the replica count to restore on the next rollout."""
    outbox: list[CanaryEvent] = Field(default_factory=list)
    """Notifications decided but not yet delivered (sent again after a restart)."""
    delivered: list[StoredDeliveryKey] = Field(default_factory=list)
    """Keys of delivered notifications (newest last), so none is sent twice."""
    evidence: RollbackEvidence | None = None
    """Root-cause evidence of the last rollback (routes, downstream cause, traces, log lines; bounded)."""

    def to_annotation(self) -> str:
        return self.model_dump_json(exclude_defaults=False)


def read_status(annotations: Mapping[str, str] | None) -> tuple[CanaryStatus | None, str | None]:
    """The status stored on a Deployment, or (None, reason) when absent or unreadable.

    Never raises, whatever the annotation holds: anyone who can edit a Deployment can write it, so
    oversized, deeply nested or otherwise hostile values are unreadable, with a reason.
    """
    raw = annotations.get(STATUS_ANNOTATION) if isinstance(annotations, Mapping) else None
    if raw is None:
        return None, None
    problem = f"annotation {STATUS_ANNOTATION} is not a valid status"
    if not isinstance(raw, str):
        return None, f"{problem}: not a string"
    if len(raw) > MAX_STATUS_BYTES:
        return None, f"{problem}: {len(raw)} characters, more than {MAX_STATUS_BYTES}"
    try:
        return CanaryStatus.model_validate(json.loads(raw)), None
    except (ValueError, ValidationError) as exc:
        return None, f"{problem}: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
    except RecursionError:
        return None, f"{problem}: nested too deeply"
    except Exception as exc:  # nothing read from an object may escape its own handling
        return None, f"{problem}: {type(exc).__name__}"
