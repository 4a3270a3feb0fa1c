"""Hostile-input strategies and the oracles they are checked against, shared by the fuzz tests (few
examples) and `benchmarks/hardening.py` (many, with counts).

An oracle returns normally when the product handled the input correctly, raises `Wrong` when it
answered but wrongly (a pass or fail it must not give, an SLO it must not accept), and any other
exception escaping the product is a crash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import strategies as st

from canary.analysis import AnalysisRequest, Analyzer
from canary.config.loader import parse_documents
from canary.config.slo import MAX_COUNT, MAX_RATIO, MAX_WINDOW, ServiceSLOSpec, object_name_problem
from canary.controller.annotations import AnnotationError, parse_annotations
from canary.controller.status import read_status
from canary.judge.model import Phase
from canary.samples import LatencyHistogram, Pair, RedSample
from canary.sources.base import BatchResult
from canary.sources.limits import MAX_COUNT as MAX_BACKEND_COUNT
from canary.sources.mimir import MimirSettings, MimirSource
from canary.sources.tempo import TempoSettings, TempoSource
from canary_testkit.faults import TARGET, FaultConfig, FaultServer


class Wrong(AssertionError):
    """The product answered, but not what it must answer."""


# -- strategies ----------------------------------------------------------------------------------------

HOSTILE_NUMBERS = ["NaN", "nan", "+Inf", "-Inf", "inf", "-500", "-0", "abc", "", "1e308", "1e309", "1e-320", "0",
                   "12", "1e15", "1e16", "\u0663\u0660\u0660", "\u0661\u0662", "+3", "0x10", "1_000", " 7 ", "3.5",
                   "99.99999999"]
HOSTILE_DURATIONS = ["1ms", "0s", "500ms", "30s", "30.0000001s", "100000000000d", "1e309s", "\u0663\u0660\u0660s",
                     "-5s", "2m", "1h30m", "7d", "8d", "", "s", "1.5", "0.9s", "1y"]
HOSTILE_NAMES = ["checkout", "Checkout", "æb", "a..b", "-a", "a-", "a" * 254, "a" * 64, "", " ", "shop/x", "x\n",
                 "kube-system", "default", "a.b", "ok-1"]


def deep_json(depth: int, kind: str = "[") -> str:
    close = {"[": "]", "{": "}"}[kind]
    if kind == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return kind * depth + close * depth


scalars = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(HOSTILE_DURATIONS),
                    st.sampled_from(HOSTILE_NAMES), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(), st.text(max_size=20))


BY = "sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name)"


def _slo_dict(draw: Callable[..., Any]) -> dict[str, Any]:
    def maybe(value: Any) -> Any:
        return draw(st.one_of(st.just(value), scalars))

    analysis = {k: maybe(v) for k, v in {"interval": "30s", "window": "2m", "minRequests": 50, "successfulChecks": 10,
                                        "failedChecks": 3, "backendErrorLimit": 4}.items()
                if draw(st.booleans())}
    spec: dict[str, Any] = {
        "service": maybe("checkout"),
        "objectives": {"availability": maybe(99.5), "latencyP99": maybe("500ms"), "traceErrorRate": maybe("2%")},
        "comparison": {"maxErrorRateRatio": maybe(2.0), "maxLatencyRatio": maybe(1.5)},
        "analysis": analysis,
        "rollback": {"action": draw(st.sampled_from(["undo", "scale-to-zero", "pause", "notify-only", "boom"]))},
    }
    if draw(st.booleans()):
        spec["metrics"] = {"preset": "custom", "queries": {
            "requests": draw(st.sampled_from([
                f"{BY} (increase(x{{$selector}}[$window]))",
                f"{BY} (increase(x[5m]))",
                f"{BY} (increase(x[$window]) * $ 2)",
                f"{BY} (increase(x[${{window]))",
            ])),
            "errors": f"{BY} (increase(e[$window]))",
            "latencyBuckets": "sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name, le) "
                              "(increase(b[$window]))",
        }}
    metadata = {"name": draw(st.sampled_from(HOSTILE_NAMES))}
    if draw(st.booleans()):
        metadata["namespace"] = draw(st.sampled_from(["shop", "aaa-attacker", "Shop", "", "kube-system"]))
    return {"apiVersion": "canary.mop.dev/v1alpha1", "kind": "ServiceSLO", "metadata": metadata, "spec": spec}


@st.composite
def slo_documents(draw: Callable[..., Any]) -> str:
    """YAML text of one to three documents: ServiceSLOs with hostile values, duplicate keys, deep nesting."""
    docs = []
    for _ in range(draw(st.integers(1, 3))):
        choice = draw(st.integers(0, 9))
        if choice <= 5:
            docs.append(yaml.safe_dump(_slo_dict(draw), sort_keys=False))
        elif choice == 6:
            docs.append("spec: " + deep_json(draw(st.integers(40, 1200))))
        elif choice == 7:
            docs.append("apiVersion: canary.mop.dev/v1alpha1\nkind: ServiceSLO\nmetadata: {name: a, name: b}\n"
                        "spec: {service: a, service: b}\n")
        elif choice == 8:
            docs.append(draw(st.text(max_size=200)))
        else:
            docs.append("x: " + "- " * draw(st.integers(1, 600)) + "1")
    return "\n---\n".join(docs)


ANNOTATION_KEYS = ["enabled", "slo", "baseline", "interval", "failed-checks", "successful-checks", "rollback-action",
                   "slack-channel", "abort", "skip", "promote"]

annotations = st.dictionaries(
    st.sampled_from(ANNOTATION_KEYS).map(lambda k: "canary.mop.dev/" + k),
    st.one_of(st.sampled_from(HOSTILE_NUMBERS + HOSTILE_DURATIONS + HOSTILE_NAMES + ["true", "false", "TRUE"]),
              st.text(max_size=40)),
    max_size=8,
)


@st.composite
def status_annotations(draw: Callable[..., Any]) -> str:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return deep_json(draw(st.integers(500, 5000)), draw(st.sampled_from(["[", "{"])))
    if choice == 1:
        return draw(st.text(max_size=300))
    if choice == 2:
        base: dict[str, Any] = {"phase": "Analysing", "mode": "guard", "looks": 3}
        base[draw(st.sampled_from(["phase", "mode", "looks", "rejected", "outbox", "last_check_at", "delivered"]))] = (
            draw(scalars))
        return json.dumps(base)
    if choice == 3:
        return "x" * draw(st.integers(60_000, 70_000))
    if choice == 4:
        return json.dumps({"phase": "Analysing", "mode": "guard", "outbox": [deep_json(50)] * 3})
    return json.dumps(draw(st.recursive(st.none() | st.integers() | st.text(max_size=5),
                                        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c,
                                                                                          max_size=3), max_leaves=20)))


counts = st.one_of(st.integers(0, 10**6).map(float), st.floats(0, 1e308), st.sampled_from([0.0, 1e15, 1e300, 1e308]))


@st.composite
def red_pairs(draw: Callable[..., Any]) -> tuple[RedSample, RedSample | None]:
    def sample() -> RedSample:
        requests = draw(counts)
        errors = min(draw(counts), requests) if draw(st.booleans()) else draw(counts)
        latency = None
        if draw(st.booleans()):
            fast = draw(st.floats(0, 1)) * requests
            latency = LatencyHistogram(buckets=((0.1, fast), (1.0, requests), (math.inf, requests)))
        return RedSample(requests=requests, errors=errors, latency=latency)

    return sample(), (sample() if draw(st.booleans()) else None)


@st.composite
def prometheus_bodies(draw: Callable[..., Any]) -> bytes:
    """Prometheus answers for TARGET's workloads with hostile values, warnings, or not an answer at all."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return deep_json(draw(st.integers(100, 6000))).encode()
    if choice == 1:
        return draw(st.binary(max_size=200))
    rows = []
    for rs in ("checkout-new", "checkout-old"):
        labels = {"k8s_namespace_name": "shop", "k8s_deployment_name": "checkout", "k8s_replicaset_name": rs}
        for le in ([None] if draw(st.booleans()) else ["0.1", "+Inf", draw(st.sampled_from(["abc", "NaN", "1"]))]):
            metric = {**labels, **({"le": le} if le else {})}
            value: Any = draw(st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.floats().map(repr)))
            if draw(st.integers(0, 9)) == 0:
                value = draw(scalars)
            rows.append({"metric": metric, "value": [0, value]})
    body: dict[str, Any] = {"status": "success", "data": {"resultType": "vector", "result": rows}}
    if choice == 2:
        body["warnings"] = ["partial response"]
    if choice == 3:
        body = {"status": "success", "data": draw(scalars)}
    return json.dumps(body).encode()


