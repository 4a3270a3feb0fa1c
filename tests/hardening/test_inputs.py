"""Inputs that `canary validate` used to accept but were wrong, and inputs that crashed it (issue 10,
defects 1, 2, 3 and 10): each is now refused with a reason naming the field, and never escapes."""

from __future__ import annotations

import pytest

from canary.config.loader import load_configmap, parse_documents
from canary.controller.annotations import AnnotationError, parse_annotations
from canary.controller.slostore import SLOStore
from canary.controller.status import read_status
from canary.sources.promql import template_problems

HEAD = "apiVersion: canary.mop.dev/v1alpha1\nkind: ServiceSLO\n"
GROUP = "sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name)"


def slo(spec: str = "service: checkout", metadata: str = "name: checkout") -> str:
    return f"{HEAD}metadata: {{{metadata}}}\nspec: {{{spec}}}\n"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (slo(metadata="name: Checkout"), "metadata.name", "not a valid RFC 1123 subdomain"),
        (slo(metadata="name: \u00e6b"), "metadata.name", "not a valid RFC 1123 subdomain"),
        (slo(metadata="name: a, namespace: Shop_1"), "metadata.namespace", "RFC 1123 label"),
        (slo("service: '  '"), "spec.service", "must not be blank"),
        (slo("service: a, analysis: {window: '\u0663\u0660\u0660s'}"), "spec.analysis.window", "invalid duration"),
        (slo("service: a, objectives: {availability: '\u0669\u0669'}"), "spec.objectives.availability",
         "invalid percentage"),
        (slo("service: a, analysis: {window: 500ms, interval: 500ms}"), "spec.analysis.window",
         "greater than or equal"),
        (slo("service: a, analysis: {window: 100000000000d}"), "spec.analysis.window", "longer than a year"),
        (slo("service: a, analysis: {window: 8d}"), "spec.analysis.window", "less than or equal"),
        (slo("service: a, comparison: {maxErrorRateRatio: .inf}"), "spec.comparison.maxErrorRateRatio", "finite"),
        (slo("service: a, comparison: {maxErrorRateRatio: 1e309}"), "spec.comparison.maxErrorRateRatio", "finite"),
        (slo("service: a, comparison: {maxLatencyRatio: 1e6}"), "spec.comparison.maxLatencyRatio", "less than"),
        (slo("service: a, analysis: {failedChecks: 10000000000}"), "spec.analysis.failedChecks", "less than"),
        (slo("service: a, analysis: {minRequests: -5}"), "spec.analysis.minRequests", "greater than"),
        (slo("service: a, objectives: {latencyP99: 2h}"), "spec.objectives.latencyP99", "less than"),
    ],
)
def test_numbers_names_and_durations_are_bounded(text: str, field: str, reason: str) -> None:
    result = parse_documents(text, "slo.yaml")
    assert not result.slos
    assert any(e.field == field and reason in e.reason for e in result.errors), [str(e) for e in result.errors]


@pytest.mark.parametrize(
    ("requests", "problem"),
    [
        (f"{GROUP} (increase(x[5m]))", "must use $window"),
        (f"{GROUP} (increase(x[$window]) * $ 2)", "a '$' that starts no placeholder"),
    ],
)
def test_custom_queries_that_cannot_work_are_refused_by_validate(requests: str, problem: str) -> None:
    queries = (f'{{requests: "{requests}", errors: "{GROUP} (increase(e[$window]))", '
               f'latencyBuckets: "{GROUP[:-1]}, le) (increase(b[$window]))"}}')
    result = parse_documents(slo(f"service: a, metrics: {{preset: custom, queries: {queries}}}"), "slo.yaml")
    assert not result.slos and any(problem in e.reason for e in result.errors), [str(e) for e in result.errors]


def test_a_stray_dollar_is_a_template_problem_not_a_crash() -> None:
    from canary.config.slo import QueryTemplates

    templates = QueryTemplates(requests="x[$window] $", errors="y[$window]", latency_buckets="z[$window] le")
    assert any("'$'" in p for p in template_problems(templates))


def test_duplicate_keys_and_duplicate_names_are_errors() -> None:
    text = (f"{HEAD}metadata: {{name: a}}\nspec: {{service: one, service: two}}\n---\n"
            f"{slo(metadata='name: b')}---\n{slo('service: other', 'name: b')}")
    result = parse_documents(text, "slo.yaml")
    assert [s.ref for s in result.slos] == ["b"] and result.slos[0].spec.service == "checkout", "the first b is used"
    reasons = [str(e) for e in result.errors]
    assert any("document 1" in r and "duplicate key 'service'" in r for r in reasons), reasons
    assert any("document 3" in r and "already defined above" in r for r in reasons), reasons


