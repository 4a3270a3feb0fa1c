"""OBI-shaped metrics as OpenMetrics text, to backfill a real Prometheus (`canary_testkit.prometheus`).

    rng = DataRange.ending_now()                       # 30 min of data ending a minute ago
    text = openmetrics([Traffic("shop", "checkout", "checkout-abc", "checkout", rps=5)], rng)
    with PrometheusServer(openmetrics=text) as prom:   # query with end=rng.end_time

Each `Traffic` is one ReplicaSet serving requests at a constant rate with a constant error ratio and a
latency profile; counters grow linearly (as floats), so `increase(...[w])` over a window inside the
data is exactly `rps * w` requests and `rps * w * error_ratio` errors. Namings: `obi` (Prometheus,
`http_server_request_duration_seconds_*`), `otlp` (the same without `_seconds`, as Mimir's OTLP
ingestion writes them) and `spanmetrics` (Tempo's metrics-generator).

`standard_scenarios()` are the canary-vs-baseline situations the tests (and `canary analyze` tests)
share; `Scenario.target()` gives the `canary.samples.Target` that measures one. The session fixtures
`obi_prometheus` / `otlp_prometheus` in tests/conftest.py serve them (`from tests.promdata import ...`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from canary.samples import Target, Workload
from canary_testkit.prometheus import PrometheusServer

STEP = 15.0
"""Seconds between samples (a scrape interval)."""
STANDARD_WINDOW = 300.0
"""The window the standard scenarios are designed for (e.g. `lowtraffic` has 3 requests in it)."""
OBI_BUCKETS = (0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""OBI's (OpenTelemetry's default) request-duration buckets, seconds."""
SPANMETRICS_BUCKETS = (0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.02, 2.05, 4.1)
"""Tempo metrics-generator's default latency buckets, seconds."""

Naming = Literal["obi", "otlp", "spanmetrics"]


@dataclass(frozen=True)
class DataRange:
    """The time range the generated series cover, unix seconds, both multiples of STEP."""

    start: float
    end: float

    @staticmethod
    def ending_now(minutes: float = 30, lag: float = 60) -> DataRange:
        """`minutes` of data ending `lag` seconds before now (backfilled blocks must be in the past)."""
        end = math.floor((time.time() - lag) / STEP) * STEP
        return DataRange(start=end - minutes * 60, end=end)

    @property
    def end_time(self) -> datetime:
        """The end as an aware datetime: the `end` to query with."""
        return datetime.fromtimestamp(self.end, UTC)


@dataclass(frozen=True)
class Traffic:
    """Requests served by one ReplicaSet."""

    namespace: str
    deployment: str
    replicaset: str
    service: str
    rps: float = 10.0
    error_ratio: float = 0.0
    latency: tuple[tuple[float, float], ...] = ((0.05, 1.0),)
    """(seconds, share of requests) pairs; the shares sum to 1."""
    protocol: Literal["http", "grpc"] = "http"
    error_code: str = ""
    """Status of the failing requests; default 500 (http) or 14 UNAVAILABLE (grpc)."""
    age: float | None = None
    """Seconds before the data's end at which the series begin; None: the whole range."""
    route: tuple[str, str] = ("GET", "/")
    """(method, route) of the HTTP requests (`http_request_method`, `http_route`)."""

    def expected(self, window: float) -> tuple[float, float]:
        """(requests, errors) that `increase()` reports over a window ending at the data's end."""
        seconds = window if self.age is None else min(window, self.age)
        return self.rps * seconds, self.rps * seconds * self.error_ratio


