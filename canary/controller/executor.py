"""Carry a Plan out, and the one writer of the status annotation.

Every write of the status annotation goes through `StatusWriter.write`, on the controller's worker
thread: decisions (with the Deployment edits in the same merge patch), deliveries and evidence. A
decision's write is guarded: the fresh read must still hold the template, the status and the requests
its Snapshot saw, else nothing is written and the next reconcile decides again on the new state.
Events, metrics and notifications follow the write, never precede it, and never block it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from canary.analysis import Outcome
from canary.config.slo import ServiceSLO
from canary.controller import edits as edit
from canary.controller.machine import Decision
from canary.controller.metrics import ControllerMetrics
from canary.controller.outbox import StatusChange, StoreEvidence
from canary.controller.plan import Plan
from canary.controller.snapshot import Snapshot, guarded_state_of
from canary.controller.status import CanaryStatus, read_status
from canary.controller.strategies.canary import promoted
from canary.kube.bodies import DeploymentBody
from canary.kube.deployments import Mutation, WriteOutcome
from canary.kube.wire import JsonObject
from canary.notify.events import CanaryEvent
from canary.vocabulary import EventType

log = logging.getLogger(__name__)

MAX_CONFLICTS = 5
"""409 Conflicts on one write before giving up (each one re-reads and re-checks the guard)."""
MAX_EXPECTATIONS = 4096
"""ReplicaSet scales remembered until the cache shows them."""


class DeploymentWrites(Protocol):
    """The Kubernetes writes the controller makes (canary.kube.deployments.Deployments)."""

    def update_deployment(
        self, namespace: str, name: str, mutate: Mutation, *, expect_template_hash: str | None,
        max_conflicts: int = ...,
    ) -> WriteOutcome: ...

    def scale_replicaset(self, namespace: str, name: str, replicas: int) -> WriteOutcome: ...


class EventSink(Protocol):
    def record(self, obj: JsonObject, type: EventType, reason: str, message: str) -> None: ...


class NotificationSink(Protocol):
    def destinations(self, event: CanaryEvent, slo: ServiceSLO) -> Sequence[object]: ...

    def publish(self, event: CanaryEvent, slo: ServiceSLO) -> None: ...


DecisionHook = Callable[[JsonObject, Decision, CanaryStatus, "Outcome | None"], None]
"""Called after every written decision with the Deployment as seen, the decision, the status as
written and the check's outcome (the demo records them; tests may too). Must return quickly."""


class _Changed(Exception):
    """The Deployment changed since the Snapshot the decision was made on."""


class StatusWriter:
    """The one writer of the `canary.mop.dev/status` annotation."""

    def __init__(self, deployments: DeploymentWrites) -> None:
        self.deployments = deployments

    def write(
        self, ref: tuple[str, str], status: Callable[[CanaryStatus | None], CanaryStatus | None], *,
        edits: Sequence[edit.Edit] = (), guard: tuple[object, ...] | None = None,
        expect_template_hash: str | None = None,
    ) -> WriteOutcome:
        """One merge patch of `edits` and the status `status(current)` returns (None: nothing to write).
        With `guard`, the fresh read must still hold that template, status and requests (else `conflict`)."""
        namespace, name = ref

        def mutate(fresh: JsonObject) -> JsonObject | None:
            if guard is not None and guarded_state_of(fresh) != guard:
                raise _Changed
            new = status(read_status(DeploymentBody(fresh).annotations)[0])
            if new is None:
                return None
            edit.apply(fresh, edits)
            edit.set_status(fresh, new)
            return fresh

        try:
            return self.deployments.update_deployment(
                namespace, name, mutate, expect_template_hash=expect_template_hash, max_conflicts=MAX_CONFLICTS
            )
        except _Changed:
            return WriteOutcome(status="conflict", reason=f"Deployment {namespace}/{name} changed since it was read")


