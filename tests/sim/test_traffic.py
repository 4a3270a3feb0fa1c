"""The traffic generator against real components: KubeSim, a real Prometheus scraping it every second, and
the Tempo simulator queried over HTTP.

Rates are deterministic (requests = rps x ready replicas x seconds); errors are binomial, so ratios are
checked with tolerances of several standard deviations. PromQL is evaluated at explicit times so that a
window holds only samples from after a change.
"""

from __future__ import annotations

import itertools
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from canary.samples import Target
from canary.samples import Workload as SampleWorkload
from canary.sources.mimir import MimirSettings, MimirSource
from canary_testkit.kube import KubeSim
from canary_testkit.prometheus import PrometheusServer
from canary_testkit.tempo import TempoServer
from canary_testkit.traffic import (
    LABELS,
    METRIC,
    OBI_BUCKETS,
    Profile,
    TrafficError,
    TrafficGenerator,
    WorkloadKey,
    choose_profile,
    image_tag,
    workload_of,
)

T = TypeVar("T")
COUNT = f"{METRIC}_count"
WINDOW = 3
"""Seconds of scrapes (one per second) that PromQL windows cover."""
W = f"{WINDOW}s"
DEFAULT_RPS = 20


def deployment(
    name: str, image: str, replicas: int, namespace: str = "default", app: str | None = None
) -> dict[str, Any]:
    """A Deployment whose pods carry `app: <app>` (or, with app=None, only a `component` label)."""
    labels = {"app": app} if app is not None else {"component": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0, every: float = 0.2) -> T:
    """Poll `probe` until it returns something other than None; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def replicasets(sim: KubeSim, deployment_name: str, namespace: str = "default") -> dict[str, dict[str, Any]]:
    """The Deployment's ReplicaSets by name."""
    return {
        rs["metadata"]["name"]: rs
        for rs in sim.list("apps/v1", "replicasets", namespace=namespace)
        if any(ref["name"] == deployment_name for ref in rs["metadata"].get("ownerReferences") or [])
    }


def only_replicaset(sim: KubeSim, deployment_name: str, namespace: str = "default") -> str:
    (name,) = replicasets(sim, deployment_name, namespace)
    return name


@dataclass
class Stack:
    """One simulated cluster, its traffic and a real Prometheus scraping it every second, for this module.

    Prometheus applies new scrape targets only every 5 s, so the stack is shared; each test works in its
    own namespace, with its own images (and so its own profiles).
    """

    sim: KubeSim
    traffic: TrafficGenerator
    prometheus: PrometheusServer


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with (
        KubeSim(rollout_step_seconds=None) as sim,
        TrafficGenerator(sim, {}, Profile(), rps_per_replica=DEFAULT_RPS) as traffic,
        PrometheusServer(scrape_configs=[traffic.scrape_config()], scrape_interval="1s") as prometheus,
    ):
        yield Stack(sim, traffic, prometheus)


