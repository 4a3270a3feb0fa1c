"""One reconcile of one guarded Deployment: observe, decide, write once, then tell.

Every write is one resourceVersion-guarded update of the Deployment that carries the spec change and
the new status annotation together, made only if the pod template is still the one the decision was
about. Events and notifications follow the write, never precede it, and never block it.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from canary.analysis import Outcome
from canary.config.slo import NotifyEvent, RollbackAction, ServiceSLO, ServiceSLOSpec, default_slo
from canary.controller import mutations
from canary.controller.annotations import AnnotationError, Annotations, is_enabled, parse_annotations
from canary.controller.machine import Action, Count, Decision, Effect, Observation, Signal, decide
from canary.controller.metrics import ControllerMetrics
from canary.controller.observe import (
    Obj,
    canary_ready,
    gitops_agent,
    guard_unsupported,
    images,
    meta,
    mid_rollout,
    promoted,
    ready_replicas,
    rollback_action,
    rs_replicas,
    serving_rejected,
    settled,
    spec_replicas,
    split_replicasets,
    undo_source,
)
from canary.controller.status import MAX_DELIVERED, CanaryStatus, read_status
from canary.kube.deployments import WriteOutcome, revision, template_hash
from canary.notify.events import CanaryEvent
from canary.notify.ledger import event_key
from canary.sources.traceql import failing_spans_query
from canary.vocabulary import CanaryPhase, EventType, Mode

log = logging.getLogger(__name__)

STOPS_SERVING = (RollbackAction.UNDO, RollbackAction.SCALE_TO_ZERO)
"""Rollback actions after which the rejected template must run no pod (pause and notify-only keep them)."""

MAX_CONFLICTS = 5
"""409 Conflicts on one reconcile before giving up (each one re-reads and decides again)."""


class Deployments(Protocol):
    """The Kubernetes operations the reconciler needs (canary.kube.deployments.Deployments)."""

    def read_deployment(self, namespace: str, name: str) -> Obj | None: ...

    def list_replicasets(self, namespace: str, deployment: Obj) -> list[Obj]: ...

    def update_deployment(
        self, namespace: str, name: str, mutate: Callable[[Obj], Obj | None], *, expect_template_hash: str | None,
        max_conflicts: int = ...,
    ) -> WriteOutcome: ...

    def scale_replicaset(self, namespace: str, name: str, replicas: int) -> WriteOutcome: ...


class EventSink(Protocol):
    def record(self, obj: Obj, type: EventType, reason: str, message: str) -> None: ...


class NotificationSink(Protocol):
    def destinations(self, event: CanaryEvent, slo: ServiceSLO) -> Sequence[object]: ...

    def publish(self, event: CanaryEvent, slo: ServiceSLO) -> None: ...


DecisionHook = Callable[[Obj, Decision, CanaryStatus, "Outcome | None"], None]
"""Called after every written decision with the Deployment as read, the decision, the status as
written and the check's outcome (the demo records them; tests may too). Must return quickly."""


class SLOIndex(Protocol):
    def get(self, namespace: str, name: str) -> ServiceSLO | None: ...


@dataclass(frozen=True)
class Resolved:
    """A Deployment's configuration after annotations and SLO lookup."""

    annotations: Annotations | None
    slo: ServiceSLO | None
    spec: ServiceSLOSpec | None
    error: str | None


