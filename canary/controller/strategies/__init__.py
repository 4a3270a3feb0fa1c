"""One strategy per mode: how a mode finds its canary and baseline, when its canary is ready or its
rollout settled, and what each Action writes. Nothing outside `guard.py` and `canary.py` asks which
mode a Deployment is in; `strategy_for` is the one place that chooses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from canary.config.slo import RollbackAction, ServiceSLOSpec
from canary.controller.annotations import Annotations
from canary.controller.edits import ClearRequests, Edit, RestoreTemplate, ScaleReplicaSet, SetPaused, SetReplicas
from canary.controller.machine import Action
from canary.controller.status import CanaryStatus
from canary.kube.bodies import DeploymentBody
from canary.samples import Target
from canary.vocabulary import Mode

if TYPE_CHECKING:
    from canary.controller.snapshot import Snapshot

STOPS_SERVING = (RollbackAction.UNDO, RollbackAction.SCALE_TO_ZERO)
"""Rollback actions after which the rejected template must run no pod (pause and notify-only keep them)."""


@dataclass(frozen=True)
class Writes:
    """What one Action writes: edits in the guarded Deployment write, status fields set with them, and
    the writes around it (canary mode: the promotion into the baseline first; guard mode: ReplicaSet
    scales after)."""

    edits: tuple[Edit, ...] = ()
    status: Mapping[str, object] = field(default_factory=dict)
    promote_into_baseline: bool = False
    scales: tuple[ScaleReplicaSet, ...] = ()


Lookup = Callable[[str, str], DeploymentBody | None]
"""(namespace, name) -> the cached Deployment."""


class Strategy(Protocol):
    mode: Mode

    def config_problem(self, deployment: DeploymentBody, annotations: Annotations, spec: ServiceSLOSpec) -> str | None:
        """Why this mode cannot guard this Deployment with this configuration, or None."""
        ...

    def default_rollback(self) -> RollbackAction: ...

    def depends_on(self, deployment: DeploymentBody, annotations: Annotations | None) -> tuple[str, str] | None:
        """The other Deployment whose changes this one's decisions read, as (namespace, name)."""
        ...

    def baseline(
        self, deployment: DeploymentBody, annotations: Annotations | None, lookup: Lookup
    ) -> tuple[DeploymentBody | None, str | None]:
        """The baseline Deployment the canary is compared with (canary mode), or why it cannot be used."""
        ...

    def target(self, snap: Snapshot) -> Target | None:
        """What the sources measure; None when there is nothing to compare yet."""
        ...

    def canary_ready(self, snap: Snapshot) -> bool: ...

    def serving_rejected(self, snap: Snapshot) -> bool:
        """The current (rejected) template could run pods."""
        ...

    def settled(self, snap: Snapshot) -> bool:
        """Promoting: the promotion is complete. RollingBack: the rollback is in place."""
        ...

    def writes(self, action: Action, snap: Snapshot, status: CanaryStatus, promote_asked: bool) -> Writes:
        """What `action` writes, given the status the decision leads to."""
        ...

    def compared_images(self, snap: Snapshot) -> tuple[str, ...]:
        """The images the canary is compared with (and rolled back to)."""
        ...


def strategy_for(annotations: Annotations | None) -> Strategy:
    """Canary mode when the Deployment names a baseline, else guard mode."""
    from canary.controller.strategies.canary import CANARY
    from canary.controller.strategies.guard import GUARD

    return CANARY if annotations is not None and annotations.baseline else GUARD


# -- writes both modes share -------------------------------------------------------------------------


def restore_replicas(snap: Snapshot, status: CanaryStatus) -> Writes:
    """A Deployment scaled to 0 by a scale-to-zero rollback gets its replicas back for a new revision."""
    if status.replicas_before and snap.deployment.spec_replicas == 0:
        return Writes(edits=(SetReplicas(status.replicas_before),))
    return Writes()


def clear_requests() -> Writes:
    return Writes(edits=(ClearRequests(),))


def pause() -> Writes:
    return Writes(edits=(SetPaused(True),))


def undo(snap: Snapshot) -> Writes:
    """`kubectl rollout undo` to the stable template (else pause, when no older template is known)."""
    previous = snap.previous
    if previous is None:
        return pause()
    restored = previous.template_hash
    return Writes(
        edits=(RestoreTemplate(previous.name, previous.template),),
        status={"template_hash": restored, "stable_hash": restored},
    )


def scale_to_zero(snap: Snapshot) -> Writes:
    return Writes(edits=(SetReplicas(0),), status={"replicas_before": snap.deployment.spec_replicas})
