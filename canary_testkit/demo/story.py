"""The scripted story: (1) a healthy v2 is analysed and promoted, (2) a faulty v3 is detected and rolled
back, (3) v3 re-applied is frozen, not flapped. Every wait is bounded and fails naming the step."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from canary.controller.status import CanaryStatus
from canary.vocabulary import CanaryPhase, FreezeCause
from canary_testkit.demo import scenario as sc
from canary_testkit.demo.environment import DemoEnvironment
from canary_testkit.demo.options import Scenario
from canary_testkit.demo.record import DecisionRecord, Recorder

T = TypeVar("T")
POLL = 0.1


class StoryError(RuntimeError):
    """A step did not end as the story expects (one line, naming the step)."""


class Step(BaseModel):
    number: int
    title: str
    started: float
    ended: float | None = None
    ok: bool | None = None
    detail: str = ""


class Marks(BaseModel):
    """Seconds since the demo started at which the story's moments happened."""

    v2_applied: float | None = None
    promoted: float | None = None
    fault: float | None = None
    """v3 applied: the faulty version starts serving."""
    first_failed_check: float | None = None
    rollback: float | None = None
    """The controller wrote the undo (phase RollingBack)."""
    rolled_back: float | None = None
    reapplied: float | None = None
    frozen: float | None = None

    @property
    def fault_to_rollback(self) -> float | None:
        if self.fault is None or self.rollback is None:
            return None
        return round(self.rollback - self.fault, 3)


