"""The canary state machine: one classifier and one transition table, pure and I/O-free.

`decide(status, observation, spec, now)` picks the single most important signal (a rollback wins
over everything else in every phase), looks up `(phase, signal)` in TABLE and returns the new status
with the actions the reconciler must carry out. Nothing here talks to Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from canary.config.slo import BackendFailurePolicy, InconclusivePolicy, NotifyEvent, OnStuck, ServiceSLOSpec
from canary.controller.status import MAX_REJECTED, CanaryStatus
from canary.cumulative import Cumulative
from canary.judge.model import Phase, Verdict
from canary.vocabulary import CHECKED_PHASES, CanaryPhase, FreezeCause, Mode

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
    EXPIRED_PROMOTE = "expired-promote"
    """Still inconclusive after analysis.maxDuration, with onInconclusive: promote."""
    EXPIRED_ROLLBACK = "expired-rollback"
    """Still inconclusive after analysis.maxDuration, with onInconclusive: rollback."""
    BACKEND_ERROR = "backend-error"
    BACKEND_LIMIT_HOLD = "backend-limit-hold"
    BACKEND_LIMIT_ROLLBACK = "backend-limit-rollback"
    BACKEND_RECOVERED = "backend-recovered"
    PROMOTE_REQUESTED = "promote-requested"
    RETRY = "retry"
    IGNORED_REQUEST = "ignored-request"
    REJECTED_SERVING = "rejected-serving"
    STUCK_HOLD = "stuck-hold"
    STUCK_ROLLBACK = "stuck-rollback"
    STUCK_PROMOTE = "stuck-promote"
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
    """Remove the request annotations (abort, skip, promote, retry): each is consumed once."""
    CONTAIN = "contain"
    """The current template was rejected: it must serve nothing. Guard mode: pause the rollout and scale
    the template's ReplicaSet to 0 (the stable ReplicaSet keeps serving). Canary mode: scale to 0. With
    `rollback.action` pause or notify-only (pods kept on purpose) guard mode only pauses."""
    RESUME = "resume"
    """Guard mode: unpause a Deployment the controller paused (a known-good template is back)."""


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
    RETRY = "retry"
    """A rejected template is analysed again on purpose: BEGIN, and it is no longer rejected."""


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
    stuck: bool = False
    """The canary passed `analysis.maxWait` without progress: raised once per revision."""


ANY = None
ACTIVE = (P.WAITING, P.ANALYSING, P.PROMOTING)
ABORTABLE = (*ACTIVE, P.FROZEN)
CONTAINED = (P.FROZEN, P.ROLLED_BACK)
"""Phases that may hold a rejected template in the spec (re-applied, or left by a GitOps agent)."""
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
_STUCK = {
    Signal.STUCK_HOLD: Transition(notify=NotifyEvent.STUCK, event=(WARN, "CanaryStuck"), stuck=True),
    Signal.STUCK_ROLLBACK: Transition(
        P.ROLLING_BACK, (Action.ROLLBACK,), effect=Effect.REJECT, notify=NotifyEvent.STUCK,
        event=(WARN, "CanaryStuck"), stuck=True,
    ),
    Signal.STUCK_PROMOTE: Transition(
        P.PROMOTING, (Action.PROMOTE,), notify=NotifyEvent.STUCK, event=(WARN, "CanaryStuck"), stuck=True,
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
        P.FROZEN, (Action.CONTAIN,), effect=Effect.TRACK, freeze=FreezeCause.REJECTED,
        notify=NotifyEvent.FROZEN, event=(WARN, "RejectedTemplate"),
    ),
    **{(phase, Signal.REJECTED_SERVING): Transition(actions=(Action.CONTAIN,)) for phase in CONTAINED},
    **{(phase, Signal.ADOPT): Transition(P.SUCCEEDED, (Action.RESUME,), effect=Effect.ADOPT) for phase in CONTAINED},
    # Requests (annotations written by `canary abort|promote|retry`), each consumed once.
    (ANY, Signal.ABORT): Transition(actions=(Action.CLEAR_REQUEST,), event=(NORMAL, "NothingToAbort")),
    (ANY, Signal.IGNORED_REQUEST): Transition(actions=(Action.CLEAR_REQUEST,), event=(NORMAL, "RequestIgnored")),
    **{
        (phase, Signal.ABORT): Transition(
            P.ROLLING_BACK, (Action.ROLLBACK, Action.CLEAR_REQUEST), effect=Effect.REJECT,
            notify=NotifyEvent.ROLLED_BACK, event=(WARN, "RolledBack"),
        )
        for phase in ABORTABLE
    },
    **{
        (phase, Signal.SKIP): Transition(
            P.PROMOTING, (Action.PROMOTE, Action.CLEAR_REQUEST), event=(NORMAL, "AnalysisSkipped")
        )
        for phase in (*ACTIVE, P.FROZEN)
    },
    **{
        (phase, Signal.RETRY): Transition(
            P.WAITING, (Action.RESTORE_REPLICAS, Action.HOLD, Action.CLEAR_REQUEST), effect=Effect.RETRY,
            notify=NotifyEvent.STARTED, event=(NORMAL, "Retry"),
        )
        for phase in (*CONTAINED, P.ROLLING_BACK)
    },
    # Stuck: not ready, or too little traffic, for longer than analysis.maxWait (raised once).
    **{(phase, s): t for phase in (P.WAITING, P.ANALYSING) for s, t in _STUCK.items()},
    # Waiting for the canary to be ready.
    (P.WAITING, Signal.NOT_READY): Transition(actions=(Action.HOLD,)),
    (P.WAITING, Signal.READY): Transition(P.ANALYSING, (Action.HOLD,), event=(NORMAL, "Analysing")),
    # Analysing: every check counts; enough passes promote.
    **{(P.ANALYSING, s): t for s, t in _CHECKS.items()},
    (P.ANALYSING, Signal.PASS_ENOUGH): Transition(
        P.PROMOTING, (Action.PROMOTE,), Count.PASS, event=(NORMAL, "Promoting")
    ),
    (P.ANALYSING, Signal.NOT_READY): Transition(P.WAITING, (Action.HOLD,)),
    (P.ANALYSING, Signal.EXPIRED_PROMOTE): Transition(
        P.PROMOTING, (Action.PROMOTE,), Count.LOOK, event=(NORMAL, "Promoting")
    ),
    (P.ANALYSING, Signal.EXPIRED_ROLLBACK): Transition(
        P.ROLLING_BACK, (Action.ROLLBACK,), Count.LOOK, Effect.REJECT,
        notify=NotifyEvent.ROLLED_BACK, event=(WARN, "RolledBack"),
    ),
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
    """An abort request for this template (or "true")."""
    skip: bool = False
    """A promote/skip request for this template: promote now, whatever the analysis says."""
    promote_requested: bool = False
    retry: bool = False
    """A retry request for this (rejected) template."""
    ignored_request: str = ""
    """A request that does not apply (issued for another template): why it is dropped."""
    rolling_out: bool = False
    """Other ReplicaSets still run pods: the current template is mid-rollout (first sight: analyse it)."""
    previous_hash: str = ""
    """The template of the newest other ReplicaSet with pods: the stable one on first sight mid-rollout."""
    rejected_serving: bool = False
    """The current template is rejected, yet the Deployment could run pods of it (unpaused or scaled up)."""
    gitops: str = ""
    """The GitOps agent that applies this Deployment's template from Git ("" when none is detected)."""
    canary_ready: bool = False
    settled: bool = False
    """Promoting: the rollout/promotion is complete. RollingBack: the rollback is in place."""
    verdict: Verdict | None = None
    cumulative: Cumulative | None = None
    """The cumulative counts behind `verdict`, stored with it."""