class Reconciler:
    def __init__(
        self,
        deployments: Deployments,
        slos: SLOIndex,
        events: EventSink,
        notifications: NotificationSink,
        metrics: ControllerMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_decision: DecisionHook | None = None,
        min_interval: float = 0.0,
    ) -> None:
        self.deployments = deployments
        self.min_interval = min_interval
        """Floor of every analysis interval (a shorter one runs at this interval, its window at least as long)."""
        self.on_decision = on_decision
        self.slos = slos
        self.events = events
        self.notifications = notifications
        self.metrics = metrics
        self.clock = clock

    def resolve(self, deployment: Obj) -> Resolved:
        """Annotations and the ServiceSLO; an error names the annotation or object at fault."""
        ns, name = meta(deployment).get("namespace", ""), meta(deployment)["name"]
        try:
            ann = parse_annotations(meta(deployment).get("annotations"))
        except AnnotationError as exc:
            return Resolved(None, None, None, str(exc))
        if ann.slo:
            slo = self.slos.get(ns, ann.slo)
            if slo is None:
                return Resolved(
                    ann, None, None,
                    f"annotation canary.mop.dev/slo: ServiceSLO {ns}/{ann.slo} not found in any ConfigMap "
                    "labelled canary.mop.dev/slo-config",
                )
        else:
            slo = default_slo(service=name, namespace=ns)
        try:
            spec = _floored(ann.apply(slo.spec), self.min_interval)
        except AnnotationError as exc:
            return Resolved(ann, slo, None, str(exc))
        if not ann.baseline and spec.rollback.action is RollbackAction.SCALE_TO_ZERO:
            return Resolved(
                ann, slo, None,
                "rollback action scale-to-zero needs canary mode (canary.mop.dev/baseline): in guard mode it would "
                "scale the only Deployment of the service to 0; use undo or pause",
            )
        if ann.baseline == name:
            return Resolved(
                ann, slo, None, "annotation canary.mop.dev/baseline: a Deployment cannot be its own baseline"
            )
        unsupported = None if ann.baseline else guard_unsupported(deployment)
        if unsupported:
            return Resolved(ann, slo, None, unsupported)
        return Resolved(ann, slo, spec, None)

    def reconcile(
        self, namespace: str, name: str, outcome: Outcome | None = None, checked_hash: str | None = None
    ) -> Decision | None:
        """Bring one Deployment one step forward. `outcome` is a scheduled check's result, valid only for
        the template `checked_hash` it measured; a template that changed since drops it."""
        changes = conflicts = 0
        while changes < 3 and conflicts <= MAX_CONFLICTS:
            result = self._reconcile_once(namespace, name, outcome, checked_hash)
            if result == "conflict":
                conflicts += 1  # decide again on the fresh object, never re-apply a stale decision
                continue
            if result != "retry":
                return result
            changes += 1
            outcome = None
        log.warning("gave up reconciling %s/%s: the object kept changing", namespace, name)
        return None

    def _reconcile_once(
        self, namespace: str, name: str, outcome: Outcome | None, checked_hash: str | None
    ) -> Decision | Literal["retry", "conflict"] | None:
        started = time.monotonic()
        deployment = self.deployments.read_deployment(namespace, name)
        if deployment is None or not is_enabled(meta(deployment).get("annotations")):
            return None
        resolved = self.resolve(deployment)
        mode = Mode.CANARY if resolved.annotations and resolved.annotations.baseline else Mode.GUARD
        baseline = None
        error = resolved.error
        if error is None and resolved.annotations and resolved.annotations.baseline:
            baseline = self.deployments.read_deployment(namespace, resolved.annotations.baseline)
            if baseline is None:
                error = (
                    f"annotation canary.mop.dev/baseline: Deployment {namespace}/{resolved.annotations.baseline} "
                    "not found"
                )
        status, status_error = read_status(meta(deployment).get("annotations"))
        error = error or status_error
        spec = resolved.spec if error is None else None
        current_hash = template_hash(deployment)
        replicasets = self.deployments.list_replicasets(namespace, deployment)
        canary_rs, _ = split_replicasets(replicasets, current_hash)
        verdict = None
        if outcome is not None and status is not None and checked_hash == current_hash == status.template_hash:
            verdict = outcome.verdict
        elif outcome is not None:
            log.info("dropped a verdict for %s/%s: the template changed since it was measured", namespace, name)
        if verdict is not None and spec is not None and _looked_recently(status, spec, self.clock()):
            log.info("dropped a verdict for %s/%s: a look was already counted in this interval", namespace, name)
            verdict = None
        ann = resolved.annotations
        action = rollback_action(spec, mode) if spec else RollbackAction.NOTIFY_ONLY
        gitops = gitops_agent(deployment)
        # Under a GitOps agent a guard-mode rollback does not write the template back (Git would re-apply
        # it): it pauses the rollout and scales the rejected ReplicaSet to 0.
        contain = bool(gitops) and mode is Mode.GUARD and action is RollbackAction.UNDO
        requests = _requests(ann, current_hash, status)
        first_sight_stable = mid_rollout(current_hash, replicasets) if status is None else ""
        obs = Observation(
            mode=mode,
            template_hash=current_hash,
            revision=str(revision(deployment) or 0),
            config_error=error,
            abort=requests.abort,
            skip=requests.skip or requests.promote,
            promote_requested=requests.promote,
            retry=requests.retry,
            ignored_request=requests.ignored,
            rolling_out=bool(first_sight_stable),
            previous_hash=first_sight_stable,
            rejected_serving=status is not None and current_hash in status.rejected and action in STOPS_SERVING
            and serving_rejected(mode, deployment, canary_rs),
            gitops=gitops,
            canary_ready=canary_ready(mode, deployment, canary_rs),
            settled=status is not None
            and (
                _contained(replicasets, status.rejected) if contain and status.phase is CanaryPhase.ROLLING_BACK
                else settled(status.phase, mode, action, deployment, baseline)
            ),
            verdict=verdict,
            cumulative=outcome.cumulative if outcome is not None and verdict is not None else None,
        )
        decision = decide(status, obs, spec, self.clock())
        if decision.signal is Signal.NONE or (
            decision.signal is Signal.INVALID and status is not None and status.phase is CanaryPhase.INVALID
            and status.message == decision.status.message
        ):
            return decision
        new_status = decision.status
        if new_status != status:
            new_status = new_status.model_copy(update={"updated_at": self.clock()})
        plan = _Plan(self, deployment, baseline, replicasets, canary_rs, status, new_status, decision, action,
                     resolved, outcome if verdict is not None else None, contain, obs.promote_requested)
        promotes = Action.PROMOTE in decision.actions and mode is Mode.CANARY and baseline is not None
        if promotes and not plan.promote_baseline():
            return decision
        try:
            written = self.deployments.update_deployment(
                namespace, name, plan.mutate, expect_template_hash=current_hash, max_conflicts=0
            )
        except _Stale:
            return "conflict"
        if written.status == "template-changed":
            return "retry"
        if written.status == "conflict":
            return "conflict"
        if written.status in ("written", "unchanged"):
            plan.scale_down_rejected()
        if written.status == "unchanged":
            return decision
        if written.status != "written":
            log.warning("no write for %s/%s (%s): %s", namespace, name, written.status, written.reason)
            return decision
        self._after_write(deployment, plan, decision, action, resolved, started, outcome)
        return decision

    def _after_write(
        self, deployment: Obj, plan: _Plan, decision: Decision, action: RollbackAction,
        resolved: Resolved, started: float, outcome: Outcome | None,
    ) -> None:
        ns, name = meta(deployment).get("namespace", ""), meta(deployment)["name"]
        status = plan.status
        t = decision.transition
        if outcome is not None and decision.status.last_verdict is not None and t.count is not Count.KEEP:
            self.metrics.observe_check((ns, name), outcome.verdict, time.monotonic() - started)
        self.metrics.observe_status((ns, name), status)
        if t.effect is Effect.REJECT:
            self.metrics.observe_rollback((ns, name), action.value)
        if t.effect is Effect.PROMOTED:
            self.metrics.observe_promotion((ns, name))
        if t.stuck and resolved.spec is not None:
            self.metrics.observe_stuck((ns, name), resolved.spec.analysis.on_stuck.value)
        if t.event is not None:
            self.events.record(deployment, t.event[0], t.event[1], status.message)
        log.info(
            "decision",
            extra={
                "deployment": f"{ns}/{name}", "signal": decision.signal.value, "phase": status.phase.value,
                "passed": status.checks_passed, "failed": status.checks_failed, "reason": status.message,
            },
        )
        if resolved.slo is not None and plan.new_event is not None:
            self.notifications.publish(plan.new_event, resolved.slo)
        if self.on_decision is not None:
            try:
                self.on_decision(deployment, decision, status, outcome)
            except Exception:
                log.exception("decision hook failed for %s/%s", ns, name)


