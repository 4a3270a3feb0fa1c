"""What the sources measure and the judge reads: targets, samples and backend errors.

These models are the contract between `canary.sources` (I/O) and `canary.judge` (pure logic).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Workload(_Data):
    """A set of pods told apart in metrics by `k8s_deployment_name` and optionally `k8s_replicaset_name`."""

    namespace: str
    deployment: str
    replicaset: str | None = None
    """Guard mode: the ReplicaSet of one revision. Canary mode: None (the whole Deployment)."""

    def __str__(self) -> str:
        rs = f" (replicaset {self.replicaset})" if self.replicaset else ""
        return f"{self.namespace}/{self.deployment}{rs}"


class Target(_Data):
    """One canary to measure: its workload, its baseline workloads, the service and the window."""

    key: str
    """Unique id of the analysis, usually `namespace/deployment`."""
    service: str
    canary: Workload
    baseline: tuple[Workload, ...]
    """Guard mode: the older ReplicaSets of the same Deployment. Canary mode: the baseline Deployment."""
    window: float = Field(gt=0)
    """Seconds of data each check looks at."""


class LatencyHistogram(_Data):
    """Cumulative request counts per upper bound (seconds), as in a Prometheus histogram."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")
    """The +Inf bound is written as "Infinity" in JSON (stored evidence reads back the same)."""

    buckets: tuple[tuple[float, float], ...]
    """(le, cumulative count) pairs sorted by le; the last le is +Inf."""

    @property
    def total(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def quantile(self, q: float) -> float | None:
        """Linear interpolation inside the bucket, as PromQL's `histogram_quantile` does."""
        total = self.total
        if total <= 0 or not self.buckets:
            return None
        rank = q * total
        prev_le, prev_count = 0.0, 0.0
        for le, count in self.buckets:
            if count >= rank:
                if math.isinf(le):
                    return prev_le
                if count == prev_count:
                    return le
                return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
            prev_le, prev_count = le, count
        return prev_le


class RedSample(_Data):
    """RED metrics of one workload over the window (from Mimir)."""

    requests: float = Field(ge=0)
    errors: float = Field(ge=0)
    latency: LatencyHistogram | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def p99(self) -> float | None:
        return self.latency.quantile(0.99) if self.latency else None


class TraceSample(_Data):
    """Server spans of one workload over the window (from Tempo)."""

    spans: float = Field(ge=0)
    error_spans: float = Field(ge=0)

    @property
    def error_rate(self) -> float | None:
        return self.error_spans / self.spans if self.spans > 0 else None


class Backend(StrEnum):
    MIMIR = "mimir"
    TEMPO = "tempo"
    LOKI = "loki"


class BackendErrorKind(StrEnum):
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    HTTP = "http"
    LIMIT = "limit"
    MALFORMED = "malformed"


class BackendError(_Data):
    """A backend that could not answer: which one, what was asked and why."""

    backend: Backend
    query: str
    kind: BackendErrorKind
    reason: str

    def __str__(self) -> str:
        return f"{self.backend} {self.kind} error: {self.reason} (query: {self.query})"


class QueryRecord(_Data):
    """One backend query, for the evidence and the logs."""

    backend: Backend
    query: str
    seconds: float
    series: int = 0
    error: BackendError | None = None


T = TypeVar("T")


class Pair(_Data, Generic[T]):
    """A value for the canary and for its baseline; None means the backend had no data."""

    canary: T | None = None
    baseline: T | None = None


class Measurement(_Data):
    """Everything measured for one target in one check: the judge's whole input besides the SLO."""

    target: Target
    red: Pair[RedSample] | None = None
    traces: Pair[TraceSample] | None = None
    example_traces: tuple[str, ...] = ()
    """Up to 5 trace ids of failing canary requests, for the evidence."""
    errors: tuple[BackendError, ...] = ()
    queries: tuple[QueryRecord, ...] = ()