@dataclass
class Namespace:
    """A test's namespace in the shared stack, with PromQL helpers restricted to it."""

    stack: Stack
    name: str

    @property
    def sim(self) -> KubeSim:
        return self.stack.sim

    @property
    def traffic(self) -> TrafficGenerator:
        return self.stack.traffic

    def deploy(self, name: str, image: str, replicas: int, app: str | None = None) -> str:
        """Create a Deployment; the name of its ReplicaSet."""
        self.sim.create(deployment(name, image, replicas, namespace=self.name, app=app))
        return only_replicaset(self.sim, name, self.name)

    def query(self, promql: str, at: float) -> dict[str, float]:
        """An instant query evaluated at unix time `at`: value per `k8s_replicaset_name`."""
        url = f"{self.stack.prometheus.url}/api/v1/query"
        response = httpx.get(url, params={"query": promql, "time": at}, timeout=10)
        assert response.status_code == 200, f"Prometheus answered {response.status_code} to {promql}: {response.text}"
        return {
            row["metric"].get("k8s_replicaset_name", ""): float(row["value"][1])
            for row in response.json()["data"]["result"]
        }

    def increase(self, window: str, matchers: str = "") -> str:
        selector = f'k8s_namespace_name="{self.name}"' + (f", {matchers}" if matchers else "")
        return f"sum by (k8s_replicaset_name) (increase({COUNT}{{{selector}}}[{window}]))"

    def error_ratio(self, window: str) -> str:
        errors = self.increase(window, 'http_response_status_code=~"5.."')
        return f"{errors} / {self.increase(window)}"

    def p99(self, window: str) -> str:
        rate = f'rate({METRIC}_bucket{{k8s_namespace_name="{self.name}"}}[{window}])'
        return f"histogram_quantile(0.99, sum by (k8s_replicaset_name, le) ({rate}))"

    def wait_scraped(self, replicaset: str, seconds: int = WINDOW, after: float = 0.0) -> float:
        """Wait for a time >= `after` whose last `seconds` hold a scrape of `replicaset` per second; that time."""
        selector = f'k8s_namespace_name="{self.name}", k8s_replicaset_name="{replicaset}"'

        def probe() -> float | None:
            now = time.time()
            if now < after:
                return None
            found = self.query(f"count_over_time({COUNT}{{{selector}}}[{seconds}s])", now)
            return now if found and min(found.values()) >= seconds else None

        return wait_for(f"{seconds} scrapes of {self.name}/{replicaset} in {seconds}s", probe)


_namespaces = itertools.count(1)


@pytest.fixture
def ns(stack: Stack) -> Iterator[Namespace]:
    name = f"traffic-{next(_namespaces)}"
    stack.sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield Namespace(stack, name)
    for item in stack.sim.list("apps/v1", "deployments", namespace=name):
        stack.sim.delete("apps/v1", "deployments", name, item["metadata"]["name"])


# -- against a real Prometheus ---------------------------------------------------------------------------------


@pytest.mark.prometheus
def test_requests_per_replicaset_are_rps_times_ready_replicas_times_seconds(ns: Namespace) -> None:
    ns.traffic.set_profile(f"registry.local/{ns.name}/api:1.0", Profile(rps_per_replica=50))
    web = ns.deploy("web", f"{ns.name}/web:v1", 2, app="web")  # the default profile: the generator's rps
    api = ns.deploy("api", f"registry.local/{ns.name}/api:1.0", 1)
    ns.wait_scraped(web)
    at = ns.wait_scraped(api)
    got = ns.query(ns.increase(W), at)
    expected = {web: DEFAULT_RPS * 2 * WINDOW, api: 50 * 1 * WINDOW}
    for name, value in expected.items():
        assert name in got, f"no requests counted for {name} in Prometheus: {got}"
        assert got[name] == pytest.approx(value, rel=0.2), f"{name}: {got[name]:.0f} requests in {W}, want ~{value}"


@pytest.mark.prometheus
def test_error_ratio_follows_each_images_profile(ns: Namespace) -> None:
    ns.traffic.set_profile(f"{ns.name}-bad", Profile(rps_per_replica=100, error_ratio=0.2))
    ns.traffic.set_profile(f"{ns.name}-good", Profile(rps_per_replica=100))
    bad = ns.deploy("bad", f"shop/bad:{ns.name}-bad", 2, app="bad")  # profiles keyed by tag
    good = ns.deploy("good", f"shop/good:{ns.name}-good", 2, app="good")
    ns.wait_scraped(bad)
    at = ns.wait_scraped(good)
    ratios = ns.query(ns.error_ratio(W), at)
    # ~600 requests: the ratio's standard deviation is ~0.016
    assert ratios[bad] == pytest.approx(0.2, abs=0.07), f"20%-error profile shows an error ratio of {ratios[bad]:.3f}"
    assert ratios[good] == 0.0, f"healthy profile shows an error ratio of {ratios[good]:.3f}"