class _Stale(Exception):
    """The Deployment changed between the read a decision was made on and the write."""


def _floored(spec: ServiceSLOSpec, min_interval: float) -> ServiceSLOSpec:
    analysis = spec.analysis
    if analysis.interval >= min_interval:
        return spec
    floored = analysis.model_copy(update={"interval": min_interval, "window": max(analysis.window, min_interval)})
    return spec.model_copy(update={"analysis": floored})


def _looked_recently(status: CanaryStatus | None, spec: ServiceSLOSpec, now: datetime) -> bool:
    """A look was counted less than half an interval ago (by this or another replica): one per interval."""
    if status is None or status.last_check_at is None:
        return False
    return (now - status.last_check_at).total_seconds() < spec.analysis.interval / 2


class _Plan:
    """The writes one decision needs: the Deployment's new state (and, when promoting in canary mode,
    the baseline's), built from fresh reads inside the guarded update."""

    def __init__(
        self, reconciler: Reconciler, deployment: Obj, baseline: Obj | None, replicasets: list[Obj],
        canary_rs: Obj | None, before: CanaryStatus | None, status: CanaryStatus, decision: Decision,
        action: RollbackAction, resolved: Resolved, outcome: Outcome | None, contain: bool = False,
        promote_asked: bool = False,
    ) -> None:
        self.r = reconciler
        self.contain = contain
        """Guard mode under a GitOps agent: a rollback pauses and scales the rejected ReplicaSet to 0
        instead of writing the stable template back."""
        self.promote_asked = promote_asked
        self.stops_serving = action in STOPS_SERVING
        """CONTAIN scales the rejected template to 0 only when the rollback action stops it serving at all
        (`pause` and `notify-only` keep its pods, as chosen: the Deployment is only paused)."""
        self.deployment = deployment
        self.baseline = baseline
        self.replicasets = replicasets
        self.canary_rs = canary_rs
        self.status = status
        self.decision = decision
        self.action = action
        self.resolved = resolved
        self.outcome = outcome
        self.mode = status.mode
        self.new_event: CanaryEvent | None = None
        """The notification this decision adds to the outbox (published after the write)."""
        self.before = before or status
        self.previous = undo_source(replicasets, self.before, template_hash(deployment))
        """The ReplicaSet of the stable template: what undo restores and what the canary is compared with."""
        self._prepare()

    def _prepare(self) -> None:
        """Status changes that depend on the Deployment: the restored template and the notification."""
        update: dict[str, object] = {}
        undo = Action.ROLLBACK in self.decision.actions and self.action is RollbackAction.UNDO and not self.contain
        if undo and self.previous is not None:
            restored = template_hash(self.previous)
            update.update(template_hash=restored, stable_hash=restored)
        if Action.ROLLBACK in self.decision.actions and self.action is RollbackAction.SCALE_TO_ZERO:
            update["replicas_before"] = spec_replicas(self.deployment)
        canary_contain = Action.CONTAIN in self.decision.actions and self.mode is Mode.CANARY and self.stops_serving
        if canary_contain and spec_replicas(self.deployment) > 0:
            update["replicas_before"] = spec_replicas(self.deployment)
        notify = self.decision.transition.notify
        slo = self.resolved.slo
        if notify is not None and slo is not None:
            event = self._event(notify)
            seen = {event_key(k) for k in self.status.delivered} | {e.key for e in self.status.outbox}
            if event.key not in seen and self.r.notifications.destinations(event, slo):
                update["outbox"] = [*self.status.outbox, event]
                self.new_event = event
        if update:
            self.status = self.status.model_copy(update=update)

    def _event(self, notify: NotifyEvent) -> CanaryEvent:
        d, s = self.deployment, self.status
        verdict = s.last_verdict
        return CanaryEvent(
            type=notify,
            namespace=meta(d).get("namespace", ""),
            deployment=meta(d)["name"],
            revision=self.decision.status.template_hash or s.template_hash,
            baseline_revision=self.before.stable_hash or None,
            mode=self.mode,
            service=self.resolved.spec.service if self.resolved.spec else meta(d)["name"],
            slo=self.resolved.slo.ref if self.resolved.slo else "default",
            reason=s.message,
            verdict=verdict,
            images_from=images(self.baseline or self.previous or {}),
            images_to=images(d),
            checks_passed=s.checks_passed,
            checks_failed=s.checks_failed,
            window=self.resolved.spec.analysis.window if self.resolved.spec else None,
            started_at=s.started_at,
            at=self.r.clock(),
            slack_channel=self.resolved.annotations.slack_channel if self.resolved.annotations else None,
            example_traces=self.outcome.measurement.example_traces if self.outcome else (),
            traceql=failing_spans_query(self.outcome.measurement.target) if self.outcome else None,
            target=self.outcome.measurement.target if self.outcome else None,
        )

    def promote_baseline(self) -> bool:
        """Canary mode: copy the canary's template into the baseline (auto, or when asked)."""
        spec = self.resolved.spec
        assert self.baseline is not None and spec is not None
        asked = self.promote_asked or self.decision.signal is Signal.STUCK_PROMOTE
        if spec.promote.value == "manual" and not asked:
            return True
        canary = self.deployment

        def mutate(baseline: Obj) -> Obj | None:
            if promoted(baseline, canary):
                return None
            mutations.copy_template(baseline, canary)
            return baseline

        b = meta(self.baseline)
        result = self.r.deployments.update_deployment(
            b.get("namespace", ""), b["name"], mutate, expect_template_hash=None
        )
        if result.status not in ("written", "unchanged"):
            log.warning("promotion of %s into %s failed: %s", meta(canary)["name"], b["name"], result.reason)
            return False
        return True

    def mutate(self, fresh: Obj) -> Obj | None:
        """Applied to a fresh read of the Deployment inside the guarded update; a Deployment changed since
        the read the decision was made on is never written with that decision (_Stale: decide again)."""
        if meta(fresh).get("resourceVersion") != meta(self.deployment).get("resourceVersion"):
            raise _Stale
        d = copy.deepcopy(fresh)
        for action in self.decision.actions:
            self._apply(action, d)
        mutations.write_status(d, self._merged_with(read_status(meta(fresh).get("annotations"))[0]))
        return d

    def _merged_with(self, fresh: CanaryStatus | None) -> CanaryStatus:
        """Our status, keeping deliveries the notifier recorded since we read the Deployment, and the
        rollback evidence stored since (never written by the reconciler itself)."""
        if fresh is None:
            return self.status
        delivered = [*fresh.delivered, *(k for k in self.status.delivered if k not in fresh.delivered)]
        done = {event_key(k) for k in delivered}
        enriched = {e.key: e for e in fresh.outbox if e.evidence is not None}
        outbox = [enriched.get(e.key, e) for e in self.status.outbox if e.key not in done]
        return self.status.model_copy(
            update={"delivered": delivered[-MAX_DELIVERED:], "outbox": outbox, "evidence": fresh.evidence}
        )

    def scale_down_rejected(self) -> None:
        """Guard mode, after the Deployment write (a pause, or an undo): rejected templates' ReplicaSets to
        0 pods at once, so none serves while the deployment controller catches up.

        Paused (contain): a paused Deployment only scales its one active ReplicaSet to full size, so the
        stable ReplicaSet is given pods first when it has none (else the newest, rejected, one would be
        scaled back up). Undo: the rejected ReplicaSet is now an old one, only ever scaled down; it is
        taken to 0 at once only while it is the minority (the canary step), else the rolling undo
        replaces its pods without a capacity drop."""
        rollback = Action.ROLLBACK in self.decision.actions and self.action is RollbackAction.UNDO
        contain = Action.CONTAIN in self.decision.actions and self.stops_serving
        stable = self.previous
        if self.mode is not Mode.GUARD or stable is None or not (rollback or contain):
            return
        rejected = [rs for rs in self.replicasets if template_hash(rs) in self.status.rejected
                    and template_hash(rs) != template_hash(stable) and rs_replicas(rs) > 0]
        paused = contain or self.contain
        if not paused and ready_replicas(stable) < sum(rs_replicas(rs) for rs in rejected):
            return
        if paused and rejected and rs_replicas(stable) == 0:
            self._scale(stable, spec_replicas(self.deployment))
        for rs in rejected:
            self._scale(rs, 0)

    def _scale(self, rs: Obj, replicas: int) -> None:
        m = meta(rs)
        done = self.r.deployments.scale_replicaset(m.get("namespace", ""), m["name"], replicas)
        if done.status != "written":
            log.warning("could not scale ReplicaSet %s to %d: %s", m["name"], replicas, done.reason)

    def _apply(self, action: Action, d: Obj) -> None:
        guard = self.mode is Mode.GUARD
        if action is Action.HOLD and guard:
            # Held once the canary ReplicaSet has pods; until then the rollout must run to create them.
            mutations.set_paused(d, self.canary_rs is not None and rs_replicas(self.canary_rs) > 0)
        elif action is Action.PAUSE:
            mutations.set_paused(d, True)
        elif action is Action.CONTAIN and guard:
            mutations.set_paused(d, True)  # its ReplicaSet goes to 0 after this write (stops_serving)
        elif action is Action.CONTAIN and self.stops_serving:
            mutations.set_replicas(d, 0)
        elif action is Action.RESUME and guard:
            mutations.set_paused(d, False)
        elif action is Action.RESTORE_REPLICAS and self.status.replicas_before and spec_replicas(d) == 0:
            mutations.set_replicas(d, self.status.replicas_before)
        elif action is Action.PROMOTE and guard:
            mutations.set_paused(d, False)
        elif action is Action.CLEAR_REQUEST:
            mutations.clear_requests(d)
        elif action is Action.ROLLBACK:
            self._rollback(d)

    def _rollback(self, d: Obj) -> None:
        if self.action is RollbackAction.UNDO:
            if self.contain:
                mutations.set_paused(d, True)  # its ReplicaSet goes to 0 after this write
            elif self.previous is not None:
                mutations.restore_template(d, self.previous)
            else:
                mutations.set_paused(d, True)
        elif self.action is RollbackAction.SCALE_TO_ZERO:
            mutations.set_replicas(d, 0)
        elif self.action is RollbackAction.PAUSE:
            mutations.set_paused(d, True)