class Executor:
    def __init__(
        self, deployments: DeploymentWrites, events: EventSink, notifications: NotificationSink,
        metrics: ControllerMetrics, clock: Callable[[], datetime], on_decision: DecisionHook | None = None,
    ) -> None:
        self.deployments = deployments
        self.writer = StatusWriter(deployments)
        self.events = events
        self.notifications = notifications
        self.metrics = metrics
        self.clock = clock
        self.on_decision = on_decision
        self._scaled: dict[tuple[str, str], tuple[int, str]] = {}
        """ReplicaSet -> (replicas written, its resourceVersion in the Snapshot that asked): the expectation
        of a scale the informer cache has not shown yet (as client-go controllers keep expectations)."""

    def execute(self, plan: Plan, snap: Snapshot, outcome: Outcome | None, started: float) -> WriteOutcome | None:
        """The promotion into the baseline, the guarded write, the ReplicaSet scales; once written, the
        Event, metrics, log line, notification and hook. None when the promotion failed (nothing written)."""
        if plan.promote_into_baseline and not self._promote(snap):
            return None
        written = self.writer.write(
            snap.deployment.key, lambda _: plan.status, edits=plan.edits, guard=snap.guarded_state,
            expect_template_hash=snap.template_hash,
        )
        if written.status in ("written", "unchanged"):
            for scale in plan.scales:
                self._scale(snap.deployment.namespace, scale)
        if written.status == "written":
            self._tell(plan, snap, outcome, started)
        elif written.status != "unchanged":
            # conflict: changed since the Snapshot; the informer's event brings the new state to decide on
            log.info("no write for %s (%s): %s", snap.deployment.ref, written.status, written.reason)
        return written

    def _scale(self, namespace: str, scale: edit.ScaleReplicaSet) -> None:
        key = (namespace, scale.name)
        if scale.seen_version and self._scaled.get(key) == (scale.replicas, scale.seen_version):
            return  # made already; the cache still shows the ReplicaSet as it was before
        done = self.deployments.scale_replicaset(namespace, scale.name, scale.replicas)
        if done.status != "written":
            log.warning("could not scale ReplicaSet %s to %d: %s", scale.name, scale.replicas, done.reason)
            return
        self._scaled[key] = (scale.replicas, scale.seen_version)
        while len(self._scaled) > MAX_EXPECTATIONS:
            self._scaled.pop(next(iter(self._scaled)))

    def apply(self, change: StatusChange) -> None:
        """A delivery or evidence record from another thread, written here (on the worker)."""
        written = self.writer.write(change.ref, change.apply)
        evidence = change.event.evidence if isinstance(change, StoreEvidence) else None
        if evidence is not None and written.status == "written" and written.deployment is not None:
            self.events.record(written.deployment, "Warning", "RollbackEvidence", evidence.summary())
        if written.status not in ("written", "unchanged", "not-found"):
            log.warning("status of Deployment %s/%s not updated (%s): %s", *change.ref, written.status, written.reason)

    def _promote(self, snap: Snapshot) -> bool:
        """Canary mode: copy the canary's template into the baseline."""
        baseline, canary = snap.baseline, snap.deployment
        assert baseline is not None

        def mutate(fresh: JsonObject) -> JsonObject | None:
            if promoted(DeploymentBody(fresh), canary):
                return None
            edit.copy_template(fresh, canary)
            return fresh

        result = self.deployments.update_deployment(baseline.namespace, baseline.name, mutate,
                                                    expect_template_hash=None)
        if result.status not in ("written", "unchanged"):
            log.warning("promotion of %s into %s failed: %s", canary.name, baseline.name, result.reason)
            return False
        return True

    def _tell(self, plan: Plan, snap: Snapshot, outcome: Outcome | None, started: float) -> None:
        key, status, m = snap.deployment.key, plan.status, plan.metrics
        if m.check is not None:
            self.metrics.observe_check(key, m.check, time.monotonic() - started)
        self.metrics.observe_status(key, status)
        if m.rollback is not None:
            self.metrics.observe_rollback(key, m.rollback)
        if m.promoted:
            self.metrics.observe_promotion(key)
        if m.stuck is not None:
            self.metrics.observe_stuck(key, m.stuck)
        if plan.event is not None:
            self.events.record(snap.deployment.raw, plan.event.type, plan.event.reason, plan.event.message)
        log.info(
            "decision",
            extra={
                "deployment": snap.deployment.ref, "signal": plan.decision.signal.value, "phase": status.phase.value,
                "passed": status.checks_passed, "failed": status.checks_failed, "reason": status.message,
            },
        )
        if snap.config.slo is not None and plan.notification is not None:
            self.notifications.publish(plan.notification, snap.config.slo)
        if self.on_decision is not None:
            try:
                self.on_decision(snap.deployment.raw, plan.decision, status, outcome)
            except Exception:
                log.exception("decision hook failed for %s", snap.deployment.ref)
