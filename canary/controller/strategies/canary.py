"""Canary mode: a separate canary Deployment (`canary.mop.dev/baseline: <stable Deployment>`) is
compared with its baseline Deployment. Promotion copies the canary's pod template into the baseline;
a rejected canary is scaled to 0 (the default) or undone.

What each Action writes in canary mode is `CanaryStrategy.writes`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canary.config.slo import PromoteMode, RollbackAction, ServiceSLOSpec
from canary.controller import strategies as common
from canary.controller.annotations import Annotations
from canary.controller.edits import SetReplicas
from canary.controller.machine import Action
from canary.controller.status import CanaryStatus
from canary.controller.strategies import STOPS_SERVING, Lookup, Writes
from canary.kube.bodies import DeploymentBody
from canary.samples import Target, Workload
from canary.vocabulary import CanaryPhase, Mode

if TYPE_CHECKING:
    from canary.controller.snapshot import Snapshot


class CanaryStrategy:
    mode = Mode.CANARY

    def config_problem(self, deployment: DeploymentBody, annotations: Annotations, spec: ServiceSLOSpec) -> str | None:
        if annotations.baseline == deployment.name:
            return "annotation canary.mop.dev/baseline: a Deployment cannot be its own baseline"
        return None

    def default_rollback(self) -> RollbackAction:
        return RollbackAction.SCALE_TO_ZERO

    def depends_on(self, deployment: DeploymentBody, annotations: Annotations | None) -> tuple[str, str] | None:
        """The baseline: a promotion landing there settles the canary."""
        name = annotations.baseline if annotations is not None else None
        return (deployment.namespace, name) if name else None

    def baseline(
        self, deployment: DeploymentBody, annotations: Annotations | None, lookup: Lookup
    ) -> tuple[DeploymentBody | None, str | None]:
        name = annotations.baseline if annotations is not None else None
        baseline = lookup(deployment.namespace, name) if name else None
        if baseline is None:
            return None, f"annotation canary.mop.dev/baseline: Deployment {deployment.namespace}/{name} not found"
        return baseline, None

    def target(self, snap: Snapshot) -> Target | None:
        baseline = snap.baseline
        if baseline is None:
            return None
        ns, name = snap.deployment.key
        return snap.compare(Workload(namespace=ns, deployment=name),
                            (Workload(namespace=ns, deployment=baseline.name),))

    def canary_ready(self, snap: Snapshot) -> bool:
        return snap.deployment.ready_replicas > 0

    def serving_rejected(self, snap: Snapshot) -> bool:
        """The canary Deployment asks for replicas, or still has ready ones."""
        return snap.deployment.spec_replicas > 0 or snap.deployment.ready_replicas > 0

    def settled(self, snap: Snapshot) -> bool:
        status = snap.status
        if status is None:
            return False
        if status.phase is CanaryPhase.PROMOTING:
            return snap.baseline is not None and promoted(snap.baseline, snap.deployment)
        if status.phase is CanaryPhase.ROLLING_BACK:
            if snap.action is RollbackAction.UNDO:
                return snap.deployment.rollout_complete
            if snap.action is RollbackAction.SCALE_TO_ZERO:
                return snap.deployment.replicas == 0
            return True
        return False

    def writes(self, action: Action, snap: Snapshot, status: CanaryStatus, promote_asked: bool) -> Writes:
        if action is Action.PAUSE:
            return common.pause()
        if action is Action.CONTAIN:
            if snap.action not in STOPS_SERVING:
                return Writes()  # pause and notify-only keep the canary's pods on purpose
            replicas = snap.deployment.spec_replicas
            return Writes(edits=(SetReplicas(0),), status={"replicas_before": replicas} if replicas > 0 else {})
        if action is Action.PROMOTE:
            spec = snap.spec
            manual = spec is not None and spec.promote is PromoteMode.MANUAL
            return Writes(promote_into_baseline=not manual or promote_asked)
        if action is Action.RESTORE_REPLICAS:
            return common.restore_replicas(snap, status)
        if action is Action.CLEAR_REQUEST:
            return common.clear_requests()
        if action is Action.ROLLBACK:
            return self._rollback(snap)
        return Writes()  # HOLD and RESUME: a canary Deployment's rollout is never held

    def _rollback(self, snap: Snapshot) -> Writes:
        """scale-to-zero (the default): the canary Deployment to 0; undo: its previous template back;
        pause: paused; notify-only: nothing."""
        action = snap.action
        if action is RollbackAction.SCALE_TO_ZERO:
            return common.scale_to_zero(snap)
        if action is RollbackAction.UNDO:
            return common.undo(snap)
        if action is RollbackAction.PAUSE:
            return common.pause()
        return Writes()

    def compared_images(self, snap: Snapshot) -> tuple[str, ...]:
        if snap.baseline is not None:
            return snap.baseline.images
        return snap.previous.images if snap.previous is not None else ()


def promoted(baseline: DeploymentBody, canary: DeploymentBody) -> bool:
    """The baseline runs the canary's pod template (its own pod labels aside)."""
    return baseline.template_without_labels() == canary.template_without_labels()


CANARY = CanaryStrategy()