@dataclass(frozen=True)
class _Requests:
    abort: bool = False
    promote: bool = False
    skip: bool = False
    retry: bool = False
    ignored: str = ""


def _requests(ann: Annotations | None, current_hash: str, status: CanaryStatus | None) -> _Requests:
    """The request annotations that apply to the current template: "true", or the hash they were issued
    for when it is both the current template and the one the status is about. Others are dropped."""
    if ann is None:
        return _Requests()
    about = status.template_hash if status is not None else ""

    def applies(value: str | None) -> bool:
        return value == "true" or (value is not None and value == current_hash == about)

    stale = [
        f"{key} was requested for template {value}, but the Deployment now runs {current_hash}: dropped"
        for key, value in (("abort", ann.abort), ("promote", ann.promote), ("skip", ann.skip), ("retry", ann.retry))
        if value is not None and not applies(value)
    ]
    return _Requests(
        abort=applies(ann.abort), promote=applies(ann.promote), skip=applies(ann.skip), retry=applies(ann.retry),
        ignored="; ".join(stale),
    )


def _contained(replicasets: list[Obj], rejected: Sequence[str]) -> bool:
    """No ReplicaSet of a rejected template has pods."""
    return not any(template_hash(rs) in rejected and rs_replicas(rs) > 0 for rs in replicasets)