@dataclass(frozen=True)
class Decision:
    signal: Signal
    status: CanaryStatus
    transition: Transition
    actions: tuple[Action, ...] = field(default=())


def classify(
    status: CanaryStatus | None, obs: Observation, spec: ServiceSLOSpec | None, now: datetime | None = None
) -> Signal:
    """The one signal that matters most now, in priority order."""
    if obs.config_error is not None or spec is None:
        return Signal.INVALID
    if status is None:
        return Signal.NEW_REVISION if obs.rolling_out else Signal.ADOPT
    if status.phase is P.INVALID:
        if not status.stable_hash:
            return Signal.NEW_REVISION if obs.rolling_out else Signal.ADOPT
        return Signal.ADOPT if obs.template_hash == status.stable_hash else Signal.NEW_REVISION
    if obs.abort:
        return Signal.ABORT
    if obs.template_hash != status.template_hash:
        if obs.template_hash in status.rejected:
            return Signal.REJECTED_REVISION
        return Signal.ADOPT if obs.template_hash == status.stable_hash else Signal.NEW_REVISION
    request = _request_signal(status, obs)
    if request is not None:
        return request
    if obs.rejected_serving and status.phase in CONTAINED and obs.template_hash in status.rejected:
        return Signal.REJECTED_SERVING
    if now is not None and _stuck(status, obs, spec, now):
        return {OnStuck.HOLD: Signal.STUCK_HOLD, OnStuck.ROLLBACK: Signal.STUCK_ROLLBACK,
                OnStuck.PROMOTE: Signal.STUCK_PROMOTE}[spec.analysis.on_stuck]
    if obs.verdict is not None and status.phase in CHECKED_PHASES:
        return _check_signal(status, obs.verdict, spec, now)
    if obs.settled and status.phase in (P.PROMOTING, P.ROLLING_BACK):
        return Signal.SETTLED
    if status.phase is P.WAITING:
        return Signal.READY if obs.canary_ready else Signal.NOT_READY
    if status.phase is P.ANALYSING and not obs.canary_ready:
        return Signal.NOT_READY
    return Signal.NONE


