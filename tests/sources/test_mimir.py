"""The Mimir source against a real Prometheus (route prefix /prometheus) backfilled with OBI-shaped series,
and against local HTTP servers that misbehave the ways Mimir can."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError
from urllib3.exceptions import InsecureRequestWarning

from canary.analysis import AnalysisRequest, Analyzer
from canary.config.slo import Analysis, Metrics, QueryTemplates, ServiceSLOSpec
from canary.judge.model import Phase
from canary.samples import BackendErrorKind, RedSample, Target, Workload
from canary.sources.mimir import MimirSettings, MimirSource
from canary.sources.promql import MAX_QUERY_BYTES, MetricNames, promql_string, regex_literal
from canary_testkit.prometheus import PrometheusNotInstalledError, PrometheusServer, PrometheusStartError
from tests.promdata import (
    HOSTILE_NAME,
    STANDARD_WINDOW,
    DataRange,
    LoadedPrometheus,
    Traffic,
    openmetrics,
    standard_scenarios,
)

pytestmark = pytest.mark.prometheus

GRPC_AND_HTTP = ("errors", "healthy", "lowtraffic", "latency", "grpc", "canarymode")


def source(url: str, **settings: object) -> MimirSource:
    return MimirSource(MimirSettings(url=url, **settings))


def red(prom: LoadedPrometheus, target: Target, src: MimirSource | None = None) -> tuple[RedSample, RedSample]:
    result = (src or source(prom.url)).fetch_red([target], prom.rng.end_time)
    assert result.error is None, result.error
    pair = result.values[target.key]
    assert pair.canary is not None and pair.baseline is not None
    return pair.canary, pair.baseline


def verdict(prom: LoadedPrometheus, scenario: str) -> Phase:
    target = prom.scenario(scenario).target()
    slo = ServiceSLOSpec(service=target.service, analysis=Analysis(window=STANDARD_WINDOW))
    outcomes = Analyzer(source(prom.url)).analyze([AnalysisRequest(target=target, slo=slo)], prom.rng.end_time)
    return outcomes[target.key].verdict.phase


# --- RED values and verdicts on OBI's series ----------------------------------------------------------------


def test_canary_with_20_percent_errors_vs_baseline_1_percent_is_measured_and_fails(
    obi_prometheus: LoadedPrometheus,
) -> None:
    canary, baseline = red(obi_prometheus, obi_prometheus.scenario("errors").target())

    assert (canary.requests, canary.errors) == (pytest.approx(3000), pytest.approx(600))
    assert (baseline.requests, baseline.errors) == (pytest.approx(3000), pytest.approx(30))
    assert verdict(obi_prometheus, "errors") is Phase.FAIL


def test_identical_canary_and_baseline_pass(obi_prometheus: LoadedPrometheus) -> None:
    canary, baseline = red(obi_prometheus, obi_prometheus.scenario("healthy").target())

    assert canary.requests == pytest.approx(baseline.requests)
    assert canary.errors == pytest.approx(baseline.errors)
    assert canary.p99 == pytest.approx(baseline.p99)
    assert verdict(obi_prometheus, "healthy") is Phase.PASS


def test_three_requests_in_the_window_are_inconclusive(obi_prometheus: LoadedPrometheus) -> None:
    canary, _ = red(obi_prometheus, obi_prometheus.scenario("lowtraffic").target())

    assert canary.requests == pytest.approx(3)
    assert verdict(obi_prometheus, "lowtraffic") is Phase.INCONCLUSIVE


def test_p99_of_2s_vs_200ms_is_read_from_the_buckets_and_fails(obi_prometheus: LoadedPrometheus) -> None:
    canary, baseline = red(obi_prometheus, obi_prometheus.scenario("latency").target())

    # histogram_quantile interpolation inside OBI's (1, 2.5] and (0.1, 0.25] buckets
    assert canary.p99 == pytest.approx(1 + 1.5 * 0.99)
    assert baseline.p99 == pytest.approx(0.1 + 0.15 * 0.99)
    assert canary.latency is not None and canary.latency.total == pytest.approx(3000)
    assert verdict(obi_prometheus, "latency") is Phase.FAIL


def test_grpc_error_codes_count_as_errors(obi_prometheus: LoadedPrometheus) -> None:
    canary, baseline = red(obi_prometheus, obi_prometheus.scenario("grpc").target())

    assert (canary.requests, canary.errors) == (pytest.approx(3000), pytest.approx(600))
    assert (baseline.requests, baseline.errors) == (pytest.approx(3000), 0)
    assert canary.latency is not None and canary.latency.total == pytest.approx(3000)


def test_grpc_ok_and_not_found_codes_are_not_errors() -> None:
    rng = DataRange.ending_now()
    traffic = [
        Traffic("ns", "api", "api-1", "api", protocol="grpc", error_ratio=0.5, error_code="5"),  # NOT_FOUND
        Traffic("ns", "api", "api-2", "api", protocol="grpc", error_ratio=0.5, error_code="13"),  # INTERNAL
    ]
    target = Target(
        key="ns/api", service="api", window=300,
        canary=Workload(namespace="ns", deployment="api", replicaset="api-2"),
        baseline=(Workload(namespace="ns", deployment="api", replicaset="api-1"),),
    )
    with PrometheusServer(openmetrics=openmetrics(traffic, rng)) as prom:
        result = source(prom.url).fetch_red([target], rng.end_time)

    pair = result.values["ns/api"]
    assert pair.canary is not None and pair.baseline is not None
    assert pair.canary.errors == pytest.approx(1500)
    assert pair.baseline.errors == 0 and pair.baseline.requests == pytest.approx(3000)


def test_canary_mode_tells_canary_and_baseline_apart_by_deployment(obi_prometheus: LoadedPrometheus) -> None:
    target = obi_prometheus.scenario("canarymode").target()
    assert target.canary.replicaset is None

    canary, baseline = red(obi_prometheus, target)

    assert (canary.requests, canary.errors) == (pytest.approx(600), pytest.approx(120))
    assert (baseline.requests, baseline.errors) == (pytest.approx(6000), pytest.approx(60))


def test_guard_mode_baseline_is_the_sum_of_the_other_replicasets() -> None:
    rng = DataRange.ending_now()
    traffic = [
        Traffic("shop", "web", "web-1", "web", rps=1, error_ratio=0.1),
        Traffic("shop", "web", "web-2", "web", rps=3, error_ratio=0.0),
        Traffic("shop", "web", "web-3", "web", rps=5, error_ratio=0.2),
    ]
    target = Target(
        key="shop/web", service="web", window=60,
        canary=Workload(namespace="shop", deployment="web", replicaset="web-3"),
        baseline=(
            Workload(namespace="shop", deployment="web", replicaset="web-1"),
            Workload(namespace="shop", deployment="web", replicaset="web-2"),
        ),
    )
    with PrometheusServer(openmetrics=openmetrics(traffic, rng)) as prom:
        result = source(prom.url).fetch_red([target], rng.end_time)

    pair = result.values["shop/web"]
    assert pair.canary is not None and pair.baseline is not None
    assert (pair.canary.requests, pair.canary.errors) == (pytest.approx(300), pytest.approx(60))
    assert (pair.baseline.requests, pair.baseline.errors) == (pytest.approx(240), pytest.approx(6))


def test_workloads_without_series_are_no_data_not_zero(obi_prometheus: LoadedPrometheus) -> None:
    target = Target(
        key="errors/ghost", service="checkout", window=STANDARD_WINDOW,
        canary=Workload(namespace="errors", deployment="checkout", replicaset="checkout-doesnotexist"),
        baseline=(Workload(namespace="errors", deployment="checkout", replicaset="checkout-5d8f7c9b4"),),
    )
    result = source(obi_prometheus.url).fetch_red([target], obi_prometheus.rng.end_time)

    assert result.error is None
    assert result.values["errors/ghost"].canary is None
    baseline = result.values["errors/ghost"].baseline
    assert baseline is not None and baseline.requests == pytest.approx(3000)


def test_a_window_before_the_data_is_no_data(obi_prometheus: LoadedPrometheus) -> None:
    before = datetime.fromtimestamp(obi_prometheus.rng.start - 3600, UTC)
    result = source(obi_prometheus.url).fetch_red([obi_prometheus.scenario("errors").target()], before)

    assert result.error is None
    assert result.values["errors/checkout"].canary is None
    assert result.values["errors/checkout"].baseline is None


HTTP_ONLY = QueryTemplates(
    requests="sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name) "
    '(increase(http_server_request_duration_seconds_count{$selector, service_name=~"$service"}[$window]))',
    errors="sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name) "
    '(increase(http_server_request_duration_seconds_count{$selector, service_name=~"$service", '
    'http_response_status_code=~"5.."}[$window]))',
    latency_buckets="sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name, le) "
    '(increase(http_server_request_duration_seconds_bucket{$selector, service_name=~"$service"}[$window]))',
)


# --- batching ----------------------------------------------------------------------------------------------


def test_one_query_per_signal_for_many_targets(obi_prometheus: LoadedPrometheus) -> None:
    real = [obi_prometheus.scenario(name).target() for name in GRPC_AND_HTTP]
    absent = [
        Target(
            key=f"team-{i}/svc-{i}", service=f"svc-{i}", window=STANDARD_WINDOW,
            canary=Workload(namespace=f"team-{i}", deployment=f"svc-{i}", replicaset=f"svc-{i}-b"),
            baseline=(Workload(namespace=f"team-{i}", deployment=f"svc-{i}", replicaset=f"svc-{i}-a"),),
        )
        for i in range(60)
    ]
    src = source(obi_prometheus.url)

    one_window = src.fetch_red([*real, *absent], obi_prometheus.rng.end_time)
    alone = {t.key: src.fetch_red([t], obi_prometheus.rng.end_time).values[t.key] for t in real}

    assert len(one_window.queries) == 3
    assert all(q.error is None and q.seconds > 0 for q in one_window.queries)
    assert one_window.queries[0].series == 6 * 2  # every real canary and baseline, none of the absent
    assert {k: one_window.values[k] for k in alone} == alone
    assert all(one_window.values[t.key].canary is None for t in absent)

    two_windows = src.fetch_red([*real, *(t.model_copy(update={"window": 60.0}) for t in absent)],
                                obi_prometheus.rng.end_time)
    assert len(two_windows.queries) == 6
    assert {k: two_windows.values[k] for k in alone} == alone


def test_too_many_services_fall_back_to_filtering_by_namespace_only(obi_prometheus: LoadedPrometheus) -> None:
    errors = obi_prometheus.scenario("errors").target()
    many = [
        Target(
            key=f"errors/svc-{i}", service=f"a-rather-long-service-name-number-{i:04d}", window=STANDARD_WINDOW,
            canary=Workload(namespace="errors", deployment=f"svc-{i}"),
            baseline=(Workload(namespace="errors", deployment=f"svc-{i}-base"),),
        )
        for i in range(200)
    ]

    result = source(obi_prometheus.url).fetch_red([errors, *many], obi_prometheus.rng.end_time)

    assert result.error is None and len(result.queries) == 3
    assert all("service_name" not in q.query and 'k8s_namespace_name=~"errors"' in q.query for q in result.queries)
    assert all(len(urllib.parse.quote(q.query)) <= MAX_QUERY_BYTES for q in result.queries)
    canary = result.values["errors/checkout"].canary
    assert canary is not None and canary.errors == pytest.approx(600)

    custom = source(obi_prometheus.url, metrics=Metrics(preset="custom", queries=HTTP_ONLY))
    templated = custom.fetch_red([errors, *many], obi_prometheus.rng.end_time)
    assert all('service_name=~".*"' in q.query for q in templated.queries)
    assert templated.values["errors/checkout"] == result.values["errors/checkout"]


# --- namings and presets -----------------------------------------------------------------------------------


def test_otlp_names_without_seconds_suffix_are_detected_and_used(otlp_prometheus: LoadedPrometheus) -> None:
    target = otlp_prometheus.scenario("errors").target()
    src = source(otlp_prometheus.url)
    before = src.fetch_red([target], otlp_prometheus.rng.end_time)
    assert before.values[target.key].canary is None  # Prometheus naming finds nothing there

    src.detect()

    assert src.detect_error is None
    assert src.names == MetricNames.without_seconds()
    canary, baseline = red(otlp_prometheus, target, src)
    assert (canary.requests, canary.errors, baseline.errors) == (
        pytest.approx(3000), pytest.approx(600), pytest.approx(30)
    )
    assert canary.latency is not None and canary.latency.total == pytest.approx(3000)
    grpc, _ = red(otlp_prometheus, otlp_prometheus.scenario("grpc").target(), src)
    assert grpc.errors == pytest.approx(600)


def test_detection_keeps_the_seconds_naming_when_present(obi_prometheus: LoadedPrometheus) -> None:
    src = source(obi_prometheus.url)
    src.detect()
    assert src.detect_error is None
    assert src.names == MetricNames.with_seconds()


def test_spanmetrics_preset_counts_server_spans_only(obi_prometheus: LoadedPrometheus) -> None:
    src = source(obi_prometheus.url, metrics=Metrics(preset="spanmetrics"))

    canary, baseline = red(obi_prometheus, obi_prometheus.scenario("errors").target(), src)
    # The generated client spans all fail; counting them would double requests and add 3000 errors.
    assert (canary.requests, canary.errors) == (pytest.approx(3000), pytest.approx(600))
    assert (baseline.requests, baseline.errors) == (pytest.approx(3000), pytest.approx(30))
    slow, fast = red(obi_prometheus, obi_prometheus.scenario("latency").target(), src)
    assert slow.p99 is not None and fast.p99 is not None
    assert 1.0 < slow.p99 <= 2.05 and 0.128 < fast.p99 <= 0.256  # Tempo's default buckets
    assert all("traces_spanmetrics" in q.query for q in src.fetch_red(
        [obi_prometheus.scenario("errors").target()], obi_prometheus.rng.end_time).queries)


def test_custom_templates_are_filled_in_and_split_per_workload(obi_prometheus: LoadedPrometheus) -> None:
    custom = source(obi_prometheus.url, metrics=Metrics(preset="custom", queries=HTTP_ONLY))
    targets = [obi_prometheus.scenario(n).target() for n in ("errors", "latency", "grpc")]

    result = custom.fetch_red(targets, obi_prometheus.rng.end_time)
    obi = source(obi_prometheus.url).fetch_red(targets, obi_prometheus.rng.end_time)

    assert result.error is None and len(result.queries) == 3
    assert result.values["errors/checkout"] == obi.values["errors/checkout"]
    assert result.values["latency/checkout"] == obi.values["latency/checkout"]
    assert result.values["grpc/checkout"].canary is None  # these templates only read HTTP
    assert '[5m]' in result.queries[0].query and 'service_name=~"checkout"' in result.queries[0].query


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ("sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name) (increase(x[5m]))", "must use $window"),
        ("sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name) (increase(x{$labels}[$window]))",
         "unknown placeholder(s) $labels"),
        ("sum(increase(x{$selector}[$window]))", "must group by k8s_namespace_name, k8s_deployment_name"),
        ("sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name) (increase(x[$window])",
         "unbalanced parentheses"),
    ],
)
def test_bad_custom_templates_are_rejected_naming_the_field(requests: str, message: str) -> None:
    bad = HTTP_ONLY.model_copy(update={"requests": requests})
    with pytest.raises(ValidationError) as raised:
        MimirSettings(url="http://127.0.0.1:1/prometheus", metrics=Metrics(preset="custom", queries=bad))
    assert f"metrics.queries.requests: {message}" in str(raised.value)


def test_latency_templates_must_keep_le() -> None:
    bad = HTTP_ONLY.model_copy(update={"latency_buckets": HTTP_ONLY.requests.replace("_count", "_bucket")})
    with pytest.raises(ValidationError, match=r"metrics.queries.latencyBuckets: must group by le"):
        MimirSettings(url="http://127.0.0.1:1/prometheus", metrics=Metrics(preset="custom", queries=bad))


# --- hostile label values ----------------------------------------------------------------------------------


def test_escaping_round_trips_through_promql_and_regex() -> None:
    assert promql_string(HOSTILE_NAME) == r'"we\"ird\\n\u00e4m\u00e9\n\"} or vector(1) #"'
    assert promql_string("tab\tbell\x07") == r'"tab\tbell\x07"'
    assert promql_string("caf\u00e9 \U0001f600 \ud800") == r'"caf\u00e9 \U0001f600 \ufffd"'
    assert regex_literal("a.b|c*") == r"a\.b\|c\*"


def test_hostile_label_values_are_matched_literally(obi_prometheus: LoadedPrometheus) -> None:
    hostile = obi_prometheus.scenario("hostile").target()
    errors = obi_prometheus.scenario("errors").target()
    src = source(obi_prometheus.url)

    result = src.fetch_red([hostile, errors], obi_prometheus.rng.end_time)

    assert result.error is None
    canary, baseline = result.values[hostile.key].canary, result.values[hostile.key].baseline
    assert canary is not None and baseline is not None
    assert (canary.requests, canary.errors) == (pytest.approx(3000), pytest.approx(300))
    assert (baseline.requests, baseline.errors) == (pytest.approx(3000), 0)
    assert result.values[errors.key] == src.fetch_red([errors], obi_prometheus.rng.end_time).values[errors.key]
    assert result.queries[0].series == 4  # two workloads each; an injected `or vector(1)` would add a row


@pytest.mark.parametrize(
    "name",
    ['"} or vector(1) #', ".*", "checkout|cart", "x\\", 'a"b', "line\nbreak", ".+\n", "\ud800", "\ufffd",
     "z\u00e9\U0001f600"],
)
def test_hostile_names_neither_break_the_query_nor_widen_it(obi_prometheus: LoadedPrometheus, name: str) -> None:
    errors = obi_prometheus.scenario("errors").target()
    as_service = errors.model_copy(update={"key": "svc", "service": name})
    as_namespace = Target(
        key="ns", service="checkout", window=STANDARD_WINDOW,
        canary=Workload(namespace=name, deployment="checkout", replicaset="checkout-7f6d5c4b3"),
        baseline=(Workload(namespace=name, deployment=name, replicaset=name),),
    )
    src = source(obi_prometheus.url)

    for target in (as_service, as_namespace):
        result = src.fetch_red([target], obi_prometheus.rng.end_time)

        assert result.error is None, result.error
        assert result.values[target.key].canary is None and result.values[target.key].baseline is None
        assert [q.series for q in result.queries] == [0, 0, 0]  # nothing else was selected either


# --- discovering the canary ReplicaSet -----------------------------------------------------------------------


def test_discovery_lists_replicasets_oldest_first_so_the_last_is_the_canary(obi_prometheus: LoadedPrometheus) -> None:
    src = source(obi_prometheus.url)
    end = obi_prometheus.rng.end_time

    assert src.discover_replicasets("errors", "checkout", end, STANDARD_WINDOW) == (
        ["checkout-5d8f7c9b4", "checkout-7f6d5c4b3"], None
    )
    hostile = obi_prometheus.scenario("hostile")
    assert src.discover_replicasets(HOSTILE_NAME, HOSTILE_NAME, end, STANDARD_WINDOW) == (
        [hostile.baseline[0].replicaset, hostile.canary.replicaset], None
    )
    assert src.discover_replicasets("errors", "nothing-here", end, STANDARD_WINDOW) == ([], None)
    grpc = src.discover_replicasets("grpc", "checkout", end, STANDARD_WINDOW)
    assert grpc == (["checkout-5d8f7c9b4", "checkout-7f6d5c4b3"], None)


@pytest.mark.parametrize("metrics", [Metrics(preset="spanmetrics"), Metrics(preset="custom", queries=HTTP_ONLY)],
                         ids=["spanmetrics", "custom"])
def test_discovery_works_with_every_preset(obi_prometheus: LoadedPrometheus, metrics: Metrics) -> None:
    src = source(obi_prometheus.url, metrics=metrics)
    found = src.discover_replicasets("latency", "checkout", obi_prometheus.rng.end_time, STANDARD_WINDOW)
    assert found == (["checkout-5d8f7c9b4", "checkout-7f6d5c4b3"], None)


def test_discovery_leaves_out_replicasets_gone_before_the_window() -> None:
    rng = DataRange.ending_now(minutes=40)
    end_early = DataRange(start=rng.start, end=rng.end - 900)  # the old ReplicaSet stopped 15 min ago
    old = openmetrics([Traffic("ns", "web", "web-old", "web")], end_early)
    new = openmetrics([Traffic("ns", "web", "web-new", "web", age=1500)], rng)
    with PrometheusServer(openmetrics=[old, new]) as prom:
        src = source(prom.url)
        assert src.discover_replicasets("ns", "web", rng.end_time, 300) == (["web-new"], None)
        assert src.discover_replicasets("ns", "web", rng.end_time, 1200) == (["web-old", "web-new"], None)


# --- backend trouble ------------------------------------------------------------------------------------------


def test_prometheus_stopped_is_a_connection_error_not_an_exception() -> None:
    prom = PrometheusServer().start()
    url = prom.url
    prom.stop()
    src = source(url)

    src.detect()
    result = src.fetch_red([standard_scenarios()[0].target()], datetime.now(UTC))
    replicasets, discovery_error = src.discover_replicasets("errors", "checkout", datetime.now(UTC), 300)

    assert src.detect_error is not None and src.detect_error.kind is BackendErrorKind.CONNECTION
    assert result.error is not None
    assert result.error.backend == "mimir" and result.error.kind is BackendErrorKind.CONNECTION
    assert "connection refused" in result.error.reason.lower() and url in result.error.reason
    assert result.values == {}
    assert [q.error is not None for q in result.queries] == [True, True]  # detection retried, then stopped
    assert replicasets == [] and discovery_error is not None
    assert discovery_error.kind is BackendErrorKind.CONNECTION


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class FakeMimir:
    """A local HTTP server that answers every request with `answer` and records what it was sent."""

    answer: Answer = field(default_factory=Answer)
    labels: Answer | None = None
    """What /api/v1/label/... answers, when not `answer`."""
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _serve(fake: FakeMimir, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.seen.append((self.path, dict(self.headers.items())))
            answer = fake.labels if fake.labels and "/api/v1/label/" in self.path else fake.answer
            if answer.delay:
                fake.release.wait(answer.delay)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except OSError:
                pass  # the client gave up (timeout)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    fake.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/prometheus"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def fake_mimir() -> Iterator[FakeMimir]:
    fake = FakeMimir()
    server = _serve(fake)
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


TARGET = standard_scenarios()[0].target()


@pytest.mark.parametrize(
    ("answer", "kind", "reason"),
    [
        (Answer(body=b"<html>gateway</html>", content_type="text/html"), BackendErrorKind.MALFORMED,
         "the answer is not JSON"),
        (Answer(body=b'{"status":"success"}'), BackendErrorKind.MALFORMED, "not a Prometheus API response"),
        (Answer(body=b'{"status":"success","data":{"result":[{"metric":{},"value":"x"}]}}'),
         BackendErrorKind.MALFORMED, "unexpected result shape at data.result.0.value"),
        (Answer(status=422, body=json.dumps({
            "status": "error", "errorType": "execution",
            "error": "the query exceeded the maximum number of series (limit: 1000) (err-mimir-max-series-per-query)",
        }).encode()), BackendErrorKind.LIMIT,
         "HTTP 422, Mimir limit err-mimir-max-series-per-query: the query exceeded the maximum number of series"),
        (Answer(status=429, body=b"too many outstanding requests (err-mimir-tenant-max-request-rate)",
                content_type="text/plain"), BackendErrorKind.LIMIT, "err-mimir-tenant-max-request-rate"),
        (Answer(status=503, body=b"upstream connect error", content_type="text/plain"), BackendErrorKind.HTTP,
         "HTTP 503: upstream connect error"),
        (Answer(status=400, body=b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}'),
         BackendErrorKind.HTTP, "HTTP 400: parse error at char 3"),
        (Answer(delay=5), BackendErrorKind.TIMEOUT, "within 0.3s"),
    ],
    ids=["html", "no-data", "bad-value", "max-series", "rate-limit", "503", "400", "hang"],
)
def test_backend_misbehaviour_becomes_a_backend_error_of_the_right_kind(
    fake_mimir: FakeMimir, answer: Answer, kind: BackendErrorKind, reason: str
) -> None:
    fake_mimir.answer = answer
    src = source(fake_mimir.url, timeout_seconds=0.3)

    result = src.fetch_red([TARGET], datetime.now(UTC))

    assert result.error is not None, result
    assert (result.error.backend, result.error.kind) == ("mimir", kind)
    assert reason in result.error.reason
    assert result.error.query == result.queries[0].query and "increase(" in result.error.query
    assert len(result.queries) == 1 and len(fake_mimir.seen) == 1  # no retry storm, no further signals
    assert result.values == {}


def test_tenant_bearer_token_and_query_time_reach_the_backend(fake_mimir: FakeMimir) -> None:
    src = source(fake_mimir.url, tenant="team-a", bearer_token="s3cret")
    end = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    result = src.fetch_red([TARGET], end)

    assert result.error is None
    assert result.values[TARGET.key].canary is None
    path, headers = fake_mimir.seen[0]
    assert path.startswith("/prometheus/api/v1/query?")
    assert f"time={end.timestamp():.3f}" in path
    assert headers["X-Scope-OrgID"] == "team-a" and headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(src.settings)


def test_basic_auth_reaches_the_backend(fake_mimir: FakeMimir) -> None:
    source(fake_mimir.url, username="alice", password="pw").fetch_red([TARGET], datetime.now(UTC))
    assert fake_mimir.seen[0][1]["Authorization"] == "Basic YWxpY2U6cHc="


def test_detection_failure_is_reported_and_retried_by_the_next_fetch(fake_mimir: FakeMimir) -> None:
    fake_mimir.answer = Answer(status=500, body=b"boom", content_type="text/plain")
    src = source(fake_mimir.url)

    src.detect()

    assert src.detect_error is not None and src.detect_error.kind is BackendErrorKind.HTTP
    fake_mimir.answer = Answer()
    fake_mimir.labels = Answer(body=b'{"status":"success","data":["http_server_request_duration_count"]}')
    result = src.fetch_red([TARGET], datetime.now(UTC))
    assert src.detect_error is None and src.names == MetricNames.without_seconds()
    assert fake_mimir.seen[1][0].startswith("/prometheus/api/v1/label/__name__/values?")
    assert len(result.queries) == 4


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def test_tls_is_verified_by_default_and_a_ca_file_makes_it_trusted(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    fake = FakeMimir()
    server = _serve(fake, context)
    try:
        untrusted = source(fake.url).fetch_red([TARGET], datetime.now(UTC))
        trusted = source(fake.url, ca_file=cert).fetch_red([TARGET], datetime.now(UTC))
        with pytest.warns(InsecureRequestWarning):
            unverified = source(fake.url, verify_tls=False).fetch_red([TARGET], datetime.now(UTC))
    finally:
        server.shutdown()
        server.server_close()

    assert untrusted.error is not None and untrusted.error.kind is BackendErrorKind.CONNECTION
    assert "TLS" in untrusted.error.reason and "CERTIFICATE_VERIFY_FAILED" in untrusted.error.reason
    assert trusted.error is None and unverified.error is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "mimir:8080"}, r"expected an http\(s\) URL"),
        ({"url": "http://m/prometheus", "bearer_token": "t", "username": "u", "password": "p"}, "not both"),
        ({"url": "http://m/prometheus", "username": "u"}, "needs both username and password"),
        ({"url": "http://m/prometheus", "tenant": "a\nX-Evil: 1"}, "tenant"),
        ({"url": "http://m/prometheus", "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ({"url": "http://m/prometheus", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_bad_settings_are_rejected_naming_the_field(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MimirSettings(**settings)


def test_url_keeps_its_prefix_without_trailing_slash() -> None:
    assert MimirSettings(url="https://mimir.example/prometheus/").url == "https://mimir.example/prometheus"


# --- the harness ------------------------------------------------------------------------------------------


def test_harness_without_prometheus_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PROMETHEUS_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrometheusNotInstalledError, match="apt-get install prometheus"):
        PrometheusServer()


def test_harness_reports_bad_backfill_data() -> None:
    with pytest.raises(PrometheusStartError, match="promtool could not backfill OpenMetrics document #0"):
        PrometheusServer(openmetrics="this is not openmetrics\n").start()


def _query(url: str, promql: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=5) as r:
        return json.load(r)["data"]["result"]


def test_harness_scrapes_configured_targets_under_the_route_prefix() -> None:
    with PrometheusServer(scrape_interval="1s") as first:
        config = {"job_name": "other", "metrics_path": "/prometheus/metrics",
                  "static_configs": [{"targets": [f"127.0.0.1:{first.port}"]}]}
        with PrometheusServer(scrape_configs=[config], scrape_interval="1s") as prom:
            rows: list[dict[str, object]] = []
            for _ in range(100):
                rows = _query(prom.url, 'up{job="other"}')
                if rows:
                    break
                time.sleep(0.1)
            assert rows and rows[0]["value"][1] == "1"  # type: ignore[index]
        assert not prom.running
    with pytest.raises(urllib.error.URLError):
        _query(first.url, "up")