@pytest.mark.prometheus
def test_new_image_makes_a_replicaset_with_its_own_profile_and_old_series_freeze_then_vanish(ns: Namespace) -> None:
    v1, v2 = f"{ns.name}/web:v1", f"{ns.name}/web:v2"
    ns.traffic.set_profile(v1, Profile(rps_per_replica=100))
    ns.traffic.set_profile(v2, Profile(rps_per_replica=100, error_ratio=0.5))
    old = ns.deploy("web", v1, 4, app="web")
    ns.wait_scraped(old, 2)
    ns.sim.patch("apps/v1", "deployments", ns.name, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": v2}]}}}})  # fmt: skip
    (new,) = set(replicasets(ns.sim, "web", ns.name)) - {old}
    at = ns.wait_scraped(new)
    ratios = ns.query(ns.error_ratio(W), at)  # ~300 requests of v2: standard deviation ~0.03
    assert ratios[new] == pytest.approx(0.5, abs=0.15), f"the v2 ReplicaSet's error ratio is {ratios[new]:.3f}"
    assert ratios[old] == 0.0, f"the v1 ReplicaSet's error ratio is {ratios[old]:.3f}"

    for _ in range(10):  # finish the rollout: v1 scales to 0
        if replicasets(ns.sim, "web", ns.name)[old]["spec"]["replicas"] == 0:
            break
        ns.sim.step_rollouts()
    assert replicasets(ns.sim, "web", ns.name)[old]["spec"]["replicas"] == 0, "the rollout did not finish in 10 steps"
    scaled_down = time.time()
    at = ns.wait_scraped(old, after=scaled_down + WINDOW + 0.5)
    grown = ns.query(ns.increase(W), at)
    assert grown[old] == 0.0, f"{old} has no ready replica but its requests grew by {grown[old]}"
    assert grown[new] > 0, f"{new} took over every replica but served nothing: {grown}"

    before = ns.traffic.totals()[WorkloadKey(ns.name, "web", old)]
    assert ns.sim.delete("apps/v1", "replicasets", ns.name, old)
    text = httpx.get(ns.traffic.url, timeout=5).text
    assert f'k8s_replicaset_name="{old}"' not in text, "the deleted ReplicaSet's series are still exported"
    assert f'k8s_replicaset_name="{new}"' in text
    assert ns.traffic.totals()[WorkloadKey(ns.name, "web", old)] == before, "totals() forgot a deleted ReplicaSet"


@pytest.mark.prometheus
def test_set_profile_turns_on_an_error_spike_then_a_latency_regression(ns: Namespace) -> None:
    tag = f"{ns.name}-v1"
    ns.traffic.set_profile(tag, Profile(rps_per_replica=100))
    rs = ns.deploy("web", f"web:{tag}", 2, app="web")
    key = WorkloadKey(ns.name, "web", rs)
    at = ns.wait_scraped(rs)
    assert ns.query(ns.error_ratio(W), at)[rs] == 0.0
    healthy_p99 = ns.query(ns.p99(W), at)[rs]
    assert healthy_p99 <= 0.1, f"default profile (20 ms / 80 ms) has p99 {healthy_p99:.3f}s"

    before = ns.traffic.totals()[key]
    ns.traffic.set_profile(tag, Profile(rps_per_replica=100, error_ratio=0.5))
    switched = time.time()
    at = ns.wait_scraped(rs, after=switched + WINDOW + 0.5)  # the window starts after the switch
    spiked = ns.query(ns.error_ratio(W), at)[rs]
    after = ns.traffic.totals()[key]
    assert spiked == pytest.approx(0.5, abs=0.12), f"after set_profile(error_ratio=0.5): {spiked:.3f}"
    share = (after.errors - before.errors) / (after.requests - before.requests)
    assert share == pytest.approx(0.5, abs=0.1), f"totals() show {share:.3f} errors since the switch"

    ns.traffic.set_profile(tag, Profile(rps_per_replica=100, latency=((0.6, 1.0),)))
    switched = time.time()
    at = ns.wait_scraped(rs, after=switched + WINDOW + 0.5)
    slow_p99 = ns.query(ns.p99(W), at)[rs]
    healed = ns.query(ns.error_ratio(W), at)[rs]
    assert 0.5 < slow_p99 <= 0.75, f"every request takes 600 ms (bucket 0.5-0.75) but p99 is {slow_p99:.3f}s"
    assert healed == 0.0, f"the latency profile has no errors, yet the error ratio is {healed:.3f}"


@pytest.mark.prometheus
def test_the_controllers_mimir_source_sees_canary_and_baseline_as_generated(ns: Namespace) -> None:
    v1, v2 = f"{ns.name}-stable", f"{ns.name}-faulty"
    ns.traffic.set_profile(v1, Profile(rps_per_replica=50))
    ns.traffic.set_profile(v2, Profile(rps_per_replica=200, error_ratio=0.3, latency=((0.3, 1.0),)))
    old = ns.deploy("shop", f"shop:{v1}", 4, app="shop")
    ns.wait_scraped(old, 1)
    ns.sim.patch("apps/v1", "deployments", ns.name, "shop", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": f"shop:{v2}"}]}}}})  # fmt: skip
    (new,) = set(replicasets(ns.sim, "shop", ns.name)) - {old}
    at = ns.wait_scraped(new)
    source = MimirSource(MimirSettings(url=ns.stack.prometheus.url))
    try:
        source.detect()
        target = Target(
            key=f"{ns.name}/shop",
            service="shop",
            canary=SampleWorkload(namespace=ns.name, deployment="shop", replicaset=new),
            baseline=(SampleWorkload(namespace=ns.name, deployment="shop", replicaset=old),),
            window=WINDOW,
        )
        result = source.fetch_red([target], datetime.fromtimestamp(at, UTC))
    finally:
        source.close()
    assert result.error is None, result.error
    pair = result.values[target.key]
    assert pair.canary is not None and pair.baseline is not None
    # canary: its 1 surge replica x 200 rps x 3 s = ~600 requests; baseline: the 3 old replicas that
    # maxUnavailable (25% of 4) leaves at the first step x 50 rps
    assert pair.canary.requests == pytest.approx(200 * WINDOW, rel=0.2)
    assert pair.baseline.requests == pytest.approx(3 * 50 * WINDOW, rel=0.2)
    assert pair.canary.error_rate == pytest.approx(0.3, abs=0.08)
    assert pair.baseline.error_rate == 0.0
    assert pair.canary.p99 is not None and 0.25 < pair.canary.p99 <= 0.5, pair.canary.p99
    assert pair.baseline.p99 is not None and pair.baseline.p99 <= 0.1, pair.baseline.p99


# -- the exposition itself --------------------------------------------------------------------------------------


def test_metrics_text_parses_with_obi_labels_buckets_and_consistent_counts() -> None:
    profiles = {"v1": Profile(latency=((0.05, 1.0),), error_ratio=0.3)}
    with (
        KubeSim(rollout_step_seconds=None) as sim,
        TrafficGenerator(sim, profiles, Profile(), rps_per_replica=200, tick_seconds=0.05) as traffic,
    ):
        sim.create(deployment("checkout-canary", "shop/checkout:v1", 2, app="checkout"))
        sim.create(deployment("worker", "shop/worker:v1", 1))
        canary, worker = only_replicaset(sim, "checkout-canary"), only_replicaset(sim, "worker")

        def both_served() -> bool | None:
            totals = traffic.totals()
            canary_key = WorkloadKey("default", "checkout-canary", canary)
            return (canary_key in totals and totals[canary_key].errors > 0 and len(totals) == 2) or None

        wait_for("requests and errors for both ReplicaSets", both_served, timeout=10)
        response = httpx.get(traffic.url, timeout=5)
        missing = httpx.get(f"http://127.0.0.1:{traffic.port}/nope", timeout=5)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert missing.status_code == 404
    families = list(text_string_to_metric_families(response.text))
    assert [(f.name, f.type) for f in families] == [(METRIC, "histogram")]
    samples = families[0].samples
    per_series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in samples:
        labels = dict(sample.labels)
        le = labels.pop("le", None)
        assert set(labels) == set(LABELS), f"{sample.name} has labels {sorted(labels)}"
        series = per_series.setdefault(tuple(sorted(labels.items())), {"buckets": []})
        if sample.name.endswith("_bucket"):
            series["buckets"].append((float(le), sample.value))
        else:
            series[sample.name.rsplit("_", 1)[1]] = sample.value

    services = {
        (dict(k)["k8s_replicaset_name"], dict(k)["service_name"], dict(k)["k8s_deployment_name"]) for k in per_series
    }
    assert services == {(canary, "checkout", "checkout-canary"), (worker, "worker", "worker")}
    assert {dict(k)["http_response_status_code"] for k in per_series} == {"200", "500"}
    assert {dict(k)["k8s_namespace_name"] for k in per_series} == {"default"}
    for key, series in per_series.items():
        bounds = [le for le, _ in series["buckets"]]
        counts = [value for _, value in series["buckets"]]
        assert bounds == [*OBI_BUCKETS, math.inf], f"{key}: buckets {bounds}"
        assert counts == sorted(counts), f"{key}: cumulative bucket counts decrease: {counts}"
        assert series["count"] == counts[-1], f"{key}: _count {series['count']} != +Inf bucket {counts[-1]}"
        if dict(key)["k8s_replicaset_name"] == canary:  # every request takes exactly 50 ms: the le="0.05" bucket
            assert counts[OBI_BUCKETS.index(0.05)] == series["count"] and counts[OBI_BUCKETS.index(0.025)] == 0
            assert series["sum"] == pytest.approx(0.05 * series["count"])


def test_spans_reach_tempo_with_workload_attributes_error_status_and_a_bounded_rate() -> None:
    profiles = {"v2": Profile(rps_per_replica=300, error_ratio=0.25, latency=((0.15, 1.0),))}
    with KubeSim(rollout_step_seconds=None) as sim, TempoServer() as tempo:
        sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        sim.create(deployment("checkout", "shop/checkout:v2", 2, namespace="shop", app="checkout"))
        (rs,) = (r["metadata"]["name"] for r in sim.list("apps/v1", "replicasets", namespace="shop"))
        started = time.monotonic()
        with TrafficGenerator(sim, profiles, Profile(), tempo=tempo, max_spans_per_second=200, seed=7) as traffic:
            wait_for("600 spans in Tempo", lambda: len(tempo.store) >= 600 or None, timeout=15)
            served = traffic.totals()[WorkloadKey("shop", "checkout", rs)]
        elapsed = time.monotonic() - started

        def search(condition: str) -> list[dict[str, Any]]:
            workload = (
                f'resource.service.name = "checkout" && resource.k8s.namespace.name = "shop" && '
                f'resource.k8s.deployment.name = "checkout" && resource.k8s.replicaset.name = "{rs}" && kind = server'
            )
            q = f"{{ {workload}{condition} }}"
            response = httpx.get(f"{tempo.url}/api/search", params={"q": q, "limit": 100000, "spss": 1}, timeout=10)
            assert response.status_code == 200, f"{q}: {response.status_code} {response.text}"
            return list(response.json()["traces"])

        every = search("")
        errors = search(" && status = error")
        assert search(" && status = error && span.http.response.status_code = 200") == []
        assert search(" && status = ok && span.http.response.status_code = 500") == []
        assert search(" && duration < 150ms") == [], "span durations should be the profile's 150 ms"
        values = httpx.get(f"{tempo.url}/api/v2/search/tag/resource.service.version/values", timeout=10).json()

    spans = len(tempo.store)
    assert len(every) == spans, "every span pushed should be a SERVER span of the checkout ReplicaSet"
    assert {t["rootServiceName"] for t in every} == {"checkout"}
    assert len(errors) / len(every) == pytest.approx(0.25, abs=0.07), f"{len(errors)} of {len(every)} spans failed"
    assert values["tagValues"] == [{"type": "string", "value": "v2"}]
    assert spans <= 200 * (elapsed + 1), f"{spans} spans in {elapsed:.1f}s exceed 200 spans/s"
    assert served.requests > 2 * spans, f"{served.requests} requests served, {spans} sampled: not a sample"


# -- lifecycle and bad input ------------------------------------------------------------------------------------


def test_stop_closes_the_port_and_joins_every_thread() -> None:
    with KubeSim(rollout_step_seconds=None) as sim:
        before = set(threading.enumerate())
        traffic = TrafficGenerator(sim, {}, Profile())
        with pytest.raises(RuntimeError, match="not running"):
            traffic.scrape_config()
        with traffic:
            port = traffic.port
            assert traffic.scrape_config()["static_configs"] == [{"targets": [f"127.0.0.1:{port}"]}]
            assert httpx.get(traffic.url, timeout=5).status_code == 200
        assert set(threading.enumerate()) - before == set(), "threads left running after stop()"
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"something still listens on port {port}"


def test_profiles_are_chosen_by_full_image_then_tag_then_default() -> None:
    by_image, by_tag, default = Profile(error_ratio=0.1), Profile(error_ratio=0.2), Profile()
    profiles = {"registry:5000/team/web:v2": by_image, "v2": by_tag}
    assert choose_profile(["registry:5000/team/web:v2"], profiles, default) is by_image
    assert choose_profile(["other/web:v2"], profiles, default) is by_tag
    assert choose_profile(["sidecar:v9", "other/web:v2"], profiles, default) is by_tag
    assert choose_profile(["web:v3"], profiles, default) is default
    assert image_tag("registry:5000/team/web:v2@sha256:abc") == "v2"
    assert image_tag("registry:5000/team/web") == "latest"


def test_bad_profiles_and_arguments_name_the_field() -> None:
    with pytest.raises(ValidationError, match="error_ratio"):
        Profile(error_ratio=1.5)
    with pytest.raises(ValidationError, match=r"latency\[1\]: share"):
        Profile(latency=((0.1, 1.0), (0.2, -1.0)))
    with pytest.raises(ValidationError, match="must not all be 0"):
        Profile(latency=((0.1, 0.0),))
    with pytest.raises(ValidationError, match="rps_per_replica"):
        Profile(rps_per_replica=math.inf)
    with KubeSim(rollout_step_seconds=None) as sim:
        with pytest.raises(ValueError, match="rps_per_replica"):
            TrafficGenerator(sim, {}, Profile(), rps_per_replica=-1)
        with pytest.raises(ValueError, match="profile keys"):
            TrafficGenerator(sim, {"": Profile()}, Profile())


def test_malformed_replicasets_are_refused_naming_object_and_field() -> None:
    good = {
        "metadata": {"name": "web-1", "namespace": "default", "uid": "u1"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:v1"}]}}},
        "status": {"readyReplicas": 2},
    }
    assert workload_of(good).ready == 2
    assert workload_of(good).service == "web-1"  # no app label, no Deployment: the ReplicaSet's name
    with pytest.raises(TrafficError, match=r"ReplicaSet default/web-1: status.readyReplicas is 'two'"):
        workload_of({**good, "status": {"readyReplicas": "two"}})
    with pytest.raises(TrafficError, match=r"ReplicaSet default/web-1: spec.template.spec.containers\[0\].image"):
        workload_of({**good, "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}})
    with pytest.raises(TrafficError, match=r"metadata.uid is None"):
        workload_of({**good, "metadata": {"name": "web-1", "namespace": "default"}})


def test_a_malformed_replicaset_in_the_cluster_fails_the_scrape_until_it_is_gone() -> None:
    with KubeSim(rollout_step_seconds=None) as sim, TrafficGenerator(sim, {}, Profile()) as traffic:
        sim.create(deployment("web", "web:v1", 1, app="web"))
        # a controller-style write skips the API's validation: the image is a number
        broken = {
            "metadata": {"name": "broken", "namespace": "default"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app", "image": 42}]}}},
        }
        sim.store.put(sim.resource("apps/v1", "replicasets"), broken)
        response = httpx.get(traffic.url, timeout=5)
        assert response.status_code == 500
        assert "ReplicaSet default/broken: spec.template.spec.containers[0].image is 42" in response.text
        with pytest.raises(TrafficError, match="default/broken"):
            traffic.totals()
        assert sim.delete("apps/v1", "replicasets", "default", "broken")
        response = httpx.get(traffic.url, timeout=5)
        assert response.status_code == 200
        assert 'k8s_deployment_name="web"' in response.text