def _request_signal(status: CanaryStatus, obs: Observation) -> Signal | None:
    """promote/skip, retry and stale requests (abort comes first of all, see classify)."""
    if obs.retry:
        rejected = obs.template_hash in status.rejected
        return Signal.RETRY if rejected and status.phase in (*CONTAINED, P.ROLLING_BACK) else Signal.IGNORED_REQUEST
    if obs.skip or obs.promote_requested:
        if status.phase is P.PROMOTING and obs.promote_requested:
            return Signal.PROMOTE_REQUESTED
        if status.phase in ACTIVE or (status.phase is P.FROZEN and status.freeze_cause is FreezeCause.BACKEND):
            return Signal.SKIP
        return Signal.IGNORED_REQUEST
    return Signal.IGNORED_REQUEST if obs.ignored_request else None


def _stuck(status: CanaryStatus, obs: Observation, spec: ServiceSLOSpec, now: datetime) -> bool:
    """Waiting (not ready), or analysing without a conclusive check, for longer than maxWait; once."""
    if status.phase not in (P.WAITING, P.ANALYSING) or status.stuck_at is not None:
        return False
    if obs.verdict is not None and (obs.verdict.phase is not Phase.INCONCLUSIVE or _enough_data(obs.verdict)):
        return False  # judge v2: an inconclusive canary with minRequests is waiting for evidence (maxDuration)
    since = max((t for t in (status.started_at, status.conclusive_at) if t is not None), default=None)
    return since is not None and (now - since).total_seconds() > spec.analysis.max_wait


def _check_signal(status: CanaryStatus, verdict: Verdict, spec: ServiceSLOSpec, now: datetime | None) -> Signal:
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
    return _expired(status, verdict, spec, now) or Signal.INCONCLUSIVE


def _enough_data(verdict: Verdict) -> bool:
    return any(c.name == "sample-size" and c.result is Phase.PASS for c in verdict.checks)


def _expired(status: CanaryStatus, verdict: Verdict, spec: ServiceSLOSpec, now: datetime | None) -> Signal | None:
    """onInconclusive once maxDuration is over; never for a canary without data (no data never decides)."""
    analysis = spec.analysis
    if analysis.max_duration is None or analysis.on_inconclusive is InconclusivePolicy.HOLD:
        return None
    if now is None or status.started_at is None or status.phase is not P.ANALYSING:
        return None
    if now - status.started_at < timedelta(seconds=analysis.max_duration):
        return None
    if not any(c.name == "sample-size" and (c.samples or 0) > 0 for c in verdict.checks):
        return None
    if analysis.on_inconclusive is InconclusivePolicy.PROMOTE:
        return Signal.EXPIRED_PROMOTE
    return Signal.EXPIRED_ROLLBACK


def lookup(phase: CanaryPhase, signal: Signal) -> Transition:
    return TABLE.get((phase, signal)) or TABLE.get((ANY, signal)) or Transition()


def decide(
    status: CanaryStatus | None, obs: Observation, spec: ServiceSLOSpec | None, now: datetime
) -> Decision:
    """The next status and the actions that get there."""
    signal = classify(status, obs, spec, now)
    current = status or CanaryStatus(phase=P.SUCCEEDED, mode=obs.mode)
    transition = lookup(current.phase, signal)
    new = _apply(current, transition, obs, now)
    if signal is Signal.INVALID:
        new = new.model_copy(update={"message": obs.config_error or "no ServiceSLO"})
    elif obs.verdict is not None and transition.count is not Count.KEEP:
        update: dict[str, object] = {"last_verdict": obs.verdict, "message": obs.verdict.message}
        if obs.cumulative is not None:
            update["cumulative"] = obs.cumulative
        if signal in (Signal.EXPIRED_PROMOTE, Signal.EXPIRED_ROLLBACK):
            policy = "promote" if signal is Signal.EXPIRED_PROMOTE else "rollback"
            update["message"] = f"no decision within maxDuration (onInconclusive: {policy}): {obs.verdict.message}"
        new = new.model_copy(update=update)
    elif transition.event is not None:
        new = new.model_copy(update={"message": _describe(signal, obs, transition, current, spec)})
    if obs.gitops and obs.template_hash in new.rejected and transition.event is not None:
        new = new.model_copy(update={"message": f"{new.message}; {_git_holds(obs, new)}"})
    return Decision(signal=signal, status=new, transition=transition, actions=transition.actions)


