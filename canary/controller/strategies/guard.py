"""Guard mode: the Deployment's own rolling update is the canary. The rollout is held (paused) once
the new ReplicaSet has pods, the new ReplicaSet is compared with the older ones, and a rejected
template is undone (`kubectl rollout undo`) or, under a GitOps agent, contained: the rollout paused
and the rejected ReplicaSet scaled to 0, since Git would apply the template again.

What each Action writes in guard mode is `GuardStrategy.writes`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canary.config.slo import RollbackAction, ServiceSLOSpec
from canary.controller import strategies as common
from canary.controller.annotations import Annotations
from canary.controller.edits import ScaleReplicaSet, SetPaused
from canary.controller.machine import Action
from canary.controller.status import CanaryStatus
from canary.controller.strategies import STOPS_SERVING, Lookup, Writes
from canary.kube.bodies import DeploymentBody
from canary.samples import Target, Workload
from canary.vocabulary import CanaryPhase, Mode

if TYPE_CHECKING:
    from canary.controller.snapshot import Snapshot


class GuardStrategy:
    mode = Mode.GUARD

    def config_problem(self, deployment: DeploymentBody, annotations: Annotations, spec: ServiceSLOSpec) -> str | None:
        if spec.rollback.action is RollbackAction.SCALE_TO_ZERO:
            return (
                "rollback action scale-to-zero needs canary mode (canary.mop.dev/baseline): in guard mode it would "
                "scale the only Deployment of the service to 0; use undo or pause"
            )
        if deployment.strategy_type == "Recreate":
            return (
                "spec.strategy.type: Recreate replaces every pod at once, so there is no canary step to hold and "
                "analyse in guard mode; use RollingUpdate, or canary mode (a separate canary Deployment with "
                "canary.mop.dev/baseline)"
            )
        return None

    def default_rollback(self) -> RollbackAction:
        return RollbackAction.UNDO

    def depends_on(self, deployment: DeploymentBody, annotations: Annotations | None) -> tuple[str, str] | None:
        return None

    def baseline(
        self, deployment: DeploymentBody, annotations: Annotations | None, lookup: Lookup
    ) -> tuple[DeploymentBody | None, str | None]:
        return None, None  # the older ReplicaSets of the same Deployment are the baseline

    def target(self, snap: Snapshot) -> Target | None:
        canary_rs = snap.canary_rs
        if canary_rs is None:
            return None
        ns, name = snap.deployment.key
        return snap.compare(
            Workload(namespace=ns, deployment=name, replicaset=canary_rs.name),
            tuple(Workload(namespace=ns, deployment=name, replicaset=rs.name) for rs in snap.others),
        )

    def canary_ready(self, snap: Snapshot) -> bool:
        return snap.canary_rs is not None and snap.canary_rs.ready_replicas > 0

    def serving_rejected(self, snap: Snapshot) -> bool:
        """The rollout is unpaused, or the rejected template's ReplicaSet has pods."""
        return not snap.deployment.paused or (snap.canary_rs is not None and snap.canary_rs.pods > 0)

    def settled(self, snap: Snapshot) -> bool:
        status = snap.status
        if status is None:
            return False
        if status.phase is CanaryPhase.PROMOTING:
            return snap.deployment.rollout_complete
        if status.phase is CanaryPhase.ROLLING_BACK:
            if _contains(snap):
                return not any(rs.template_hash in status.rejected and rs.pods > 0 for rs in snap.replicasets)
            if snap.action is RollbackAction.UNDO:
                return snap.deployment.rollout_complete
            return True
        return False

    def writes(self, action: Action, snap: Snapshot, status: CanaryStatus, promote_asked: bool) -> Writes:
        if action is Action.HOLD:
            # Held once the canary ReplicaSet has pods; until then the rollout must run to create them.
            return Writes(edits=(SetPaused(snap.canary_rs is not None and snap.canary_rs.pods > 0),))
        if action is Action.PAUSE:
            return common.pause()
        if action is Action.CONTAIN:
            # Its ReplicaSet goes to 0 after the write, unless the rollback action keeps pods on purpose.
            stops = snap.action in STOPS_SERVING
            return Writes(edits=(SetPaused(True),), scales=_scale_down_rejected(snap, status, paused=True) if stops
                          else ())
        if action in (Action.RESUME, Action.PROMOTE):
            return Writes(edits=(SetPaused(False),))
        if action is Action.RESTORE_REPLICAS:
            return common.restore_replicas(snap, status)
        if action is Action.CLEAR_REQUEST:
            return common.clear_requests()
        return self._rollback(snap, status)

    def _rollback(self, snap: Snapshot, status: CanaryStatus) -> Writes:
        """undo: the stable template back and the rejected ReplicaSet to 0 while it is the minority (under a
        GitOps agent: paused and contained instead); pause: paused; notify-only: nothing."""
        action = snap.action
        if action is RollbackAction.UNDO and _contains(snap):
            return Writes(edits=(SetPaused(True),), scales=_scale_down_rejected(snap, status, paused=True))
        if action is RollbackAction.UNDO:
            undo = common.undo(snap)
            return Writes(edits=undo.edits, status=undo.status, scales=_scale_down_rejected(snap, status, paused=False))
        if action is RollbackAction.SCALE_TO_ZERO:
            return common.scale_to_zero(snap)
        if action is RollbackAction.PAUSE:
            return common.pause()
        return Writes()

    def compared_images(self, snap: Snapshot) -> tuple[str, ...]:
        return snap.previous.images if snap.previous is not None else ()


def _contains(snap: Snapshot) -> bool:
    """Under a GitOps agent an undo would be re-applied from Git: the rollback pauses and scales the rejected
    ReplicaSet to 0 instead of writing the stable template back."""
    return bool(snap.gitops) and snap.action is RollbackAction.UNDO


def _scale_down_rejected(snap: Snapshot, status: CanaryStatus, *, paused: bool) -> tuple[ScaleReplicaSet, ...]:
    """After the Deployment write: rejected templates' ReplicaSets to 0 pods at once, so none serves while
    the deployment controller catches up.

    Paused (contain): a paused Deployment only scales its one active ReplicaSet to full size, so the stable
    ReplicaSet is given pods first when it has none (else the newest, rejected, one would be scaled back up).
    Undo: the rejected ReplicaSet is now an old one, only ever scaled down; it is taken to 0 at once only
    while it is the minority (the canary step), else the rolling undo replaces its pods without a capacity
    drop."""
    stable = snap.previous
    if stable is None:
        return ()
    rejected = [rs for rs in snap.replicasets if rs.template_hash in status.rejected
                and rs.template_hash != stable.template_hash and rs.pods > 0]
    if not paused and stable.ready_replicas < sum(rs.pods for rs in rejected):
        return ()
    scales = [ScaleReplicaSet(stable.name, snap.deployment.spec_replicas, stable.resource_version)] \
        if paused and rejected and stable.pods == 0 else []
    # A ReplicaSet already scaled to 0 whose pods are still terminating needs no second write.
    return (*scales, *(ScaleReplicaSet(rs.name, 0, rs.resource_version) for rs in rejected if rs.spec_replicas > 0))


GUARD = GuardStrategy()
