"""Simulated request traffic for the ReplicaSets of a `KubeSim`: OBI-named RED metrics, optionally spans.

    with TrafficGenerator(sim, {"v2": Profile(error_ratio=0.2)}, default=Profile()) as traffic:
        with PrometheusServer(scrape_configs=[traffic.scrape_config()], scrape_interval="1s") as prom:
            ...

Every ReplicaSet of the simulated cluster with ready replicas serves traffic. Its profile is looked up by
its containers' images (first container first; the full image string, then its tag, e.g. `"v2"`), else
`default`. Time is wall-clock: on each tick (and on each scrape of `/metrics`) every ReplicaSet receives
`rps_per_replica x status.readyReplicas x elapsed seconds` requests (fractions carried over), of which a
binomially drawn share fails with HTTP 500, and latencies are drawn from the profile's discrete
distribution; the RNG is seeded, so a given sequence of ticks is reproducible.

`GET /metrics` serves `http_server_request_duration_seconds` histograms (OBI's Prometheus naming and its
default buckets) per ReplicaSet, route, method and status code, with the `service_name` and `k8s_*`
labels OBI adds. A ReplicaSet's series appear at zero, for both status codes, when it is first seen with
ready replicas, and grow from the next tick on (so `increase()` loses few early requests); a ReplicaSet
scaled to zero keeps its series, frozen, until it is deleted from the cluster, then its series vanish.

With `tempo`, a sampled share of the requests (at most `max_spans_per_second` per ReplicaSet, chosen
without bias among the requests actually counted) becomes root SERVER spans in the `TempoServer`.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Final, NamedTuple, Self

import numpy as np
from numpy.typing import NDArray
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, field_validator

from canary_testkit.httpserver import Answer, LocalHTTPServer, QuietHandler
from canary_testkit.kube import KubeSim
from canary_testkit.loki import LogLine, LokiServer
from canary_testkit.tempo import Span, SpanKind, SpanStatus, TempoServer

METRIC: Final = "http_server_request_duration_seconds"
OBI_BUCKETS: Final = (0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""OBI's (OpenTelemetry's default) request-duration bucket bounds in seconds; `+Inf` follows."""
LABELS: Final = (
    "service_name",
    "http_request_method",
    "http_route",
    "http_response_status_code",
    "k8s_namespace_name",
    "k8s_deployment_name",
    "k8s_replicaset_name",
)
STATUS_CODES: Final = (200, 500)
DEFAULT_ROUTES: Final = (("GET", "/api/items"), ("POST", "/api/orders"))
"""(method, route) pairs; each ReplicaSet's requests are split evenly among them."""
JOB_NAME: Final = "canary-traffic"
_JOIN_SECONDS: Final = 10.0
_NS: Final = 1_000_000_000


class TrafficError(RuntimeError):
    """A ReplicaSet in the simulated cluster cannot be turned into traffic (names the object and field)."""