def _git_holds(obs: Observation, status: CanaryStatus) -> str:
    return (
        f"{obs.gitops} applies this Deployment from Git, and Git still holds the rejected template {obs.template_hash} "
        f"(revision {obs.revision}): revert that change in Git, or commit a new revision; until then the "
        "rejected template serves no traffic and the controller does not write the template back"
    )


def _apply(status: CanaryStatus, t: Transition, obs: Observation, now: datetime) -> CanaryStatus:
    update: dict[str, object] = {"mode": obs.mode}
    if t.to is not None:
        update["phase"] = t.to
        update["freeze_cause"] = t.freeze
    if t.effect in (Effect.BEGIN, Effect.RETRY):
        update.update(
            template_hash=obs.template_hash, revision=obs.revision, started_at=now, checks_passed=0,
            checks_failed=0, backend_errors=0, looks=0, last_verdict=None, last_check_at=None,
            conclusive_at=None, stuck_at=None, cumulative=None,
        )
        if not status.stable_hash and obs.previous_hash:
            update["stable_hash"] = obs.previous_hash
        if t.effect is Effect.RETRY:
            update["rejected"] = [h for h in status.rejected if h != obs.template_hash]
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
    if t.count in (Count.PASS, Count.FAIL):
        update["conclusive_at"] = now
    if t.stuck:
        update["stuck_at"] = now
    if t.count is Count.PASS:
        update.update(checks_passed=status.checks_passed + 1, checks_failed=0, backend_errors=0, looks=status.looks + 1)
    elif t.count is Count.FAIL:
        update.update(checks_failed=status.checks_failed + 1, backend_errors=0, looks=status.looks + 1)
    elif t.count is Count.LOOK:
        update.update(backend_errors=0, looks=status.looks + 1)
    elif t.count is Count.ERROR:
        update["backend_errors"] = status.backend_errors + 1
    return status.model_copy(update=update)


def _describe(
    signal: Signal, obs: Observation, t: Transition, status: CanaryStatus, spec: ServiceSLOSpec | None
) -> str:
    if signal is Signal.SETTLED:
        if t.to is P.SUCCEEDED:
            return f"promoted: revision {obs.revision} ({obs.template_hash}) is the stable version"
        return "rollback complete: the stable version runs again"
    if signal in _STUCK and spec is not None:
        why = (
            "is not ready" if status.phase is P.WAITING
            else f"got fewer than minRequests ({spec.analysis.min_requests}) requests in every check"
        )
        then = {Signal.STUCK_HOLD: "holding the rollout (analysis.onStuck: hold)",
                Signal.STUCK_ROLLBACK: "rolling back (analysis.onStuck: rollback)",
                Signal.STUCK_PROMOTE: "promoting (analysis.onStuck: promote)"}[signal]
        return (f"canary of revision {obs.revision} ({obs.template_hash}) {why} after "
                f"analysis.maxWait ({spec.analysis.max_wait:g}s): {then}")
    if signal is Signal.ABORT and t.to is None:
        return f"abort requested, but there is nothing to abort in phase {status.phase.value}: request dropped"
    if signal is Signal.IGNORED_REQUEST:
        what = "retry" if obs.retry else "promote" if obs.skip or obs.promote_requested else "request"
        return obs.ignored_request or f"{what} requested, but it does nothing in phase {status.phase.value}: dropped"
    return {
        Signal.NEW_REVISION: f"new revision {obs.revision} ({obs.template_hash}): analysis starts",
        Signal.REJECTED_REVISION: (
            f"template {obs.template_hash} was rolled back before: frozen, its pods scaled to 0 and the rollout "
            "paused (the stable ReplicaSet serves); apply another revision, or `canary retry` to analyse it again"
        ),
        Signal.ABORT: f"rollback of {status.template_hash} requested (canary abort)",
        Signal.SKIP: "analysis skipped on request (canary promote): promoting",
        Signal.RETRY: f"template {obs.template_hash} analysed again on request (canary retry)",
        Signal.READY: "canary is ready: analysing",
    }.get(signal, signal.value)