class Story:
    """Plays the story against `env`; `steps` and `marks` are read by the live view while it runs."""

    def __init__(self, env: DemoEnvironment, recorder: Recorder, pace: sc.Pace, scenario: Scenario) -> None:
        self.env = env
        self.recorder = recorder
        self.pace = pace
        self.scenario = scenario
        self.steps: list[Step] = []
        self.marks = Marks()

    # -- plumbing -----------------------------------------------------------------------------------

    def _begin(self, title: str) -> Step:
        step = Step(number=len(self.steps), title=title, started=self.recorder.now())
        self.steps.append(step)
        return step

    def _end(self, step: Step, detail: str) -> None:
        step.ended, step.ok, step.detail = self.recorder.now(), True, detail

    def _fail(self, step: Step, why: str) -> StoryError:
        step.ended, step.ok, step.detail = self.recorder.now(), False, why
        return StoryError(f"step {step.number} ({step.title}): {why}")

    def _now_status(self) -> str:
        st = self.env.status()
        if st is None:
            return "no status yet"
        return f"phase {st.phase.value}, {st.checks_passed} passed, {st.checks_failed} failed, image {self.env.image()}"

    def _wait(self, step: Step, what: str, probe: Callable[[], T | None], seconds: float) -> T:
        """Poll `probe` until it returns something; it may raise StoryError for an outcome that rules
        success out. Times out after `seconds` at speed 1 (scaled, plus a margin)."""
        timeout = self.pace.budget(seconds)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found is not None:
                return found
            time.sleep(POLL)
        raise self._fail(step, f"timed out after {timeout:.0f}s waiting for {what} (now: {self._now_status()})")

    def _template_hash(self) -> str:
        st = self.env.status()
        return st.template_hash if st is not None else ""

    def _status_in(self, *phases: CanaryPhase) -> CanaryStatus | None:
        st = self.env.status()
        return st if st is not None and st.phase in phases else None

    def _slack(self, step: Step, headline: str, seconds: float = 15.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            return next((m for m in self.env.slack.messages if headline in str(m.get("text", ""))), None)

        return self._wait(step, f"the Slack message {headline!r}", probe, seconds)

    def _record(self, predicate: Callable[[DecisionRecord], bool]) -> DecisionRecord | None:
        return self.recorder.first(predicate)

    # -- the story ----------------------------------------------------------------------------------

    def run(self) -> None:
        self.adopt()
        self.promote_healthy()
        if sc.faulty_profile(self.scenario) is None:
            return
        self.roll_back_faulty()
        self.freeze_reapplied()

    def adopt(self) -> None:
        step = self._begin("checkout v1 deployed and adopted as the stable version")
        self.env.configure(self.pace)
        self._wait(step, "the controller to load the ServiceSLO", lambda: self.env.slo_loaded() or None, 10)
        self.env.deploy()
        st = self._wait(step, "v1 to be adopted (phase Succeeded)", lambda: self._status_in(CanaryPhase.SUCCEEDED), 30)
        self._end(step, f"revision {st.revision or '1'} stable")

    def promote_healthy(self) -> None:
        step = self._begin("v2 (healthy) analysed and promoted")
        before = self._template_hash()
        self.env.set_image("v2")
        self.marks.v2_applied = self.recorder.now()

        def promoted() -> CanaryStatus | None:
            st = self.env.status()
            if st is not None and st.phase in (CanaryPhase.ROLLING_BACK, CanaryPhase.ROLLED_BACK):
                # once RolledBack the status message says "rollback complete"; the verdict still says why
                why = st.last_verdict.message if st.last_verdict is not None else st.message
                raise self._fail(step, f"the healthy v2 was rolled back: {why}")
            if self.env.image() != "v2":
                raise self._fail(step, f"v2 was replaced ({self._now_status()})")
            if st is None:
                return None
            done = st.phase is CanaryPhase.SUCCEEDED and st.template_hash != before
            return st if done else None

        st = self._wait(step, "v2 to be promoted (phase Succeeded)", promoted, 60)
        record = self._record(lambda r: r.image == "v2" and r.phase == CanaryPhase.PROMOTING.value)
        self.marks.promoted = record.t if record is not None else self.recorder.now()
        self._slack(step, f"{sc.DEPLOYMENT} v2 promoted")
        self._end(step, f"{st.checks_passed} checks passed, {st.checks_failed} failed; promoted")

    def roll_back_faulty(self) -> None:
        step = self._begin(f"v3 ({sc.fault_text(self.scenario)}) detected and rolled back")
        before = self._template_hash()
        self.env.set_image("v3")
        self.marks.fault = self.recorder.now()

        def rolled_back() -> CanaryStatus | None:
            st = self.env.status()
            if st is None:
                return None
            about_v3 = st.template_hash != before and self.env.image() == "v3"
            if about_v3 and st.phase in (CanaryPhase.PROMOTING, CanaryPhase.SUCCEEDED):
                raise self._fail(step, f"the faulty v3 was promoted: {st.message}")
            return st if st.phase is CanaryPhase.ROLLED_BACK and self.env.image() == "v2" else None

        st = self._wait(step, "v3 to be rolled back to v2 (phase RolledBack)", rolled_back, 45)
        self.marks.rolled_back = self.recorder.now()
        failed = self._record(lambda r: r.image == "v3" and r.verdict == "fail")
        rollback = self._record(lambda r: r.image == "v3" and r.phase == CanaryPhase.ROLLING_BACK.value)
        self.marks.first_failed_check = failed.t if failed else None
        self.marks.rollback = rollback.t if rollback else self.marks.rolled_back
        self._slack(step, f"{sc.DEPLOYMENT} v3 rolled back")
        took = self.marks.rollback - self.marks.fault
        self._end(step, f"{st.checks_failed} failed checks; rolled back {took:.1f}s after v3 was applied")

    def freeze_reapplied(self) -> None:
        step = self._begin("v3 re-applied: frozen, not rolled back again")
        self.env.set_image("v3")
        self.marks.reapplied = self.recorder.now()

        def frozen() -> CanaryStatus | None:
            st = self._status_in(CanaryPhase.FROZEN)
            return st if st is not None and st.freeze_cause is FreezeCause.REJECTED else None

        self._wait(step, "v3 to be frozen (phase Frozen, rejected template)", frozen, 30)
        self.marks.frozen = self.recorder.now()
        self._slack(step, f"{sc.DEPLOYMENT} v3 frozen")
        # watch it for a few intervals: it must stay frozen, held and unchanged (no rollback loop)
        watch_until = time.monotonic() + 3 * self.pace.interval
        while time.monotonic() < watch_until:
            st = self.env.status()
            if st is None or st.phase is not CanaryPhase.FROZEN or self.env.image() != "v3":
                raise self._fail(step, f"v3 did not stay frozen ({self._now_status()})")
            time.sleep(POLL)
        rollbacks = [r for r in self.recorder.records() if r.phase == CanaryPhase.ROLLING_BACK.value]
        if len(rollbacks) != 1:
            raise self._fail(step, f"expected exactly one rollback, the controller wrote {len(rollbacks)}")
        if not self.env.deployment()["spec"].get("paused"):
            raise self._fail(step, "the frozen rollout is not held (spec.paused is not true)")
        self._end(step, "held at its first step; one rollback in all")
