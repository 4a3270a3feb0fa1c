"""A fault-injecting Mimir/Tempo test server on 127.0.0.1.

It answers Prometheus' `/api/v1/query` (GET and POST form), Tempo's `/api/metrics/query` and
`/api/search` in the real servers' shapes, either healthily (from the counts it is given) or with one
fault: slow drip, endless chunked body, huge body, NaN/Inf/negative/garbage/overflowing values,
partial answers, deeply nested JSON, 429 with Retry-After, errors exceeding spans, `{}`. With
`upstream`, healthy Prometheus answers are proxied from a real server instead.

The benchmarks (`benchmarks/hardening.py`) and the tests drive the production sources against it.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from canary.analysis import AnalysisRequest, Analyzer, Outcome
from canary.config.slo import ServiceSLOSpec
from canary.samples import Target
from canary.samples import Workload as TargetWorkload
from canary.sources.mimir import MimirSettings, MimirSource
from canary.sources.tempo import TempoSettings, TempoSource
from canary_testkit.httpserver import Answer, LocalHTTPServer, QuietHandler


class Fault(StrEnum):
    NONE = "none"
    SLOW = "slow"
    """Status and headers at once, then one byte every `drip` seconds."""
    ENDLESS = "endless"
    """A chunked body that never ends."""
    HUGE = "huge"
    """A 200 whose body is `huge_bytes` long (valid JSON padding)."""
    NAN = "nan"
    INF = "inf"
    NEGATIVE = "negative"
    GARBAGE = "garbage"
    """Values that are not numbers."""
    OVERFLOW = "overflow"
    """Values near the float maximum, so that sums overflow."""
    PARTIAL = "partial"
    """Prometheus: a 200 with `warnings` and the error series missing. Tempo: `status: PARTIAL`."""
    DEEP = "deep"
    """A 200 whose body is 5,000 nested `[`."""
    DEEP_ERROR = "deep-error"
    """A 500 whose body is 5,000 nested `[`."""
    RATE_LIMITED = "rate-limited"
    """429 with `Retry-After` (`retry_after` seconds), `rate_limited_times` times, then healthy."""
    EMPTY_OBJECT = "empty-object"
    """A 200 with `{}`."""
    ERRORS_EXCEED = "errors-exceed"
    """More errors than requests (spans)."""
    NO_SERIES = "no-series"
    """A healthy answer without any series (nothing matched)."""
    DELAY = "delay"
    """A healthy answer after `delay` seconds."""


@dataclass
class Workload:
    namespace: str
    deployment: str
    replicaset: str = ""
    requests: float = 1000.0
    errors: float = 1.0
    fast_share: float = 0.99
    """Share of requests within 0.1 s (the rest take up to 1 s)."""


@dataclass
class FaultConfig:
    fault: Fault = Fault.NONE
    workloads: list[Workload] = field(default_factory=list)
    drip: float = 0.2
    huge_bytes: int = 40 * 1024 * 1024
    retry_after: int = 1
    rate_limited_times: int = 1
    delay: float = 0.0
    upstream: str | None = None
    """Prometheus base URL to proxy healthy `/api/v1/query` answers from."""
    only_matching: str | None = None
    """Apply the fault only to queries containing this text; the others are answered healthily."""
    raw: bytes | None = None
    """Answer every query with this 200 body instead (fuzzing)."""


class FaultServer(LocalHTTPServer):
    """See the module docstring; `configure()` changes the answer at any time (thread-safe)."""

    name = "fault-server"

    def __init__(self, config: FaultConfig | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self.requests: list[tuple[str, str, str]] = []
        """(method, path, query or TraceQL) of every request."""
        self._rate_limited = 0

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self._config = config
            self._rate_limited = 0

    # -- answers ---------------------------------------------------------------------------------

    def _prometheus(self, query: str, config: FaultConfig) -> dict[str, Any]:
        signal = "buckets" if ", le)" in query or ", le," in query else (
            "errors" if "5.." in query or "STATUS_CODE_ERROR" in query else "requests")
        rows: list[dict[str, Any]] = []
        for w in [] if config.fault is Fault.NO_SERIES else config.workloads:
            labels = {"k8s_namespace_name": w.namespace, "k8s_deployment_name": w.deployment}
            if w.replicaset:
                labels["k8s_replicaset_name"] = w.replicaset
            if signal == "requests":
                rows.append({"metric": labels, "value": [0, _number(w.requests, config.fault)]})
            elif signal == "errors":
                if config.fault is Fault.PARTIAL:
                    continue
                errors = w.requests * 3 if config.fault is Fault.ERRORS_EXCEED else w.errors
                rows.append({"metric": labels, "value": [0, _number(errors, config.fault)]})
            else:
                for le, share in (("0.1", w.fast_share), ("1", 1.0), ("+Inf", 1.0)):
                    value = _number(w.requests * share, config.fault)
                    rows.append({"metric": {**labels, "le": le}, "value": [0, value]})
            if config.fault is Fault.OVERFLOW:
                rows.append({"metric": dict(labels), "value": [0, "1e308"]})
        body: dict[str, Any] = {"status": "success", "data": {"resultType": "vector", "result": rows}}
        if config.fault is Fault.PARTIAL:
            body["warnings"] = ["partial response: store-gateway unavailable"]
        if config.fault is Fault.EMPTY_OBJECT:
            return {}
        return body

    def _tempo(self, query: str, config: FaultConfig, seconds: float) -> dict[str, Any]:
        errors_query = "status = error" in query
        series = []
        for w in [] if config.fault is Fault.NO_SERIES else config.workloads:
            labels = [{"key": "resource.k8s.namespace.name", "value": {"stringValue": w.namespace}},
                      {"key": "resource.k8s.deployment.name", "value": {"stringValue": w.deployment}}]
            if w.replicaset:
                labels.append({"key": "resource.k8s.replicaset.name", "value": {"stringValue": w.replicaset}})
            count = w.requests * (3 if config.fault is Fault.ERRORS_EXCEED else 1) if errors_query else w.requests
            if errors_query and config.fault is not Fault.ERRORS_EXCEED:
                count = w.errors
            value: Any = count / max(seconds, 1.0)
            if config.fault is Fault.OVERFLOW:
                value = 1e307
            elif config.fault in (Fault.NAN, Fault.INF, Fault.NEGATIVE, Fault.GARBAGE):
                value = {"nan": "NaN", "inf": "Infinity", "negative": -5.0, "garbage": "lots"}[config.fault.value]
            series.append({"labels": labels, "value": value})
        if config.fault is Fault.EMPTY_OBJECT:
            return {}
        body: dict[str, Any] = {"metrics": {"completedJobs": 1, "totalJobs": 1}}
        if series:  # like Tempo: no `series` key at all when nothing matched
            body["series"] = series
        if config.fault is Fault.PARTIAL:
            body.update(status="PARTIAL", message="query exceeded max series")
        return body

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer(parse_qs(urlsplit(self.path).query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode()) if length else {}
                self._answer({**parse_qs(urlsplit(self.path).query), **form})

            def _answer(self, params: dict[str, list[str]]) -> None:
                path = urlsplit(self.path).path
                query = (params.get("query") or params.get("q") or [""])[0]
                with server._lock:
                    config = server._config
                    if config.only_matching is not None and config.only_matching not in query:
                        config = FaultConfig(workloads=config.workloads, upstream=config.upstream)
                    server.requests.append((self.command, path, query))
                    limited = config.fault is Fault.RATE_LIMITED and server._rate_limited < config.rate_limited_times
                    if limited:
                        server._rate_limited += 1
                try:
                    self._fault(config, limited, path, query, params)
                except OSError:
                    return  # the client gave up, as it should

            def _fault(self, config: FaultConfig, limited: bool, path: str, query: str,
                       params: dict[str, list[str]]) -> None:
                fault = config.fault
                if config.raw is not None:
                    self._send(200, config.raw)
                    return
                if limited:
                    self._send(429, b"too many outstanding requests", (("Retry-After", str(config.retry_after)),))
                    return
                if fault is Fault.DELAY:
                    server.stopping.wait(config.delay)
                if fault in (Fault.DEEP, Fault.DEEP_ERROR):
                    self._send(200 if fault is Fault.DEEP else 500, b"[" * 5000 + b"]" * 5000)
                    return
                if fault is Fault.SLOW:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(10_000))
                    self.end_headers()
                    for _ in range(10_000):
                        if server.stopping.wait(config.drip):
                            return
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    return
                if fault is Fault.ENDLESS:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"[" + b"0," * 32767 + b"0"
                    while not server.stopping.is_set():
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    return
                if path.endswith("/api/v1/query"):
                    body = self._prometheus_body(config, query, params)
                elif path.endswith("/api/metrics/query"):
                    start, end = (float((params.get(k) or ["0"])[0]) for k in ("start", "end"))
                    body = json.dumps(server._tempo(query, config, end - start)).encode()
                elif path.endswith("/api/search"):
                    body = b'{"traces": []}'
                elif path.endswith("/api/v1/label/__name__/values"):
                    body = b'{"status": "success", "data": ["http_server_request_duration_seconds_count"]}'
                else:
                    self._send(404, b"404 page not found")
                    return
                if fault is Fault.HUGE:
                    self._huge(config.huge_bytes, body)
                    return
                self._send(200, body)

            def _prometheus_body(self, config: FaultConfig, query: str, params: dict[str, list[str]]) -> bytes:
                if config.upstream and config.fault in (Fault.NONE, Fault.DELAY):
                    form = {k: v[0] for k, v in params.items()}
                    data = urllib.parse.urlencode(form).encode()
                    try:
                        with urllib.request.urlopen(f"{config.upstream}/api/v1/query", data=data, timeout=10) as r:
                            return bytes(r.read())
                    except urllib.error.HTTPError as e:
                        return bytes(e.read())
                return json.dumps(server._prometheus(query, config)).encode()

            def _huge(self, size: int, body: bytes) -> None:
                padding = size - len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.write(body[:-1] + b',"padding":"')
                block = b"x" * 65536
                left = padding - 14
                while left > 0 and not server.stopping.is_set():
                    self.wfile.write(block[: min(left, len(block))])
                    left -= len(block)
                self.wfile.write(b'"}')

            def _send(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
                self.send(Answer(status, body, "application/json", headers))

        return Handler


def _number(value: float, fault: Fault) -> str:
    if fault is Fault.NAN:
        return "NaN"
    if fault is Fault.INF:
        return "+Inf"
    if fault is Fault.NEGATIVE:
        return "-500"
    if fault is Fault.GARBAGE:
        return "abc"
    return repr(float(value))


# -- the fault matrix: every fault through the production sources and judge ---------------------------

EXPECTED: dict[Fault, str] = {
    Fault.SLOW: "deadline",
    Fault.ENDLESS: "larger than",
    Fault.HUGE: "larger than",
    Fault.NAN: "expected a finite count",
    Fault.INF: "expected a finite count",
    Fault.NEGATIVE: "expected a finite count",
    Fault.GARBAGE: "expected a finite count",
    Fault.OVERFLOW: "expected a finite count",
    Fault.PARTIAL: "incomplete answer",
    Fault.DEEP: "nested too deeply",
    Fault.DEEP_ERROR: "HTTP 500",
    Fault.RATE_LIMITED: "rate limited",
    Fault.EMPTY_OBJECT: "not a Prometheus API response",
    Fault.ERRORS_EXCEED: "error spans but only",
}
"""Each fault and a phrase the `error` verdict's reason must contain."""