class Profile(BaseModel):
    """How one version behaves: request rate, error ratio and latency distribution."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rps_per_replica: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    """Requests per second per ready replica; None: the generator's `rps_per_replica`."""
    error_ratio: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    """Probability that a request fails with HTTP 500."""
    latency: tuple[tuple[float, float], ...] = ((0.02, 0.9), (0.08, 0.1))
    """(seconds, share) pairs: a request takes `seconds` with probability share / sum of shares."""
    failing_routes: tuple[str, ...] = ()
    """Routes the failures land on (e.g. `("/api/orders",)`); empty: spread over every route."""
    failing_call: tuple[str, str] | None = None
    """(span name, status message) of the downstream call that fails below each failing request, e.g.
    `("INSERT orders", "deadlock detected")`: a failing CLIENT child span in its trace."""

    @field_validator("latency")
    @classmethod
    def _valid_latency(cls, value: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if not value:
            raise ValueError("latency needs at least one (seconds, share) pair")
        for index, (seconds, share) in enumerate(value):
            if not math.isfinite(seconds) or seconds < 0:
                raise ValueError(f"latency[{index}]: seconds must be a finite number >= 0, not {seconds!r}")
            if not math.isfinite(share) or share < 0:
                raise ValueError(f"latency[{index}]: share must be a finite number >= 0, not {share!r}")
        if sum(share for _, share in value) <= 0:
            raise ValueError("latency shares must not all be 0")
        return value


class WorkloadKey(NamedTuple):
    namespace: str
    deployment: str
    replicaset: str


@dataclass(frozen=True)
class Totals:
    """Requests and failed (HTTP 500) requests served so far."""

    requests: int
    errors: int

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Workload:
    """What the generator needs to know about one ReplicaSet of the simulated cluster."""

    uid: str
    key: WorkloadKey
    service: str
    ready: int
    images: tuple[str, ...]


def image_tag(image: str) -> str:
    """The tag of an image reference (`registry:5000/team/web:v2@sha256:...` -> `v2`; none -> `latest`)."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def workload_of(rs: Mapping[str, Any]) -> Workload:
    """Read a ReplicaSet (as `KubeSim.list` returns it); TrafficError names the object and bad field."""
    meta = rs.get("metadata")
    if not isinstance(meta, Mapping):
        raise TrafficError("a ReplicaSet without metadata")
    namespace, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
    where = f"ReplicaSet {namespace}/{name}"
    for field_name, value in (("namespace", namespace), ("name", name), ("uid", uid)):
        if not isinstance(value, str) or not value:
            raise TrafficError(f"{where}: metadata.{field_name} is {value!r}, not a non-empty string")
    assert isinstance(namespace, str) and isinstance(name, str) and isinstance(uid, str)
    deployment = ""
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("kind") == "Deployment" and ref.get("controller"):
            deployment = str(ref.get("name") or "")
    ready = (rs.get("status") or {}).get("readyReplicas", 0)
    if not isinstance(ready, int) or isinstance(ready, bool) or ready < 0:
        raise TrafficError(f"{where}: status.readyReplicas is {ready!r}, not an integer >= 0")
    template = (rs.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    app = labels.get("app")
    service = app if isinstance(app, str) and app else deployment or name
    images = []
    for index, container in enumerate((template.get("spec") or {}).get("containers") or []):
        image = container.get("image") if isinstance(container, Mapping) else None
        if not isinstance(image, str) or not image:
            raise TrafficError(f"{where}: spec.template.spec.containers[{index}].image is {image!r}, not an image")
        images.append(image)
    return Workload(uid, WorkloadKey(namespace, deployment, name), service, ready, tuple(images))


def choose_profile(images: Sequence[str], profiles: Mapping[str, Profile], default: Profile) -> Profile:
    """The profile of the first image that has one (by full image string, then by tag), else `default`."""
    for image in images:
        for key in (image, image_tag(image)):
            if key in profiles:
                return profiles[key]
    return default


class _Distribution:
    """A profile's latency points with their bucket (one-hot, last column `+Inf`) and probability."""

    def failing_cells(self, routes: Sequence[tuple[str, str]], failing: Sequence[str]) -> NDArray[np.float64]:
        """The cells' probabilities for failing requests: only the `failing` routes (all when empty)."""
        if not failing:
            return self.cells
        keep = np.repeat([path in failing for _, path in routes], len(self.cells) // len(routes))
        if not keep.any():
            return self.cells
        cells = np.where(keep, self.cells, 0.0)
        return cells / cells.sum()

    def __init__(self, profile: Profile, routes: int) -> None:
        self.seconds = np.array([s for s, _ in profile.latency], dtype=float)
        shares = np.array([w for _, w in profile.latency], dtype=float)
        self.onehot = np.zeros((len(self.seconds), len(OBI_BUCKETS) + 1), dtype=np.int64)
        for point, seconds in enumerate(self.seconds):
            self.onehot[point, sum(1 for bound in OBI_BUCKETS if seconds > bound)] = 1
        # one cell per (route, latency point); routes share the traffic evenly
        self.cells = np.repeat((shares / shares.sum())[np.newaxis, :] / routes, routes, axis=0).ravel()


class _Series:
    """The counters of one ReplicaSet: per route and status code, the count, sum and bucket counts."""

    def __init__(self, workload: Workload, routes: int) -> None:
        self.workload = workload
        self.counts = np.zeros((routes, len(STATUS_CODES)), dtype=np.int64)
        self.sums = np.zeros((routes, len(STATUS_CODES)), dtype=float)
        self.buckets = np.zeros((routes, len(STATUS_CODES), len(OBI_BUCKETS) + 1), dtype=np.int64)
        self.carry = 0.0
        self.span_budget = 0.0


class _Metrics(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


class TrafficGenerator(LocalHTTPServer):
    """Serves `/metrics` for the ReplicaSets of `sim` on 127.0.0.1 and feeds `tempo`; a context manager."""

    name = "traffic-generator"

    def __init__(
        self,
        sim: KubeSim,
        profiles: Mapping[str, Profile],
        default: Profile,
        *,
        tempo: TempoServer | None = None,
        loki: LokiServer | None = None,
        seed: int = 0,
        rps_per_replica: float = 10.0,
        routes: Sequence[tuple[str, str]] = DEFAULT_ROUTES,
        max_spans_per_second: float = 50.0,
        tick_seconds: float = 0.25,
        port: int = 0,
    ) -> None:
        """`profiles`: by full image string or tag; `rps_per_replica`: for profiles that leave it unset;
        `max_spans_per_second`: per ReplicaSet; `tick_seconds`: how often traffic (and spans) advance
        between scrapes."""
        if not math.isfinite(rps_per_replica) or rps_per_replica < 0:
            raise ValueError(f"rps_per_replica must be a finite number >= 0, not {rps_per_replica!r}")
        if not routes or any(not method or not route for method, route in routes):
            raise ValueError(f"routes must be non-empty (method, route) pairs, not {list(routes)!r}")
        if not math.isfinite(max_spans_per_second) or max_spans_per_second < 0:
            raise ValueError(f"max_spans_per_second must be a finite number >= 0, not {max_spans_per_second!r}")
        if not math.isfinite(tick_seconds) or tick_seconds <= 0:
            raise ValueError(f"tick_seconds must be a finite number > 0, not {tick_seconds!r}")
        for key in profiles:
            if not isinstance(key, str) or not key:
                raise ValueError(f"profile keys are images or tags (non-empty strings), not {key!r}")
        super().__init__(port=port)
        self.sim = sim
        self.tempo = tempo
        self.loki = loki
        self.rps_per_replica = rps_per_replica
        self.routes = tuple(routes)
        self.max_spans_per_second = max_spans_per_second
        self.tick_seconds = tick_seconds
        self._profiles = dict(profiles)
        self._default = default
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}
        self._totals: dict[WorkloadKey, Totals] = {}
        self._last = time.monotonic()
        self._ticker: threading.Thread | None = None
        self._crash: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def start(self) -> Self:
        super().start()
        with self._lock:
            self._last = time.monotonic()
        self._ticker = threading.Thread(target=self._tick, name=f"{self.name}-ticker")
        self._ticker.start()
        return self

    def _tick(self) -> None:
        try:
            while not self.stopping.wait(self.tick_seconds):
                # a TrafficError is answered to every scrape (HTTP 500) and raised by totals()
                with contextlib.suppress(TrafficError):
                    self.advance()
        except BaseException as err:
            self._crash = err
            raise

    def stop(self) -> None:
        """Stop serving and join every thread. Safe to call twice."""
        super().stop()  # sets `stopping`: the ticker ends too
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.join(_JOIN_SECONDS)
            if ticker.is_alive():
                raise RuntimeError(f"the traffic generator's ticker did not stop: {ticker.name}")
        if self._crash is not None:
            raise RuntimeError(f"the traffic generator's ticker crashed: {self._crash!r}") from self._crash

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT/metrics`."""
        return self.base_url + "/metrics"

    def scrape_config(self, job_name: str = JOB_NAME) -> dict[str, Any]:
        """A Prometheus `scrape_configs` entry for this generator (1 s interval)."""
        return {
            "job_name": job_name,
            "metrics_path": "/metrics",
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}],
        }

    # -- profiles -------------------------------------------------------------------------------------

    def set_profile(self, key: str, profile: Profile) -> None:
        """Use `profile` for the image or tag `key` from now on (traffic until now keeps the old one)."""
        if not key:
            raise ValueError("a profile key is an image or tag, not an empty string")
        self.advance()
        with self._lock:
            self._profiles[key] = profile

    # -- traffic --------------------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring every counter up to now (the ticker and every scrape call this).

        Raises TrafficError, and changes nothing, while a ReplicaSet of the cluster is malformed."""
        spans: list[Span] = []
        with self._lock:  # listing under the lock: a concurrent advance never acts on an older listing
            workloads = [workload_of(rs) for rs in self.sim.list("apps/v1", "replicasets")]
            now = time.monotonic()
            elapsed, self._last = max(0.0, now - self._last), now
            wall_ns = time.time_ns()
            present = {w.uid for w in workloads}
            for uid in [uid for uid in self._series if uid not in present]:
                del self._series[uid]
            for workload in workloads:
                series = self._series.get(workload.uid)
                if series is None:
                    if workload.ready > 0:  # its series start at zero; traffic from the next advance on
                        self._series[workload.uid] = _Series(workload, len(self.routes))
                    continue
                series.workload = workload
                profile = choose_profile(workload.images, self._profiles, self._default)
                spans.extend(self._serve(series, profile, elapsed, wall_ns))
        if spans and self.tempo is not None:
            self.tempo.add_spans(spans)
        if spans and self.loki is not None:
            self.loki.add_lines(log_lines(spans))

    def _serve(self, series: _Series, profile: Profile, elapsed: float, wall_ns: int) -> list[Span]:
        """Add `elapsed` seconds of traffic to one ReplicaSet; the sampled requests as spans."""
        workload = series.workload
        rate = self.rps_per_replica if profile.rps_per_replica is None else profile.rps_per_replica
        expected = rate * workload.ready * elapsed + series.carry
        requests = math.floor(expected)
        series.carry = expected - requests
        if requests == 0:
            return []
        distribution = _Distribution(profile, len(self.routes))
        errors = int(self._rng.binomial(requests, profile.error_ratio))
        outcomes = [
            self._rng.multinomial(requests - errors, distribution.cells),
            self._rng.multinomial(errors, distribution.failing_cells(self.routes, profile.failing_routes)),
        ]
        cells = np.stack(outcomes).reshape(len(STATUS_CODES), len(self.routes), -1)  # status, route, latency
        for status in range(len(STATUS_CODES)):
            per_point = cells[status]
            series.counts[:, status] += per_point.sum(axis=1)
            series.sums[:, status] += per_point @ distribution.seconds
            series.buckets[:, status, :] += per_point @ distribution.onehot
        key = workload.key
        before = self._totals.get(key, Totals(0, 0))
        self._totals[key] = Totals(before.requests + requests, before.errors + errors)
        if self.tempo is None:
            return []
        budget = series.span_budget + self.max_spans_per_second * elapsed
        series.span_budget = min(self.max_spans_per_second, budget)
        sampled = min(requests, math.floor(series.span_budget))
        if sampled == 0:
            return []
        series.span_budget -= sampled
        picked = self._rng.multivariate_hypergeometric(cells.ravel(), sampled).reshape(cells.shape)
        return list(self._spans(workload, picked, distribution.seconds, elapsed, wall_ns, profile.failing_call))

    def _spans(
        self,
        workload: Workload,
        picked: NDArray[np.int64],
        seconds: NDArray[np.float64],
        elapsed: float,
        wall_ns: int,
        failing_call: tuple[str, str] | None = None,
    ) -> Iterator[Span]:
        version = image_tag(workload.images[0]) if workload.images else "latest"
        for status, route, point in zip(*np.nonzero(picked), strict=True):
            method, path = self.routes[route]
            code = STATUS_CODES[status]
            duration_ns = round(float(seconds[point]) * _NS)
            for _ in range(int(picked[status, route, point])):
                end_ns = wall_ns - int(self._rng.uniform(0.0, elapsed) * _NS)
                trace_id, span_id = self._rng.bytes(16).hex(), self._rng.bytes(8).hex()
                if code >= 500 and failing_call is not None:
                    name, message = failing_call
                    yield Span(
                        trace_id=trace_id,
                        span_id=self._rng.bytes(8).hex(),
                        parent_span_id=span_id,
                        name=name,
                        kind=SpanKind.CLIENT,
                        start_ns=max(0, end_ns - duration_ns) + duration_ns // 4,
                        end_ns=end_ns - duration_ns // 4,
                        service=workload.service,
                        namespace=workload.key.namespace,
                        deployment=workload.key.deployment or None,
                        replicaset=workload.key.replicaset,
                        status=SpanStatus.ERROR,
                        status_message=message,
                        resource_attributes={"service.version": version},
                    )
                yield Span(
                    trace_id=trace_id,
                    span_id=span_id,
                    start_ns=max(0, end_ns - duration_ns),
                    end_ns=end_ns,
                    service=workload.service,
                    namespace=workload.key.namespace,
                    deployment=workload.key.deployment or None,
                    replicaset=workload.key.replicaset,
                    status=SpanStatus.ERROR if code >= 500 else SpanStatus.OK,
                    status_message="Internal Server Error" if code >= 500 else "",
                    http_method=method,
                    http_route=path,
                    http_status=code,
                    resource_attributes={"service.version": version},
                )

    # -- reading --------------------------------------------------------------------------------------

    def totals(self) -> dict[WorkloadKey, Totals]:
        """Requests and errors so far per (namespace, deployment, replicaset), deleted ReplicaSets included
        (a ReplicaSet without a Deployment has deployment ""). Raises TrafficError like `advance()`."""
        self.advance()
        with self._lock:
            return dict(self._totals)

    def families(self) -> list[Metric]:
        """The current histograms (after bringing them up to now)."""
        self.advance()
        family = HistogramMetricFamily(
            METRIC, "Duration of HTTP service calls from the server side, in seconds.", labels=LABELS
        )
        bounds = [_le(bound) for bound in OBI_BUCKETS] + ["+Inf"]
        with self._lock:
            for series in sorted(self._series.values(), key=lambda s: s.workload.key):
                workload = series.workload
                for route, (method, path) in enumerate(self.routes):
                    for status, code in enumerate(STATUS_CODES):
                        cumulative = np.cumsum(series.buckets[route, status])
                        family.add_metric(
                            [
                                workload.service,
                                method,
                                path,
                                str(code),
                                workload.key.namespace,
                                workload.key.deployment,
                                workload.key.replicaset,
                            ],
                            list(zip(bounds, (float(c) for c in cumulative), strict=True)),
                            float(series.sums[route, status]),
                        )
        return [family]

    def exposition(self) -> bytes:
        """The `/metrics` body (Prometheus text format 0.0.4)."""
        return generate_latest(_Metrics(self.families()))


def _le(bound: float) -> str:
    return repr(float(bound))


def _handler_for(generator: TrafficGenerator) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: stop() never waits on an idle keep-alive
        timeout = 5.0

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send(Answer.text("not found: only /metrics is served\n", 404))
                return
            try:
                self.send(Answer(200, generator.exposition(), CONTENT_TYPE_PLAIN_0_0_4))
            except TrafficError as err:
                self.send(Answer.text(f"{err}\n", 500))

    return Handler


def log_lines(spans: Iterable[Span]) -> list[LogLine]:
    """One logfmt line per server span, as the recorded shop logs them (../loki/README.md): the trace id in
    the line and in structured metadata; failing requests at level error with the failing call's message."""
    causes = {s.trace_id: s.status_message for s in spans if s.kind is SpanKind.CLIENT and s.status_message}
    lines = []
    for span in spans:
        if span.kind is not SpanKind.SERVER or span.replicaset is None or span.namespace is None:
            continue
        failed = span.status is SpanStatus.ERROR
        error = causes.get(span.trace_id, span.status_message)
        text = (
            f'level={"error" if failed else "info"} msg="{"request failed" if failed else "request completed"}" '
            f"method={span.http_method} route={span.http_route} status={span.http_status} "
            f"duration_ms={(span.end_ns - span.start_ns) / 1e6:.1f}"
            + (f' error="{error}"' if failed else "")
            + f" trace_id={span.trace_id} span_id={span.span_id}"
        )
        pod = f"{span.replicaset}-{int(span.trace_id[:4], 16) % 2:05d}"
        lines.append(
            LogLine(
                labels={"namespace": span.namespace, "app": span.service, "pod": pod},
                ts_ns=span.end_ns,
                line=text,
                structured_metadata={"trace_id": span.trace_id, "span_id": span.span_id},
            )
        )
    return lines