@dataclass(frozen=True)
class Scenario:
    """A canary and its baseline; the namespace is the scenario's name unless the traffic says otherwise."""

    name: str
    canary: Traffic
    baseline: tuple[Traffic, ...]
    mode: Literal["guard", "canary"] = "guard"
    """guard: ReplicaSets of one Deployment; canary: separate canary and baseline Deployments."""
    notes: str = field(default="", compare=False)

    @property
    def traffic(self) -> tuple[Traffic, ...]:
        return (self.canary, *self.baseline)

    def target(self, window: float = STANDARD_WINDOW, key: str | None = None) -> Target:
        c = self.canary
        if self.mode == "canary":
            canary = Workload(namespace=c.namespace, deployment=c.deployment)
            baseline = tuple(
                Workload(namespace=b.namespace, deployment=b.deployment)
                for b in {b.deployment: b for b in self.baseline}.values()
            )
        else:
            canary = Workload(namespace=c.namespace, deployment=c.deployment, replicaset=c.replicaset)
            baseline = tuple(
                Workload(namespace=b.namespace, deployment=b.deployment, replicaset=b.replicaset) for b in self.baseline
            )
        return Target(
            key=key or f"{c.namespace}/{c.deployment}", service=c.service, canary=canary, baseline=baseline,
            window=window,
        )


def _guard(name: str, canary: dict[str, Any], baseline: dict[str, Any], notes: str) -> Scenario:
    base = Traffic(namespace=name, deployment="checkout", replicaset="", service="checkout")
    return Scenario(
        name=name,
        canary=replace(base, replicaset="checkout-7f6d5c4b3", age=1200, **canary),
        baseline=(replace(base, replicaset="checkout-5d8f7c9b4", **baseline),),
        notes=notes,
    )


def standard_scenarios() -> tuple[Scenario, ...]:
    """The shared situations, one namespace each; the canary ReplicaSet appeared 20 min before the end."""
    fast = ((0.02, 0.98), (0.2, 0.02))
    return (
        _guard("errors", {"error_ratio": 0.20}, {"error_ratio": 0.01}, "canary 20% errors vs baseline 1%: fail"),
        _guard("healthy", {"error_ratio": 0.01, "latency": fast}, {"error_ratio": 0.01, "latency": fast},
               "identical canary and baseline: pass"),
        _guard("lowtraffic", {"rps": 3 / STANDARD_WINDOW}, {}, "3 canary requests in the 5m window: inconclusive"),
        _guard("latency", {"latency": ((2.0, 1.0),)}, {"latency": ((0.2, 1.0),)}, "p99 2 s vs 200 ms: fail"),
        _guard("grpc", {"protocol": "grpc", "error_ratio": 0.2}, {"protocol": "grpc"},
               "gRPC canary 20% UNAVAILABLE vs no errors: fail"),
        Scenario(
            name="canarymode",
            mode="canary",
            canary=Traffic("canarymode", "cart-canary", "cart-canary-6b5d4", "cart", rps=2, error_ratio=0.2, age=1200),
            baseline=(Traffic("canarymode", "cart", "cart-9c8b7", "cart", rps=20, error_ratio=0.01),),
            notes="separate Deployments cart-canary (20% errors) vs cart (1%): fail",
        ),
    )


HOSTILE_NAME = 'we"ird\\nämé\n"} or vector(1) #'
"""Quotes, a backslash, non-ASCII, a newline and a PromQL injection attempt: must only match literally."""


def hostile_scenario() -> Scenario:
    """A real workload whose namespace, deployment, ReplicaSets and service all carry HOSTILE_NAME;
    canary 10% errors (300 of 3000 in the standard window) vs baseline none."""
    name = HOSTILE_NAME
    return Scenario(
        name="hostile",
        canary=Traffic(name, name, name + "-new", name, error_ratio=0.1, age=1200),
        baseline=(Traffic(name, name, name + "-old", name),),
        notes="hostile label values",
    )


@dataclass(frozen=True)
class LoadedPrometheus:
    """A running PrometheusServer with the data range and scenarios backfilled into it."""

    server: PrometheusServer
    rng: DataRange
    scenarios: tuple[Scenario, ...]

    @property
    def url(self) -> str:
        """Mimir-style URL including `/prometheus`."""
        return self.server.url

    def scenario(self, name: str) -> Scenario:
        return next(s for s in self.scenarios if s.name == name)


# --- OpenMetrics --------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def _share_below(latency: Iterable[tuple[float, float]], le: float) -> float:
    return sum(share for seconds, share in latency if seconds <= le)


