"""The smaller findings: panel layout, exemplar and trace-to-logs links, enrichment before the
load-balancing hop, service account tokens, pinned image tags."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.stack import alloy_syntax
from tests.stack.conftest import COMBINATIONS, find

Manifest = dict[str, Any]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
# Tags checked against their projects' published releases (see stack/README.md, "Images").
VERIFIED_IMAGES = {
    "docker.io/otel/ebpf-instrument:v0.5.0",
    "docker.io/grafana/alloy:v1.21.2",
    "docker.io/apache/kafka:4.0.0",
    "docker.io/grafana/tempo:3.0.2",
    "docker.io/grafana/mimir:3.0.2",
    "docker.io/grafana/loki:3.7.5",
    "docker.io/grafana/grafana:13.1.0",
    "docker.io/library/memcached:1.6.44",
    "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
}
API_CLIENTS = {"alloy", "obi"}  # the only pods that talk to the Kubernetes API


def test_every_panel_has_a_grid_position_inside_24_columns_and_none_overlap(dev: list[Manifest]) -> None:
    for file, text in find(dev, "ConfigMap", "grafana-dashboards")["data"].items():
        cells: set[tuple[int, int]] = set()
        for panel in json.loads(text)["panels"]:
            pos = panel.get("gridPos")
            assert pos and set(pos) == {"x", "y", "w", "h"}, f"{file}: {panel['title']} has no gridPos"
            assert pos["x"] + pos["w"] <= 24, f"{file}: {panel['title']}"
            mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not mine & cells, f"{file}: {panel['title']} overlaps another panel"
            cells |= mine


def test_exemplars_link_to_tempo_under_every_label_the_stack_writes_them_with(dev: list[Manifest]) -> None:
    text = find(dev, "ConfigMap", "grafana-provisioning")["data"]["datasources.yaml"]
    mimir = next(d for d in yaml.safe_load(text)["datasources"] if d["uid"] == "mop-mimir")
    destinations = {d["name"]: d["datasourceUid"] for d in mimir["jsonData"]["exemplarTraceIdDestinations"]}
    # trace_id: Alloy's span metrics and OTLP metrics (otelcol.exporter.prometheus); traceID: Tempo's
    # metrics-generator, which remote-writes exemplars with that label.
    alloy = find(dev, "ConfigMap", "alloy")["data"]["config.alloy"]
    tempo = yaml.safe_load(find(dev, "ConfigMap", "tempo")["data"]["tempo.yaml"])
    assert (
        "exemplars {\n    enabled = true" in alloy
        and tempo["metrics_generator"]["storage"]["remote_write"][0]["send_exemplars"]
    )
    assert destinations == {"trace_id": "mop-tempo", "traceID": "mop-tempo"}


def test_trace_to_logs_uses_the_structured_metadata_of_otlp_logs(dev: list[Manifest]) -> None:
    text = find(dev, "ConfigMap", "grafana-provisioning")["data"]["datasources.yaml"].replace("$$", "$")
    sources = {d["uid"]: d for d in yaml.safe_load(text)["datasources"]}
    logs = sources["mop-tempo"]["jsonData"]["tracesToLogsV2"]
    assert logs["customQuery"] is True
    assert logs["query"].endswith('| trace_id="${__trace.traceId}"')  # a label filter, not a line search
    derived = sources["mop-loki"]["jsonData"]["derivedFields"]
    assert {"name": "trace_id", "matcherType": "label", "matcherRegex": "trace_id"}.items() <= derived[0].items()
    loki = yaml.safe_load(find(dev, "ConfigMap", "loki")["data"]["loki.yaml"])
    assert loki["limits_config"]["allow_structured_metadata"] is True


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_kubernetes_attributes_are_added_before_the_load_balancing_hop(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    edges = alloy_syntax.graph(find(stacks[(env, profile)], "ConfigMap", "alloy")["data"]["config.alloy"])
    enrich = "otelcol.processor.k8sattributes.default"
    balance = "otelcol.exporter.loadbalancing.traces"
    assert edges["otelcol.receiver.otlp.ingress"] == {enrich}
    assert balance in alloy_syntax.reachable(edges, enrich)
    # past the hop the connection is another Alloy replica: nothing enriches there
    assert enrich not in alloy_syntax.reachable(edges, "otelcol.receiver.otlp.balanced")


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_service_account_tokens_are_mounted_only_where_the_api_is_used(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
    for workload in (o for o in objects if o["kind"] in WORKLOADS):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        account = accounts.get(pod.get("serviceAccountName", ""), {})
        mounted = pod.get("automountServiceAccountToken", account.get("automountServiceAccountToken", True))
        assert mounted is (name in API_CLIENTS), f"{name}: token mounted={mounted}"


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_every_image_is_a_verified_release_tag(stacks: dict[Any, list[Manifest]], env: str, profile: str) -> None:
    images = {
        c["image"]
        for o in stacks[(env, profile)]
        if o["kind"] in WORKLOADS
        for c in o["spec"]["template"]["spec"].get("initContainers", []) + o["spec"]["template"]["spec"]["containers"]
    }
    assert images <= VERIFIED_IMAGES, images - VERIFIED_IMAGES
