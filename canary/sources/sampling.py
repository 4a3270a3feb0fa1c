"""Trace error rates on unbiased samples: adaptive sampling tied to the analysis.

The MOP stack tail-samples traces in Alloy: errors and slow traces always, the rest at 5-25%.
Measured on those, a true 1% server-span error rate reads as about 17%. So while a canary is under
analysis, its traces and its baseline's must all be kept, and the measurement must only cover time
in which they were:

- Every tick, `AnalysedTraceSource` publishes the workloads under analysis (canary and baseline
  Deployments, `namespace/deployment`, comma-separated) in the ConfigMap the stack reads with Alloy's
  `remote.kubernetes.configmap` (`mop/mop-canary-sampling`, key `workloads`); Alloy's first tail
  sampling policy keeps 100% of their traces.
- A workload counts as fully sampled `settle_seconds` after its publication (Alloy's poll period plus
  the tail sampler's decision wait). A target's window is cut to start there: the trace error rate is
  only ever measured on 100% of the canary's and the baseline's traces. Before that, the target has no
  trace value this tick (the trace check waits; a missing value is never a pass of that check).
- Workloads leave the set `retain_seconds` after the last tick that analysed them (ticks of different
  canaries come at different times), and whenever publishing fails the new ones are not counted as
  fully sampled, so a lost write can never make a sampled measurement look unbiased.

With probabilistic sampling (Alloy's `probabilistic` mode), kept traces do not depend on their status
and the error ratio is unbiased without any of this; the wrapper is then simply not configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from canary.samples import BackendError, Target, TraceSample
from canary.sources.base import BatchResult
from canary.sources.tempo import TempoSource

log = logging.getLogger(__name__)

KEY = "workloads"


def workload_names(target: Target) -> set[str]:
    """`namespace/deployment` of the canary and every baseline workload of a target."""
    return {f"{w.namespace}/{w.deployment}" for w in (target.canary, *target.baseline)}


class SamplingPublisher:
    """Writes the analysed set into the ConfigMap `namespace/name` (which the stack creates)."""

    def __init__(self, api_client: ApiClient, namespace: str, name: str, timeout_seconds: float = 10.0) -> None:
        self._core = CoreV1Api(api_client)
        self.namespace, self.name = namespace, name
        self._timeout = timeout_seconds

    def publish(self, workloads: set[str]) -> str | None:
        """None when written, else why not (naming the ConfigMap)."""
        body = {"data": {KEY: ",".join(sorted(workloads))}}
        try:
            self._core.patch_namespaced_config_map(self.name, self.namespace, body, _request_timeout=self._timeout)
        except ApiException as exc:
            return f"ConfigMap {self.namespace}/{self.name}: {exc.status} {exc.reason}"
        except (HTTPError, OSError) as exc:
            return f"ConfigMap {self.namespace}/{self.name}: {exc}"
        return None


class AnalysedTraceSource:
    """A `TraceSource` over Tempo that measures only time in which every trace of the target was kept."""

    def __init__(
        self,
        tempo: TempoSource,
        publisher: SamplingPublisher,
        settle_seconds: float = 30.0,
        retain_seconds: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tempo = tempo
        self.publisher = publisher
        self.settle_seconds = settle_seconds
        self.retain_seconds = retain_seconds
        self._clock = clock
        self._full_since: dict[str, float] = {}
        """Workload -> when its 100% sampling is in force (publication + settle)."""
        self._last_seen: dict[str, float] = {}
        self._published: set[str] | None = None

    def full_sampling_since(self, workload: str) -> float | None:
        """Unix time from which every trace of `workload` is kept, or None when it is not."""
        return self._full_since.get(workload)

    def _update(self, targets: Sequence[Target]) -> None:
        now = self._clock()
        for target in targets:
            for name in workload_names(target):
                self._last_seen[name] = now
        for name in [n for n, seen in self._last_seen.items() if now - seen > self.retain_seconds]:
            del self._last_seen[name]
            self._full_since.pop(name, None)
        wanted = set(self._last_seen)
        if wanted == self._published:
            return
        problem = self.publisher.publish(wanted)
        if problem is not None:
            log.warning("could not publish the analysed set for full trace sampling: %s", problem)
            self._published = None  # retried next tick
            return
        self._published = wanted
        for name in wanted - set(self._full_since):
            self._full_since[name] = now + self.settle_seconds

    def _covered(self, target: Target, end: datetime) -> Target | None:
        """The target with its window cut to the time all its traces were kept; None if no such time."""
        starts = [self._full_since.get(name) for name in workload_names(target)]
        if any(s is None for s in starts):
            return None
        in_force = max(s for s in starts if s is not None)
        start, stop = self.tempo.window(end, target.window)
        if in_force <= start:
            return target
        if stop - in_force < 1:
            return None
        return target.model_copy(update={"window": float(stop - in_force)})

    def fetch_trace_errors(self, targets: Sequence[Target], end: datetime) -> BatchResult[TraceSample]:
        self._update(targets)
        covered = [c for c in (self._covered(t, end) for t in targets) if c is not None]
        if not covered:
            return BatchResult()
        return self.tempo.fetch_trace_errors(covered, end)

    def example_failing_traces(
        self, target: Target, end: datetime, limit: int = 5
    ) -> tuple[list[str], BackendError | None]:
        return self.tempo.example_failing_traces(target, end, limit)