@dataclass(frozen=True)
class _Series:
    """One status-code series of a Traffic: labels and the fraction of its requests it carries."""

    traffic: Traffic
    labels: dict[str, str]
    fraction: float


def _series(traffic: Traffic, naming: Naming) -> list[_Series]:
    t = traffic
    k8s = {"k8s_namespace_name": t.namespace, "k8s_deployment_name": t.deployment, "k8s_replicaset_name": t.replicaset}
    out: list[_Series] = []
    if naming == "spanmetrics":
        base = {"service": t.service, "span_name": "GET /", **k8s}
        out.append(_Series(t, {**base, "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_UNSET"},
                           1 - t.error_ratio))
        if t.error_ratio > 0:
            out.append(_Series(t, {**base, "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_ERROR"},
                               t.error_ratio))
        # Outgoing calls that all fail: server-side queries must not count them.
        out.append(_Series(t, {**base, "span_kind": "SPAN_KIND_CLIENT", "status_code": "STATUS_CODE_ERROR"}, 1.0))
        return out
    if t.protocol == "http":
        method, route = t.route
        base = {"service_name": t.service, "http_request_method": method, "http_route": route, "url_scheme": "http",
                **k8s}
        ok, bad, label = "200", t.error_code or "500", "http_response_status_code"
    else:
        base = {"service_name": t.service, "rpc_method": "Get", "rpc_system": "grpc", **k8s}
        ok, bad, label = "0", t.error_code or "14", "rpc_grpc_status_code"
    out.append(_Series(t, {**base, label: ok}, 1 - t.error_ratio))
    if t.error_ratio > 0:
        out.append(_Series(t, {**base, label: bad}, t.error_ratio))
    return out


def _family(traffic: Traffic, naming: Naming) -> str:
    if naming == "spanmetrics":
        return "traces_spanmetrics_latency"
    suffix = "_seconds" if naming == "obi" else ""
    return ("http_server_request_duration" if traffic.protocol == "http" else "rpc_server_duration") + suffix


def openmetrics(traffic: Sequence[Traffic], rng: DataRange, naming: Naming = "obi", step: float = STEP) -> str:
    """OpenMetrics text (ending with `# EOF`) with every Traffic's series sampled every `step` seconds."""
    families: dict[str, list[_Series]] = {}
    for t in traffic:
        families.setdefault(_family(t, naming), []).extend(_series(t, naming))
    buckets = SPANMETRICS_BUCKETS if naming == "spanmetrics" else OBI_BUCKETS
    lines: list[str] = []
    calls: list[str] = []
    for family, series in families.items():
        lines.append(f"# TYPE {family} histogram")
        for s in series:
            t = s.traffic
            begin = rng.start if t.age is None else max(rng.start, rng.end - t.age)
            mean = sum(seconds * share for seconds, share in t.latency)
            stamp = math.ceil(begin / step) * step
            while stamp <= rng.end:
                count = t.rps * (stamp - begin) * s.fraction
                for le in (*buckets, math.inf):
                    lines.append(
                        f"{family}_bucket{_labels({**s.labels, 'le': _num(le)})} "
                        f"{_num(count * _share_below(t.latency, le))} {stamp:.0f}"
                    )
                lines.append(f"{family}_count{_labels(s.labels)} {_num(count)} {stamp:.0f}")
                lines.append(f"{family}_sum{_labels(s.labels)} {_num(count * mean)} {stamp:.0f}")
                if naming == "spanmetrics":
                    calls.append(f"traces_spanmetrics_calls_total{_labels(s.labels)} {_num(count)} {stamp:.0f}")
                stamp += step
    if calls:
        lines.append("# TYPE traces_spanmetrics_calls counter")
        lines.extend(calls)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def scenarios_openmetrics(scenarios: Iterable[Scenario], rng: DataRange, naming: Naming = "obi") -> str:
    return openmetrics([t for s in scenarios for t in s.traffic], rng, naming)