def test_deep_yaml_is_an_error_and_never_hides_the_good_documents() -> None:
    deep = "spec: " + "[" * 495 + "]" * 495
    text = f"{slo(metadata='name: before')}---\n{deep}\n---\n{slo(metadata='name: after')}"
    result = parse_documents(text, "slo.yaml")
    assert [s.ref for s in result.slos] == ["before", "after"]
    assert any("nested more than" in e.reason and e.document == 1 for e in result.errors)


def test_an_slo_counts_only_in_its_configmaps_namespace_and_duplicates_are_reported() -> None:
    def configmap(namespace: str, name: str, text: str) -> dict:
        return {"metadata": {"namespace": namespace, "name": name}, "data": {"slo.yaml": text}}

    takeover = configmap("aaa-attacker", "evil", slo("service: checkout", "name: checkout, namespace: shop"))
    assert not load_configmap(takeover).slos
    store = SLOStore()
    store.on_configmap("ADDED", takeover)
    store.on_configmap("ADDED", configmap("shop", "a-slos", slo("service: real")))
    store.on_configmap("ADDED", configmap("shop", "b-slos", slo("service: copy")))
    found = store.get("shop", "checkout")
    assert found is not None and found.spec.service == "real"
    assert store.get("aaa-attacker", "checkout") is None
    errors = [str(e) for e in store.errors()]
    assert any("ConfigMap aaa-attacker/evil" in e and "metadata.namespace" in e for e in errors), errors
    assert any("ConfigMap shop/b-slos" in e and "also defined in ConfigMap shop/a-slos" in e for e in errors), errors


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"canary.mop.dev/slo": "Checkout"}, "RFC 1123"),
        ({"canary.mop.dev/baseline": "\u00e6b"}, "RFC 1123"),
        ({"canary.mop.dev/failed-checks": "\u0661\u0662"}, "digits 0-9 only"),
        ({"canary.mop.dev/failed-checks": "+3"}, "digits 0-9 only"),
        ({"canary.mop.dev/successful-checks": "99999999999"}, "digits 0-9 only"),
        ({"canary.mop.dev/interval": "1ms"}, "shorter than 0.5s"),
        ({"canary.mop.dev/interval": "\u0663\u0660s"}, "invalid duration"),
    ],
)
def test_annotations_validate_names_digits_and_intervals(annotations: dict[str, str], message: str) -> None:
    with pytest.raises(AnnotationError, match=message):
        parse_annotations(annotations)


@pytest.mark.parametrize(
    "raw",
    ["[" * 1000 + "]" * 1000, '{"a":' * 5000 + "1" + "}" * 5000, "x" * 70_000, "\udcff", '{"phase": [[[[[]]]]]}'],
    ids=["deep-list", "deep-object", "huge", "surrogate", "wrong-shape"],
)
def test_a_hostile_status_annotation_is_unreadable_with_a_reason_never_an_exception(raw: str) -> None:
    status, problem = read_status({"canary.mop.dev/status": raw})
    assert status is None and problem is not None and "canary.mop.dev/status" in problem


def test_guard_mode_refuses_scale_to_zero() -> None:
    """Guard mode has one Deployment: scaling it to 0 would take the whole service down."""
    from canary.controller.configure import Configurator
    from canary.kube.bodies import DeploymentBody

    store = SLOStore()
    store.on_configmap("ADDED", {"metadata": {"namespace": "shop", "name": "slos"},
                                 "data": {"slo.yaml": slo("service: checkout, rollback: {action: scale-to-zero}")}})
    configurator = Configurator(store)

    def deployment(**annotations: str) -> DeploymentBody:
        return DeploymentBody({"metadata": {"namespace": "shop", "name": "checkout", "annotations": {
            "canary.mop.dev/enabled": "true", "canary.mop.dev/slo": "checkout", **annotations}}})

    guard = configurator.resolve(deployment())
    assert guard.spec is None and guard.error is not None and "scale-to-zero needs canary mode" in guard.error
    canary = configurator.resolve(deployment(**{"canary.mop.dev/baseline": "checkout-stable"}))
    assert canary.error is None and canary.spec is not None