@st.composite
def tempo_bodies(draw: Callable[..., Any]) -> bytes:
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return deep_json(draw(st.integers(100, 6000)), "{").encode()
    if choice == 1:
        return b"{}"
    series = []
    for rs in ("checkout-new", "checkout-old"):
        labels = [{"key": "resource.k8s.namespace.name", "value": {"stringValue": "shop"}},
                  {"key": "resource.k8s.deployment.name", "value": {"stringValue": "checkout"}},
                  {"key": "resource.k8s.replicaset.name", "value": {"stringValue": rs}}]
        value: Any = draw(st.one_of(st.floats(), st.sampled_from(["NaN", "Infinity", -1, 1e307, "lots"]),
                                    st.floats(0, 100)))
        series.append({"labels": labels, "value": value})
    body: dict[str, Any] = {"series": series, "metrics": {"completedJobs": 1, "totalJobs": 1}}
    if choice == 2:
        body["status"] = "PARTIAL"
    return json.dumps(body, allow_nan=True).encode()


# -- oracles --------------------------------------------------------------------------------------------


def check_slo_document(text: str) -> None:
    result = parse_documents(text, "fuzz", default_namespace="shop")
    for slo in result.slos:
        a, c = slo.spec.analysis, slo.spec.comparison
        if slo.metadata.namespace != "shop":
            raise Wrong(f"an SLO of namespace {slo.metadata.namespace!r} accepted from a ConfigMap in 'shop'")
        if object_name_problem(slo.metadata.name) or not slo.spec.service.strip():
            raise Wrong(f"accepted name {slo.metadata.name!r} / service {slo.spec.service!r}")
        if not (a.window <= MAX_WINDOW and a.window >= 1 and c.max_error_rate_ratio <= MAX_RATIO
                and c.max_latency_ratio <= MAX_RATIO and max(a.min_requests, a.failed_checks) <= MAX_COUNT):
            raise Wrong(f"accepted unbounded numbers: {a} {c}")
        if len(str(result.errors)) > 200_000:
            raise Wrong("error report out of proportion")
    if not result.slos and not result.errors and text.count("ServiceSLO") and "kind: ServiceSLO" in text:
        raise Wrong("a ServiceSLO document neither loaded nor reported")