TARGET = Target(
    key="shop/checkout", service="checkout", window=120.0,
    canary=TargetWorkload(namespace="shop", deployment="checkout", replicaset="checkout-new"),
    baseline=(TargetWorkload(namespace="shop", deployment="checkout", replicaset="checkout-old"),),
)
HEALTHY = [Workload("shop", "checkout", "checkout-new", 2000, 2), Workload("shop", "checkout", "checkout-old", 6000, 6)]
SLO = ServiceSLOSpec.model_validate({"service": "checkout", "objectives": {"traceErrorRate": 1}})


def check_once(server: FaultServer, fault: Fault, *, timeout: float = 2.0, max_body_bytes: int = 4 * 1024 * 1024,
               rate_limited_times: int = 2, huge_bytes: int = 40 * 1024 * 1024) -> Outcome:
    """One check of TARGET against `server` set to `fault`, through MimirSource, TempoSource and the judge.

    Faults that only Tempo can show (errors exceeding spans) are served healthy by Mimir, and the other
    way round, so each fault is seen by the source it is about."""
    workloads = HEALTHY
    server.configure(FaultConfig(fault=fault, workloads=workloads, rate_limited_times=rate_limited_times,
                                 retry_after=5, huge_bytes=huge_bytes))
    mimir = MimirSource(MimirSettings(url=server.url, timeout_seconds=timeout), max_body_bytes=max_body_bytes)
    tempo = TempoSource(TempoSettings(url=server.url, timeout_seconds=timeout, end_cutoff_seconds=0),
                        max_body_bytes=max_body_bytes)
    try:
        analyzer = Analyzer(mimir, tempo, deadline_seconds=timeout * 3)
        return analyzer.analyze([AnalysisRequest(target=TARGET, slo=SLO, look=1)], datetime.now(UTC))[TARGET.key]
    finally:
        mimir.close()
        tempo.close()
