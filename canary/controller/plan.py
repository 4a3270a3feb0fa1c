"""From a decision to everything it causes, as data: `plan(decision, snapshot, strategy)` lists the
Deployment edits and the status written with them in one guarded write, the writes around it, the
Kubernetes Event, the metric updates and the notification. Pure: the executor carries a Plan out.

What each Action writes is the strategy's `writes` (canary.controller.strategies.guard and .canary);
this module adds what every decision writes: the status, and the notification it puts in the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from canary.analysis import Outcome
from canary.config.slo import NotifyEvent
from canary.controller.edits import Edit, ScaleReplicaSet
from canary.controller.machine import Count, Decision, Effect, Signal
from canary.controller.snapshot import Snapshot
from canary.controller.status import CanaryStatus
from canary.controller.strategies import Strategy
from canary.judge.model import Verdict
from canary.notify.events import CanaryEvent
from canary.sources.traceql import failing_spans_query
from canary.vocabulary import EventType


@dataclass(frozen=True)
class KubeEvent:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class MetricChanges:
    check: Verdict | None = None
    """A check that counted (its duration is measured by the executor)."""
    rollback: str | None = None
    """The rollback action taken."""
    promoted: bool = False
    stuck: str | None = None
    """The `analysis.onStuck` policy applied."""


@dataclass(frozen=True)
class Plan:
    decision: Decision
    status: CanaryStatus
    """The status annotation written with `edits`."""
    edits: tuple[Edit, ...] = ()
    promote_into_baseline: bool = False
    """Canary mode: copy the canary's pod template into the baseline before the guarded write."""
    scales: tuple[ScaleReplicaSet, ...] = ()
    """After the guarded write."""
    event: KubeEvent | None = None
    notification: CanaryEvent | None = None
    """Added to the status outbox by this write; published once it is written."""
    metrics: MetricChanges = MetricChanges()


def worth_writing(decision: Decision, before: CanaryStatus | None) -> bool:
    """Nothing happened, or the same configuration problem is already recorded: no write."""
    if decision.signal is Signal.NONE:
        return False
    return not (
        decision.signal is Signal.INVALID and before is not None and before.phase == decision.status.phase
        and before.message == decision.status.message
    )


def plan(
    decision: Decision, snap: Snapshot, strategy: Strategy, *, outcome: Outcome | None, now: datetime,
    has_destination: Callable[[CanaryEvent], bool],
) -> Plan:
    """Everything `decision` writes and tells. `outcome` is the check the decision counted (or None) and
    `has_destination` says whether a notification would reach anyone (none is queued otherwise)."""
    before = snap.status
    status = decision.status
    if status != before:
        status = status.model_copy(update={"updated_at": now})
    edits: list[Edit] = []
    scales: list[ScaleReplicaSet] = []
    promote_into_baseline = False
    update: dict[str, object] = {}
    promote_asked = snap.requests.promote or decision.signal is Signal.STUCK_PROMOTE
    for action in decision.actions:
        writes = strategy.writes(action, snap, status, promote_asked)
        edits.extend(writes.edits)
        scales.extend(s for s in writes.scales if s not in scales)
        update.update(writes.status)
        promote_into_baseline = promote_into_baseline or writes.promote_into_baseline
    t = decision.transition
    notification = None
    if t.notify is not None and snap.config.slo is not None:
        event = _notification(t.notify, decision, snap, status, outcome, now)
        seen = {key.event for key in status.delivered} | {e.key for e in status.outbox}
        if event.key not in seen and has_destination(event):
            update["outbox"] = [*status.outbox, event]
            notification = event
    if update:
        status = status.model_copy(update=update)
    spec = snap.spec
    return Plan(
        decision=decision,
        status=status,
        edits=tuple(edits),
        promote_into_baseline=promote_into_baseline,
        scales=tuple(scales),
        event=KubeEvent(t.event[0], t.event[1], status.message) if t.event is not None else None,
        notification=notification,
        metrics=MetricChanges(
            check=outcome.verdict if outcome is not None and decision.status.last_verdict is not None
            and t.count is not Count.KEEP else None,
            rollback=snap.action.value if t.effect is Effect.REJECT else None,
            promoted=t.effect is Effect.PROMOTED,
            stuck=spec.analysis.on_stuck.value if t.stuck and spec is not None else None,
        ),
    )


def _notification(
    kind: NotifyEvent, decision: Decision, snap: Snapshot, status: CanaryStatus, outcome: Outcome | None,
    now: datetime,
) -> CanaryEvent:
    before = snap.status or status
    spec, slo, ann, d = snap.spec, snap.config.slo, snap.annotations, snap.deployment
    measured = outcome.measurement if outcome is not None else None
    return CanaryEvent(
        type=kind,
        namespace=d.namespace,
        deployment=d.name,
        revision=decision.status.template_hash or status.template_hash,
        baseline_revision=before.stable_hash or None,
        mode=snap.strategy.mode,
        service=spec.service if spec else d.name,
        slo=slo.ref if slo else "default",
        reason=status.message,
        verdict=status.last_verdict,
        images_from=snap.strategy.compared_images(snap),
        images_to=d.images,
        checks_passed=status.checks_passed,
        checks_failed=status.checks_failed,
        window=spec.analysis.window if spec else None,
        started_at=status.started_at,
        at=now,
        slack_channel=ann.slack_channel if ann else None,
        example_traces=measured.example_traces if measured else (),
        traceql=failing_spans_query(measured.target) if measured else None,
        target=measured.target if measured else None,
    )
