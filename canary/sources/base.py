"""The interfaces every source implements.

A source never raises into the judge: a batch call returns a BatchResult whose `error` says which
backend failed, what query and why; per-target values that the backend did not have are None.
One call serves every target due in a tick, so the number of backend queries does not grow with
the number of canaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from canary.samples import BackendError, Pair, QueryRecord, RedSample, Target, TraceSample

V = TypeVar("V")


class BatchResult(BaseModel, Generic[V]):
    """Per-target results of one batched call, keyed by `Target.key`."""

    model_config = ConfigDict(frozen=True)

    values: dict[str, Pair[V]] = {}
    error: BackendError | None = None
    """Set when the backend failed: then `values` is empty and every target is in error."""
    target_errors: dict[str, BackendError] = {}
    """Errors that spoil only some targets (e.g. one window's queries failed), keyed by `Target.key`."""
    queries: tuple[QueryRecord, ...] = ()


class MetricsSource(Protocol):
    """RED metrics per canary and baseline (Mimir/Prometheus)."""

    def fetch_red(self, targets: Sequence[Target], end: datetime) -> BatchResult[RedSample]: ...


class TraceSource(Protocol):
    """Trace error rates per canary and baseline, and example failing traces (Tempo)."""

    def fetch_trace_errors(self, targets: Sequence[Target], end: datetime) -> BatchResult[TraceSample]: ...

    def example_failing_traces(
        self, target: Target, end: datetime, limit: int = 5
    ) -> tuple[list[str], BackendError | None]: ...
