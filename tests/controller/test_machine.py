"""The state machine, pure: every transition a user relies on, and the rules that must always hold."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from canary.config.slo import (
    Analysis,
    BackendFailurePolicy,
    NotifyEvent,
    ServiceSLOSpec,
)
from canary.controller.machine import Action, Observation, Signal, classify, decide
from canary.controller.status import CanaryStatus
from canary.judge.model import CheckResult, Phase, Verdict
from canary.vocabulary import CanaryPhase, FreezeCause, Mode

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SPEC = ServiceSLOSpec(
    service="checkout", analysis=Analysis(successful_checks=3, failed_checks=2, backend_error_limit=2)
)
P = CanaryPhase


def verdict(phase: Phase) -> Verdict:
    check = CheckResult(name="availability", result=phase, reason="r")
    return Verdict(phase=phase, checks=(check,), message=f"{phase}")


def status(phase: CanaryPhase, **kw: object) -> CanaryStatus:
    base = dict(phase=phase, mode=Mode.GUARD, template_hash="new", stable_hash="old", revision="2")
    base.update(kw)
    return CanaryStatus.model_validate(base)


def obs(template: str = "new", **kw: object) -> Observation:
    return Observation(mode=Mode.GUARD, template_hash=template, revision="2", **kw)  # type: ignore[arg-type]


def test_first_sight_adopts_the_running_template_as_stable() -> None:
    d = decide(None, obs("abc"), SPEC, NOW)
    assert d.status.phase is P.SUCCEEDED
    assert d.status.stable_hash == d.status.template_hash == "abc"
    assert not d.actions


def test_new_template_starts_an_analysis_held_at_the_first_step() -> None:
    d = decide(status(P.SUCCEEDED, template_hash="old"), obs("new"), SPEC, NOW)
    assert d.status.phase is P.WAITING
    assert Action.HOLD in d.actions
    assert d.transition.notify is NotifyEvent.STARTED
    assert (d.status.template_hash, d.status.started_at, d.status.checks_passed) == ("new", NOW, 0)


def test_ready_canary_is_analysed_then_promoted_after_enough_passes() -> None:
    s = decide(status(P.WAITING), obs(canary_ready=True), SPEC, NOW).status
    assert s.phase is P.ANALYSING
    for expected in (1, 2):
        s = decide(s, obs(verdict=verdict(Phase.PASS), canary_ready=True), SPEC, NOW).status
        assert (s.phase, s.checks_passed, s.looks) == (P.ANALYSING, expected, expected)
    d = decide(s, obs(verdict=verdict(Phase.PASS), canary_ready=True), SPEC, NOW)
    assert d.status.phase is P.PROMOTING and Action.PROMOTE in d.actions
    done = decide(d.status, obs(settled=True), SPEC, NOW)
    assert done.status.phase is P.SUCCEEDED and done.status.stable_hash == "new"
    assert done.transition.notify is NotifyEvent.PROMOTED


def test_consecutive_failures_roll_back_and_a_pass_resets_them() -> None:
    s = decide(status(P.ANALYSING), obs(verdict=verdict(Phase.FAIL)), SPEC, NOW).status
    assert (s.phase, s.checks_failed) == (P.ANALYSING, 1)
    s = decide(s, obs(verdict=verdict(Phase.PASS)), SPEC, NOW).status
    assert s.checks_failed == 0
    s = decide(s, obs(verdict=verdict(Phase.FAIL)), SPEC, NOW).status
    d = decide(s, obs(verdict=verdict(Phase.FAIL)), SPEC, NOW)
    assert d.status.phase is P.ROLLING_BACK
    assert Action.ROLLBACK in d.actions and d.transition.notify is NotifyEvent.ROLLED_BACK
    assert d.status.rejected == ["new"]


def test_a_failing_check_rolls_back_even_while_promoting() -> None:
    s = status(P.PROMOTING, checks_failed=1)
    d = decide(s, obs(verdict=verdict(Phase.FAIL), settled=False), SPEC, NOW)
    assert d.status.phase is P.ROLLING_BACK


def test_inconclusive_never_counts_towards_rollback_or_promotion() -> None:
    s = status(P.ANALYSING, checks_failed=1, checks_passed=2)
    for _ in range(5):
        s = decide(s, obs(verdict=verdict(Phase.INCONCLUSIVE)), SPEC, NOW).status
    assert (s.phase, s.checks_failed, s.checks_passed, s.looks) == (P.ANALYSING, 1, 2, 5)


def test_backend_errors_hold_never_roll_back_by_default() -> None:
    s = decide(status(P.ANALYSING), obs(verdict=verdict(Phase.ERROR)), SPEC, NOW).status
    assert (s.phase, s.backend_errors) == (P.ANALYSING, 1)
    d = decide(s, obs(verdict=verdict(Phase.ERROR)), SPEC, NOW)
    assert d.status.phase is P.FROZEN and d.status.freeze_cause is FreezeCause.BACKEND
    assert Action.ROLLBACK not in d.actions and d.transition.notify is NotifyEvent.BACKEND_DOWN
    back = decide(d.status, obs(verdict=verdict(Phase.PASS)), SPEC, NOW)
    assert back.status.phase is P.ANALYSING and back.transition.notify is NotifyEvent.BACKEND_RECOVERED


def test_backend_failure_policy_rollback() -> None:
    spec = SPEC.model_copy(
        update={"analysis": SPEC.analysis.model_copy(update={"on_backend_failure": BackendFailurePolicy.ROLLBACK})}
    )
    d = decide(status(P.ANALYSING, backend_errors=1), obs(verdict=verdict(Phase.ERROR)), spec, NOW)
    assert d.status.phase is P.ROLLING_BACK


def test_rejected_template_applied_again_is_frozen_not_rolled_back() -> None:
    s = status(P.ROLLED_BACK, template_hash="old", rejected=["new"])
    d = decide(s, obs("new"), SPEC, NOW)
    assert d.status.phase is P.FROZEN and d.status.freeze_cause is FreezeCause.REJECTED
    assert Action.ROLLBACK not in d.actions and Action.CONTAIN in d.actions
    again = decide(d.status, obs("new"), SPEC, NOW)
    assert again.signal is Signal.NONE and again.transition.notify is None


def test_the_restored_template_is_not_analysed_as_a_new_canary() -> None:
    s = status(P.ROLLING_BACK, template_hash="old", stable_hash="old", rejected=["new"])
    assert classify(s, obs("old"), SPEC) is Signal.NONE
    d = decide(s, obs("old", settled=True), SPEC, NOW)
    assert d.status.phase is P.ROLLED_BACK


def test_template_change_mid_analysis_drops_the_verdict_and_restarts() -> None:
    s = status(P.ANALYSING, checks_failed=1)
    d = decide(s, obs("newer", verdict=verdict(Phase.FAIL)), SPEC, NOW)
    assert d.signal is Signal.NEW_REVISION
    assert (d.status.template_hash, d.status.checks_failed) == ("newer", 0)


def test_abort_rolls_back_from_any_active_phase_and_skip_promotes() -> None:
    for phase in (P.WAITING, P.ANALYSING, P.PROMOTING):
        d = decide(status(phase), obs(abort=True, verdict=verdict(Phase.PASS)), SPEC, NOW)
        assert d.status.phase is P.ROLLING_BACK and Action.CLEAR_REQUEST in d.actions
    settled = decide(status(P.SUCCEEDED, template_hash="new"), obs(abort=True), SPEC, NOW)
    assert settled.status.phase is P.SUCCEEDED and settled.actions == (Action.CLEAR_REQUEST,)
    skip = decide(status(P.ANALYSING), obs(skip=True), SPEC, NOW)
    assert skip.status.phase is P.PROMOTING and Action.PROMOTE in skip.actions


def test_invalid_config_changes_nothing_but_the_phase() -> None:
    d = decide(status(P.ANALYSING, checks_failed=1), obs(config_error="annotation x: bad"), None, NOW)
    assert d.status.phase is P.INVALID and d.actions == ()
    assert d.status.message == "annotation x: bad" and d.status.checks_failed == 1


phases = st.sampled_from(list(CanaryPhase))
verdicts = st.sampled_from([None, *list(Phase)])


@given(phase=phases, v=verdicts, abort=st.booleans(), skip=st.booleans(), ready=st.booleans(),
       done=st.booleans(), failed=st.integers(0, 5), errors=st.integers(0, 5), template=st.sampled_from(["new", "x"]))
def test_invariants(phase: CanaryPhase, v: Phase | None, abort: bool, skip: bool, ready: bool, done: bool,
                    failed: int, errors: int, template: str) -> None:
    s = status(phase, checks_failed=failed, backend_errors=errors)
    o = obs(template, verdict=verdict(v) if v else None, abort=abort, skip=skip, canary_ready=ready, settled=done)
    d = decide(s, o, SPEC, NOW)
    # A backend error is never a reason to roll back under the default `hold` policy.
    if v is Phase.ERROR and not abort:
        assert Action.ROLLBACK not in d.actions
    # Without a fail verdict or an abort, nothing rolls back.
    if v is not Phase.FAIL and not abort:
        assert Action.ROLLBACK not in d.actions
    # A rollback always records the rejected template and tells the team.
    if Action.ROLLBACK in d.actions:
        assert d.status.rejected[-1] == "new" and d.transition.notify is NotifyEvent.ROLLED_BACK
    # Settled phases never act on verdicts.
    if phase in (P.SUCCEEDED, P.ROLLED_BACK, P.INVALID) and template == "new" and not abort:
        assert Action.ROLLBACK not in d.actions and Action.PROMOTE not in d.actions



def test_a_deployment_seen_before_its_slo_is_adopted_once_valid() -> None:
    invalid = decide(None, obs("v1", config_error="annotation canary.mop.dev/slo: ServiceSLO shop/x not found"),
                     None, NOW).status
    assert invalid.phase is P.INVALID and invalid.stable_hash == ""
    d = decide(invalid, obs("v1"), SPEC, NOW)
    assert d.signal is Signal.ADOPT and d.status.phase is P.SUCCEEDED and d.status.stable_hash == "v1"


def test_nothing_to_do_while_analysing_between_checks() -> None:
    d = decide(status(P.ANALYSING), obs(canary_ready=True), SPEC, NOW)
    assert d.signal is Signal.NONE and d.status == status(P.ANALYSING) and not d.actions


def test_first_sight_mid_rollout_analyses_the_new_template_against_the_old_one() -> None:
    d = decide(None, obs("new", rolling_out=True, previous_hash="old"), SPEC, NOW)
    assert d.signal is Signal.NEW_REVISION and d.status.phase is P.WAITING and Action.HOLD in d.actions
    assert (d.status.template_hash, d.status.stable_hash) == ("new", "old")
    invalid = decide(None, obs("new", config_error="no SLO yet"), None, NOW).status
    later = decide(invalid, obs("new", rolling_out=True, previous_hash="old"), SPEC, NOW)
    assert later.signal is Signal.NEW_REVISION and later.status.stable_hash == "old"


def test_rejected_template_that_could_serve_again_is_contained_without_noise() -> None:
    for phase in (P.FROZEN, P.ROLLED_BACK):
        s = status(phase, rejected=["new"], freeze_cause=FreezeCause.REJECTED)
        d = decide(s, obs("new", rejected_serving=True), SPEC, NOW)
        assert d.signal is Signal.REJECTED_SERVING and d.actions == (Action.CONTAIN,)
        assert d.transition.event is None and d.transition.notify is None and d.status.phase is phase
    back = decide(status(P.FROZEN, rejected=["new"], stable_hash="old"), obs("old"), SPEC, NOW)
    assert back.status.phase is P.SUCCEEDED and Action.RESUME in back.actions


def test_gitops_rollback_says_git_still_holds_the_rejected_template() -> None:
    d = decide(status(P.ANALYSING, checks_failed=1), obs(verdict=verdict(Phase.FAIL), gitops="Argo CD"), SPEC, NOW)
    assert d.status.phase is P.ROLLING_BACK
    assert "Argo CD" in d.status.message and "Git still holds the rejected template new" in d.status.message
    frozen = decide(status(P.ROLLED_BACK, template_hash="old", rejected=["new"]), obs("new", gitops="Flux"),
                    SPEC, NOW)
    assert "Git still holds the rejected template new" in frozen.status.message


def test_requests_act_once_in_their_phases_and_are_always_consumed() -> None:
    frozen = status(P.FROZEN, rejected=["new"], freeze_cause=FreezeCause.REJECTED)
    abort = decide(frozen, obs(abort=True), SPEC, NOW)
    assert abort.status.phase is P.ROLLING_BACK and Action.ROLLBACK in abort.actions
    retry = decide(frozen, obs(retry=True), SPEC, NOW)
    assert retry.status.phase is P.WAITING and "new" not in retry.status.rejected
    assert Action.CLEAR_REQUEST in retry.actions and retry.status.checks_failed == 0
    refused = decide(frozen, obs(skip=True, promote_requested=True), SPEC, NOW)
    assert refused.signal is Signal.IGNORED_REQUEST and refused.actions == (Action.CLEAR_REQUEST,)
    assert refused.status.phase is P.FROZEN
    for phase in (P.SUCCEEDED, P.ROLLED_BACK):
        for request in ({"skip": True}, {"retry": True}, {"ignored_request": "abort was for x"}):
            d = decide(status(phase), obs(**request), SPEC, NOW)
            assert d.signal is Signal.IGNORED_REQUEST and d.actions == (Action.CLEAR_REQUEST,)
            assert d.status.phase is phase


def test_a_stuck_canary_is_reported_once_then_does_what_the_slo_says() -> None:
    from datetime import timedelta

    from canary.config.slo import OnStuck

    late = NOW + timedelta(seconds=SPEC.analysis.max_wait + 1)
    waiting = status(P.WAITING, started_at=NOW)
    assert decide(waiting, obs(), SPEC, NOW + timedelta(seconds=5)).signal is Signal.NOT_READY
    d = decide(waiting, obs(), SPEC, late)
    assert d.signal is Signal.STUCK_HOLD and d.transition.event == ("Warning", "CanaryStuck")
    assert d.transition.notify is NotifyEvent.STUCK and d.status.stuck_at == late and d.status.phase is P.WAITING
    assert "not ready" in d.status.message and "hold" in d.status.message
    assert decide(d.status, obs(), SPEC, late + timedelta(seconds=60)).signal is Signal.NOT_READY
    quiet = status(P.ANALYSING, started_at=NOW)
    q = decide(quiet, obs(verdict=verdict(Phase.INCONCLUSIVE), canary_ready=True), SPEC, late)
    assert q.signal is Signal.STUCK_HOLD and "minRequests" in q.status.message
    passing = decide(quiet, obs(verdict=verdict(Phase.PASS), canary_ready=True), SPEC, late)
    assert passing.signal is Signal.PASS and passing.status.conclusive_at == late
    for policy, phase, action in ((OnStuck.ROLLBACK, P.ROLLING_BACK, Action.ROLLBACK),
                                  (OnStuck.PROMOTE, P.PROMOTING, Action.PROMOTE)):
        spec = SPEC.model_copy(update={"analysis": SPEC.analysis.model_copy(update={"on_stuck": policy})})
        acted = decide(waiting, obs(), spec, late)
        assert acted.status.phase is phase and action in acted.actions and acted.transition.stuck
    begun = decide(d.status, obs("newer"), SPEC, late)
    assert begun.status.stuck_at is None, "a new revision may be reported stuck again"


def _inconclusive(samples: float) -> Verdict:
    result = Phase.PASS if samples >= 50 else Phase.INCONCLUSIVE
    size = CheckResult(name="sample-size", result=result, reason="r", samples=samples)
    return Verdict(phase=Phase.INCONCLUSIVE, checks=(size,), message="waiting for evidence")


def test_max_duration_applies_on_inconclusive_once_over_and_only_with_data() -> None:
    from datetime import timedelta

    started = NOW - timedelta(minutes=31)
    analysing = status(P.ANALYSING, started_at=started)
    for policy, phase, signal in (
        ("promote", P.PROMOTING, Signal.EXPIRED_PROMOTE),
        ("rollback", P.ROLLING_BACK, Signal.EXPIRED_ROLLBACK),
    ):
        spec = SPEC.model_copy(update={"analysis": Analysis(max_duration="30m", on_inconclusive=policy)})
        d = decide(analysing, obs(verdict=_inconclusive(800)), spec, NOW)
        assert (d.signal, d.status.phase) == (signal, phase)
        assert d.status.message.startswith(f"no decision within maxDuration (onInconclusive: {policy})")
        # before the end, or without any data, nothing is decided
        early = decide(status(P.ANALYSING, started_at=NOW - timedelta(minutes=5)), obs(verdict=_inconclusive(800)),
                       spec, NOW)
        assert early.signal is Signal.INCONCLUSIVE and early.status.phase is P.ANALYSING
        empty = decide(analysing, obs(verdict=_inconclusive(0)), spec, NOW)  # no data: maxWait's business
        assert empty.signal not in (Signal.EXPIRED_PROMOTE, Signal.EXPIRED_ROLLBACK)
        assert empty.status.phase is P.ANALYSING
    held = SPEC.model_copy(update={"analysis": Analysis(max_duration="30m")})  # default onInconclusive: hold
    assert decide(analysing, obs(verdict=_inconclusive(800)), held, NOW).status.phase is P.ANALYSING
    rejected = decide(analysing, obs(verdict=_inconclusive(800)),
                      SPEC.model_copy(update={"analysis": Analysis(max_duration="30m", on_inconclusive="rollback")}),
                      NOW).status
    assert "new" in rejected.rejected


def test_the_evidence_is_stored_with_each_verdict_and_cleared_by_a_new_revision() -> None:
    from canary.cumulative import Cumulative

    evidence = Cumulative(since=NOW, until=NOW, increments=3)
    s = decide(status(P.ANALYSING), obs(verdict=verdict(Phase.INCONCLUSIVE), cumulative=evidence), SPEC, NOW).status
    assert s.cumulative == evidence
    restarted = decide(s, obs("newer"), SPEC, NOW).status
    assert restarted.cumulative is None and restarted.template_hash == "newer"
