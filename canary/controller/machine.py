"""The canary state machine: one classifier and one transition table, pure and I/O-free.

`decide(status, observation, spec, now)` picks the single most important signal (a rollback wins
over everything else in every phase), looks up `(phase, signal)` in TABLE and returns the new status
with the actions the reconciler must carry out. Nothing here talks to Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from canary.config.slo import BackendFailurePolicy, NotifyEvent, ServiceSLOSpec
from canary.controller.status import CHECKED_PHASES, MAX_REJECTED, CanaryPhase, CanaryStatus, FreezeCause
from canary.judge.model import Phase, Verdict
from canary.notify.events import Mode

P = CanaryPhase


class Signal(StrEnum):
    INVALID = "invalid"
    ADOPT = "adopt"
    ABORT = "abort"
    NEW_REVISION = "new-revision"
    REJECTED_REVISION = "rejected-revision"
    SKIP = "skip"
    PASS = "pass"
    PASS_ENOUGH = "pass-enough"
    FAIL = "fail"
    FAIL_LIMIT = "fail-limit"
    INCONCLUSIVE = "inconclusive"
    BACKEND_ERROR = "backend-error"
    BACKEND_LIMIT_HOLD = "backend-limit-hold"
    BACKEND_LIMIT_ROLLBACK = "backend-limit-rollback"
    BACKEND_RECOVERED = "backend-recovered"
    PROMOTE_REQUESTED = "promote-requested"
    SETTLED = "settled"
    READY = "ready"
    NOT_READY = "not-ready"
    NONE = "none"


class Action(StrEnum):
    HOLD = "hold"
    """Guard mode: keep the rollout at its first step (paused once the canary ReplicaSet exists)."""
    PAUSE = "pause"
    ROLLBACK = "rollback"
    """As the effective `rollback.action` says: undo, scale-to-zero, pause or notify-only."""
    PROMOTE = "promote"
    """Guard mode: resume the rollout. Canary mode: copy the template into the baseline (when auto or asked)."""
    RESTORE_REPLICAS = "restore-replicas"
    CLEAR_REQUEST = "clear-request"
    """Remove the abort/skip/promote annotations that were acted on."""


class Count(StrEnum):
    KEEP = "keep"
    PASS = "pass"
    FAIL = "fail"
    LOOK = "look"
    ERROR = "error"


class Effect(StrEnum):
    BEGIN = "begin"
    """A new revision: analyse the current template from scratch."""
    ADOPT = "adopt"
    """The current template is known-good."""
    TRACK = "track"
    """Follow the current template without analysing it (a rejected one applied again)."""
    REJECT = "reject"
    """The template under analysis is rejected; the stable one is restored."""
    PROMOTED = "promoted"
    """The template under analysis became the stable one."""


EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Transition:
    to: CanaryPhase | None = None
    """None: stay in the current phase."""
    actions: tuple[Action, ...] = ()
    count: Count = Count.KEEP
    effect: Effect | None = None
    freeze: FreezeCause | None = None
    notify: NotifyEvent | None = None
    event: tuple[EventType, str] | None = None
    """(type, reason) of the Kubernetes Event, e.g. ("Warning", "RolledBack")."""


ANY = None
ACTIVE = (P.WAITING, P.ANALYSING, P.PROMOTING)
WARN: Literal["Warning"] = "Warning"
NORMAL: Literal["Normal"] = "Normal"

_ROLLBACK = Transition(
    P.ROLLING_BACK, (Action.ROLLBACK,), Count.FAIL, Effect.REJECT,
    notify=NotifyEvent.ROLLED_BACK, event=(WARN, "RolledBack"),
)
_CHECKS: dict[Signal, Transition] = {
    Signal.PASS: Transition(count=Count.PASS),
    Signal.FAIL: Transition(count=Count.FAIL),
    Signal.FAIL_LIMIT: _ROLLBACK,
    Signal.INCONCLUSIVE: Transition(count=Count.LOOK),
    Signal.BACKEND_ERROR: Transition(count=Count.ERROR),
    Signal.BACKEND_LIMIT_HOLD: Transition(
        P.FROZEN, (Action.PAUSE,), Count.ERROR, freeze=FreezeCause.BACKEND,
        notify=NotifyEvent.BACKEND_DOWN, event=(WARN, "BackendDown"),
    ),
    Signal.BACKEND_LIMIT_ROLLBACK: Transition(
        P.ROLLING_BACK, (Action.ROLLBACK,), Count.ERROR, Effect.REJECT,
        notify=NotifyEvent.ROLLED_BACK, event=(WARN, "RolledBack"),
    ),
}

TABLE: dict[tuple[CanaryPhase | None, Signal], Transition] = {
    # Any phase.
    (ANY, Signal.INVALID): Transition(P.INVALID, event=(WARN, "InvalidConfig")),
    (ANY, Signal.ADOPT): Transition(P.SUCCEEDED, effect=Effect.ADOPT),
    (ANY, Signal.NEW_REVISION): Transition(
        P.WAITING, (Action.RESTORE_REPLICAS, Action.HOLD), effect=Effect.BEGIN,
        notify=NotifyEvent.STARTED, event=(NORMAL, "NewRevision"),
    ),
    (ANY, Signal.REJECTED_REVISION): Transition(
        P.FROZEN, (Action.PAUSE,), effect=Effect.TRACK, freeze=FreezeCause.REJECTED,
        notify=NotifyEvent.FROZEN, event=(WARN, "RejectedTemplate"),
    ),
    (ANY, Signal.ABORT): Transition(actions=(Action.CLEAR_REQUEST,), event=(NORMAL, "NothingToAbort")),
    **{
        (phase, Signal.ABORT): Transition(
            P.ROLLING_BACK, (Action.ROLLBACK, Action.CLEAR_REQUEST), effect=Effect.REJECT,
            notify=NotifyEvent.ROLLED_BACK, event=(WARN, "RolledBack"),
        )
        for phase in ACTIVE
    },
    **{
        (phase, Signal.SKIP): Transition(
            P.PROMOTING, (Action.PROMOTE, Action.CLEAR_REQUEST), event=(NORMAL, "AnalysisSkipped")
        )
        for phase in ACTIVE
    },
    # Waiting for the canary to be ready.
    (P.WAITING, Signal.NOT_READY): Transition(actions=(Action.HOLD,)),
    (P.WAITING, Signal.READY): Transition(P.ANALYSING, (Action.HOLD,), event=(NORMAL, "Analysing")),
    # Analysing: every check counts; enough passes promote.
    **{(P.ANALYSING, s): t for s, t in _CHECKS.items()},
    (P.ANALYSING, Signal.PASS_ENOUGH): Transition(
        P.PROMOTING, (Action.PROMOTE,), Count.PASS, event=(NORMAL, "Promoting")
    ),
    (P.ANALYSING, Signal.NOT_READY): Transition(P.WAITING, (Action.HOLD,)),
    # Promoting: checks go on until the rollout completes; a failing canary is still rolled back.
    **{(P.PROMOTING, s): t for s, t in _CHECKS.items()},
    (P.PROMOTING, Signal.PROMOTE_REQUESTED): Transition(actions=(Action.PROMOTE, Action.CLEAR_REQUEST)),
    (P.PROMOTING, Signal.SETTLED): Transition(
        P.SUCCEEDED, effect=Effect.PROMOTED, notify=NotifyEvent.PROMOTED, event=(NORMAL, "Promoted")
    ),
    # Frozen by a backend outage: checks go on and tell when it is over.
    (P.FROZEN, Signal.BACKEND_ERROR): Transition(count=Count.ERROR),
    (P.FROZEN, Signal.BACKEND_RECOVERED): Transition(
        P.ANALYSING, (Action.HOLD,), Count.LOOK, notify=NotifyEvent.BACKEND_RECOVERED,
        event=(NORMAL, "BackendRecovered"),
    ),
    # Rolling back until the restored state is in place.
    (P.ROLLING_BACK, Signal.SETTLED): Transition(P.ROLLED_BACK, event=(NORMAL, "RollbackComplete")),
}


@dataclass(frozen=True)
class Observation:
    """What the reconciler saw of one Deployment, reduced to what the decision needs."""

    mode: Mode
    template_hash: str
    revision: str
    config_error: str | None = None
    abort: bool = False
    skip: bool = False
    promote_requested: bool = False
    canary_ready: bool = False
    settled: bool = False
    """Promoting: the rollout/promotion is complete. RollingBack: the rollback is in place."""
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Decision:
    signal: Signal
    status: CanaryStatus
    transition: Transition
    actions: tuple[Action, ...] = field(default=())

    @property
    def changed_phase(self) -> bool:
        return self.transition.to is not None


def classify(status: CanaryStatus | None, obs: Observation, spec: ServiceSLOSpec | None) -> Signal:
    """The one signal that matters most now, in priority order."""
    if obs.config_error is not None or spec is None:
        return Signal.INVALID
    if status is None:
        return Signal.ADOPT
    if status.phase is P.INVALID:
        known_good = not status.stable_hash or obs.template_hash == status.stable_hash
        return Signal.ADOPT if known_good else Signal.NEW_REVISION
    if obs.abort:
        return Signal.ABORT
    if obs.template_hash != status.template_hash:
        if obs.template_hash in status.rejected:
            return Signal.REJECTED_REVISION
        return Signal.ADOPT if obs.template_hash == status.stable_hash else Signal.NEW_REVISION
    if obs.skip and status.phase in ACTIVE:
        return Signal.SKIP
    if obs.verdict is not None and status.phase in CHECKED_PHASES:
        return _check_signal(status, obs.verdict, spec)
    if status.phase is P.PROMOTING and obs.promote_requested:
        return Signal.PROMOTE_REQUESTED
    if obs.settled and status.phase in (P.PROMOTING, P.ROLLING_BACK):
        return Signal.SETTLED
    if status.phase is P.WAITING:
        return Signal.READY if obs.canary_ready else Signal.NOT_READY
    if status.phase is P.ANALYSING and not obs.canary_ready:
        return Signal.NOT_READY
    return Signal.NONE


def _check_signal(status: CanaryStatus, verdict: Verdict, spec: ServiceSLOSpec) -> Signal:
    analysis = spec.analysis
    if status.phase is P.FROZEN:
        if status.freeze_cause is not FreezeCause.BACKEND:
            return Signal.NONE
        return Signal.BACKEND_ERROR if verdict.phase is Phase.ERROR else Signal.BACKEND_RECOVERED
    if verdict.phase is Phase.ERROR:
        if status.backend_errors + 1 < analysis.backend_error_limit:
            return Signal.BACKEND_ERROR
        if analysis.on_backend_failure is BackendFailurePolicy.ROLLBACK:
            return Signal.BACKEND_LIMIT_ROLLBACK
        return Signal.BACKEND_LIMIT_HOLD
    if verdict.phase is Phase.FAIL:
        return Signal.FAIL_LIMIT if status.checks_failed + 1 >= analysis.failed_checks else Signal.FAIL
    if verdict.phase is Phase.PASS:
        enough = status.checks_passed + 1 >= analysis.successful_checks
        return Signal.PASS_ENOUGH if enough and status.phase is P.ANALYSING else Signal.PASS
    return Signal.INCONCLUSIVE


def lookup(phase: CanaryPhase, signal: Signal) -> Transition:
    return TABLE.get((phase, signal)) or TABLE.get((ANY, signal)) or Transition()


def decide(
    status: CanaryStatus | None, obs: Observation, spec: ServiceSLOSpec | None, now: datetime
) -> Decision:
    """The next status and the actions that get there."""
    signal = classify(status, obs, spec)
    current = status or CanaryStatus(phase=P.SUCCEEDED, mode=obs.mode)
    transition = lookup(current.phase, signal)
    new = _apply(current, transition, obs, now)
    if signal is Signal.INVALID:
        new = new.model_copy(update={"message": obs.config_error or "no ServiceSLO"})
    elif obs.verdict is not None and transition.count is not Count.KEEP:
        new = new.model_copy(update={"last_verdict": obs.verdict, "message": obs.verdict.message})
    elif transition.event is not None:
        new = new.model_copy(update={"message": _describe(signal, obs, transition)})
    return Decision(signal=signal, status=new, transition=transition, actions=transition.actions)


def _apply(status: CanaryStatus, t: Transition, obs: Observation, now: datetime) -> CanaryStatus:
    update: dict[str, object] = {"mode": obs.mode}
    if t.to is not None:
        update["phase"] = t.to
        update["freeze_cause"] = t.freeze
    if t.effect is Effect.BEGIN:
        update.update(
            template_hash=obs.template_hash, revision=obs.revision, started_at=now, checks_passed=0,
            checks_failed=0, backend_errors=0, looks=0, last_verdict=None, last_check_at=None,
        )
    elif t.effect is Effect.ADOPT:
        update.update(template_hash=obs.template_hash, stable_hash=obs.template_hash, revision=obs.revision)
    elif t.effect is Effect.TRACK:
        update.update(template_hash=obs.template_hash, revision=obs.revision)
    elif t.effect is Effect.REJECT:
        rejected = [h for h in status.rejected if h != status.template_hash] + [status.template_hash]
        update["rejected"] = rejected[-MAX_REJECTED:]
    elif t.effect is Effect.PROMOTED:
        update["stable_hash"] = status.template_hash
    if t.count is not Count.KEEP:
        update["last_check_at"] = now
    if t.count is Count.PASS:
        update.update(checks_passed=status.checks_passed + 1, checks_failed=0, backend_errors=0, looks=status.looks + 1)
    elif t.count is Count.FAIL:
        update.update(checks_failed=status.checks_failed + 1, backend_errors=0, looks=status.looks + 1)
    elif t.count is Count.LOOK:
        update.update(backend_errors=0, looks=status.looks + 1)
    elif t.count is Count.ERROR:
        update["backend_errors"] = status.backend_errors + 1
    return status.model_copy(update=update)


def _describe(signal: Signal, obs: Observation, t: Transition) -> str:
    if signal is Signal.SETTLED:
        if t.to is P.SUCCEEDED:
            return f"promoted: revision {obs.revision} ({obs.template_hash}) is the stable version"
        return "rollback complete: the stable version runs again"
    return {
        Signal.NEW_REVISION: f"new revision {obs.revision} ({obs.template_hash}): analysis starts",
        Signal.REJECTED_REVISION: f"template {obs.template_hash} was rolled back before: frozen, not rolled out",
        Signal.ABORT: "rollback requested by the canary.mop.dev/abort annotation",
        Signal.SKIP: "analysis skipped by the canary.mop.dev/skip annotation: promoting",
        Signal.READY: "canary is ready: analysing",
    }.get(signal, signal.value)
