"""One reconcile of one guarded Deployment: decide on its Snapshot, plan, execute.

    Snapshot ──observation──> machine.decide ──> plan.plan ──> executor.execute
    (cache, once per tick)     (pure table)       (pure)        (one guarded write, then tell)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from canary.analysis import Outcome
from canary.controller.executor import Executor
from canary.controller.machine import Decision, decide
from canary.controller.plan import plan, worth_writing
from canary.controller.snapshot import Snapshot


class Reconciler:
    def __init__(self, executor: Executor, clock: Callable[[], datetime]) -> None:
        self.executor = executor
        self.clock = clock

    def reconcile(self, snap: Snapshot, outcome: Outcome | None = None) -> Decision | None:
        """Bring one Deployment one step forward. `outcome` is a check measured on this Snapshot. A
        Deployment that changed since the Snapshot is not written: the informer brings the change, which
        queues another reconcile."""
        started = time.monotonic()
        now = self.clock()
        observation = snap.observation(outcome, now)
        decision = decide(snap.status, observation, snap.spec, now)
        if not worth_writing(decision, snap.status):
            return decision
        counted = outcome if observation.verdict is not None else None
        sinks = self.executor.notifications
        slo = snap.config.slo
        the_plan = plan(
            decision, snap, snap.strategy, outcome=counted, now=now,
            has_destination=lambda event: slo is not None and bool(sinks.destinations(event, slo)),
        )
        self.executor.execute(the_plan, snap, counted, started)
        return decision
