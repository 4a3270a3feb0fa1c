"""Unbiased trace signals in the stack: span metrics of every span before sampling, and 100% of the
traces of every workload the controller publishes as under analysis."""

from __future__ import annotations

import re
from typing import Any

import pytest

from canary.controller.settings import ControllerSettings
from tests.stack import alloy_syntax
from tests.stack.conftest import COMBINATIONS, find

Manifest = dict[str, Any]


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_span_metrics_are_computed_from_every_span_before_sampling(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    text = find(stacks[(env, profile)], "ConfigMap", "alloy")["data"]["config.alloy"]
    edges = alloy_syntax.graph(text)
    spanmetrics = "otelcol.connector.spanmetrics.unsampled"
    sampler = next(
        n for n in edges if n.startswith(("otelcol.processor.tail_sampling", "otelcol.processor.probabilistic"))
    )
    enrich = "otelcol.processor.k8sattributes.default"
    # reached from the enriched stream without passing the sampler, and ending in Mimir
    assert spanmetrics in alloy_syntax.reachable(edges, enrich, avoid=sampler)
    assert spanmetrics not in alloy_syntax.reachable(edges, sampler)
    assert "prometheus.remote_write.mimir" in alloy_syntax.reachable(edges, spanmetrics)
    for dimension in ("k8s.namespace.name", "k8s.deployment.name", "k8s.replicaset.name"):
        assert f'name = "{dimension}"' in text


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_tail_sampling_keeps_every_trace_of_the_workloads_under_analysis(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    text = find(objects, "ConfigMap", "alloy")["data"]["config.alloy"]
    policies = re.findall(r'policy \{\s+name = "([a-z]+)"', text)
    assert policies[0] == "analysed" and set(policies) == {"analysed", "errors", "slow", "sampled"}
    assert 'key    = "mop.workload"' in text
    assert 'values = string.split(coalesce(remote.kubernetes.configmap.sampling.data["workloads"], ""), ",")' in text
    # mop.workload is "namespace/deployment", set on the enriched stream before the balancing hop
    workload = 'Concat([attributes["k8s.namespace.name"], attributes["k8s.deployment.name"]], "/")'
    assert f'set(attributes["mop.workload"], {workload})' in text
    assert re.search(
        r'remote.kubernetes.configmap "sampling" \{\s+namespace\s+= "mop"\s+name\s+= "mop-canary-sampling"', text
    )
    configmap = find(objects, "ConfigMap", "mop-canary-sampling")
    assert "data" not in configmap  # the controller owns the data; re-applying the stack never resets it
    alloy_role = find(objects, "Role", "mop-alloy-sampling")["rules"]
    assert alloy_role == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["mop-canary-sampling"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    controller_role = find(objects, "Role", "mop-canary-sampling")
    assert controller_role["rules"][0]["verbs"] == ["get", "patch"]
    binding = find(objects, "RoleBinding", "mop-canary-sampling")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mop-canary", "namespace": "mop-canary"}]


def test_the_controller_publishes_into_the_configmap_alloy_reads(
    dev: list[Manifest], controller: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in find(controller, "ConfigMap", "mop-canary-settings")["data"].items():
        monkeypatch.setenv(key, value)
    settings = ControllerSettings()
    namespace, _, name = (settings.trace_sampling_configmap or "").partition("/")
    configmap = find(dev, "ConfigMap", name)
    assert configmap["metadata"]["namespace"] == namespace
    role = find(dev, "Role", "mop-canary-sampling")
    assert role["metadata"]["namespace"] == namespace and role["rules"][0]["resourceNames"] == [name]
