"""The analysis engine: canaries whose SLOs use different metric presets are measured in separate
batches (one query per signal each), and a bad custom query set is an error verdict for those
canaries only."""

from __future__ import annotations

from canary.analysis import AnalysisRequest, Analyzer
from canary.config.slo import Metrics, MetricsPreset, QueryTemplates, ServiceSLOSpec
from canary.sources.mimir import MimirSettings, MimirSource
from tests.promdata import LoadedPrometheus


def test_presets_are_batched_separately_and_both_judged(obi_prometheus: LoadedPrometheus) -> None:
    sources: dict[Metrics, MimirSource] = {}

    def source_for(metrics: Metrics) -> MimirSource:
        return sources.setdefault(metrics, MimirSource(MimirSettings(url=obi_prometheus.url, metrics=metrics)))

    errors, healthy = obi_prometheus.scenario("errors"), obi_prometheus.scenario("healthy")
    obi = ServiceSLOSpec(service="checkout", objectives={"availability": 98})
    span = obi.model_copy(update={"metrics": Metrics(preset=MetricsPreset.SPANMETRICS)})
    requests = [
        AnalysisRequest(target=errors.target(), slo=obi),
        AnalysisRequest(target=healthy.target(), slo=span),
    ]
    outcomes = Analyzer(source_for).analyze(requests, obi_prometheus.rng.end_time)
    assert outcomes[errors.target().key].verdict.phase.value == "fail"
    assert outcomes[healthy.target().key].verdict.phase.value == "pass"
    assert len(sources) == 2
    spanmetrics_queries = outcomes[healthy.target().key].measurement.queries
    assert len(spanmetrics_queries) == 3 and all("traces_spanmetrics" in q.query for q in spanmetrics_queries)


def test_unusable_custom_queries_are_an_error_for_their_canaries_only(obi_prometheus: LoadedPrometheus) -> None:
    def source_for(metrics: Metrics) -> MimirSource:
        return MimirSource(MimirSettings(url=obi_prometheus.url, metrics=metrics))

    errors = obi_prometheus.scenario("errors")
    broken = Metrics(preset=MetricsPreset.CUSTOM, queries=QueryTemplates(
        requests="sum(rate(x[$windw]))", errors="sum(x)", latency_buckets="sum(y)"))
    good = ServiceSLOSpec(service="checkout")
    other = errors.target(key="other")
    outcomes = Analyzer(source_for).analyze([
        AnalysisRequest(target=errors.target(), slo=good),
        AnalysisRequest(target=other, slo=good.model_copy(update={"metrics": broken})),
    ], obi_prometheus.rng.end_time)
    assert outcomes[errors.target().key].verdict.phase.value == "fail"
    bad = outcomes["other"].verdict
    assert bad.phase.value == "error" and bad.message.startswith("spec.metrics")