def check_annotations(ann: dict[str, str]) -> None:
    try:
        parsed = parse_annotations(ann)
    except AnnotationError:
        return
    for name in (parsed.slo, parsed.baseline):
        if name is not None and object_name_problem(name):
            raise Wrong(f"accepted object name {name!r}")
    for count in (parsed.failed_checks, parsed.successful_checks):
        if count is not None and not 1 <= count <= MAX_COUNT:
            raise Wrong(f"accepted count {count}")
    if parsed.interval is not None and not parsed.interval >= 0.5:
        raise Wrong(f"accepted interval {parsed.interval}")


def check_status(text: str) -> None:
    status, problem = read_status({"canary.mop.dev/status": text})
    if status is None and problem is None:
        raise Wrong("an unreadable status without a reason")


class _Fixed:
    """A MetricsSource answering one fixed RED pair (the judge's input under test)."""

    def __init__(self, canary: RedSample, baseline: RedSample | None) -> None:
        self.pair = Pair[RedSample](canary=canary, baseline=baseline)

    def fetch_red(self, targets: Any, end: datetime) -> BatchResult[RedSample]:
        return BatchResult(values={t.key: self.pair for t in targets})


SPEC = ServiceSLOSpec.model_validate({"service": "checkout", "objectives": {"availability": 99}})


def check_judge(canary: RedSample, baseline: RedSample | None, look: int) -> None:
    outcome = Analyzer(_Fixed(canary, baseline)).analyze(
        [AnalysisRequest(target=TARGET, slo=SPEC, look=look)], datetime.now(UTC))[TARGET.key]
    verdict = outcome.verdict
    if verdict.phase is Phase.PASS and canary.requests >= 1 and canary.errors / canary.requests > 0.011:
        raise Wrong(f"pass with canary error rate {canary.errors / canary.requests:.3g} above the 1% objective")
    for check in verdict.failed:
        if check.canary is not None and check.threshold is not None and check.canary <= check.threshold:
            raise Wrong(f"{check.name} failed within its threshold: {check.canary} <= {check.threshold}")


def check_backend_answer(server: FaultServer, body: bytes, tempo: bool) -> None:
    server.configure(FaultConfig(raw=body))
    end = datetime.now(UTC)
    if tempo:
        with TempoSource(TempoSettings(url=server.url, timeout_seconds=2, end_cutoff_seconds=0)) as source:
            traces = source.fetch_trace_errors([TARGET], end)
        _consistent(traces, lambda s: (s.spans, s.error_spans))
        return
    mimir = MimirSource(MimirSettings(url=server.url, timeout_seconds=2))
    try:
        red = mimir.fetch_red([TARGET], end)
    finally:
        mimir.close()
    _consistent(red, lambda s: (s.requests, s.errors))


def _consistent(result: BatchResult[Any], numbers: Callable[[Any], tuple[float, float]]) -> None:
    if result.error is not None:
        if not result.error.reason:
            raise Wrong("a backend error without a reason")
        return
    for pair in result.values.values():
        for sample in (pair.canary, pair.baseline):
            if sample is None:
                continue
            total, bad = numbers(sample)
            if not (0 <= bad <= total <= MAX_BACKEND_COUNT * 10) or not math.isfinite(total):
                raise Wrong(f"implausible sample accepted: {sample}")

