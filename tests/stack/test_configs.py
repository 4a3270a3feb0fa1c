"""The component configs embedded in ConfigMaps: they parse, they reference what exists, and the
queries in dashboards and alert rules are valid PromQL over metrics the controller and OBI export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import _gojsonnet
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from canary.controller.metrics import ControllerMetrics
from canary.notify.notifier import notifications_counter
from canary.stack.render import _flatten as flatten
from canary.stack.render import repo_dir
from canary_testkit.prometheus import find_binary
from tests.stack import alloy_syntax
from tests.stack.conftest import COMBINATIONS, find

Manifest = dict[str, Any]
DATASOURCE_UIDS = {"mop-mimir", "mop-tempo", "mop-loki"}
OBI_METRICS = {
    f"{base}_{suffix}"
    for base in ("http_server_request_duration_seconds", "rpc_server_duration_seconds")
    for suffix in ("bucket", "count", "sum")
}
OBI_LABELS = {
    "service_name",
    "http_response_status_code",
    "k8s_namespace_name",
    "k8s_deployment_name",
    "k8s_replicaset_name",
    "rpc_grpc_status_code",
    "le",
}
# The stack's own metrics that "MOP health" and the alert rules use, by exporter.
STACK_METRICS = {
    "up",
    "process_resident_memory_bytes",  # every scrape target
    "otelcol_receiver_accepted_spans_total",
    "otelcol_receiver_refused_spans_total",  # Alloy (otelcol)
    "otelcol_exporter_send_failed_spans_total",
    "otelcol_exporter_send_failed_log_records_total",
    "prometheus_remote_storage_samples_failed_total",
    "loki_write_dropped_entries_total",  # Alloy writers
    "tempo_distributor_spans_received_total",
    "tempo_discarded_spans_total",
    "tempodb_compaction_outstanding_blocks",
    "cortex_distributor_received_samples_total",
    "cortex_discarded_samples_total",
    "cortex_ingester_memory_series",
    "cortex_compactor_last_successful_run_timestamp_seconds",  # Mimir
    "loki_distributor_lines_received_total",
    "loki_compactor_apply_retention_last_successful_run_timestamp_seconds",
    "otelcol_exporter_sent_spans_total",
    "otelcol_exporter_sent_log_records_total",
    "prometheus_remote_storage_samples_total",  # the ingestion SLI (Alloy's exporters)
    "cortex_request_duration_seconds_bucket",
    "tempo_request_duration_seconds_bucket",
    "loki_request_duration_seconds_bucket",  # the query latency SLI (each backend's HTTP server)
}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers outside strings, matchers, ranges and groupings
    that are not function calls or keywords."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    return {
        name for name in re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare) if name not in _KEYWORDS
    }


def controller_metric_names() -> set[str]:
    """The sample names the controller really exports (its own registry, as /metrics renders it)."""
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    notifications_counter(registry).labels(sink="slack", result="delivered").inc()
    metrics.checks.labels(namespace="a", deployment="b", result="pass").inc()
    metrics.phase.labels(namespace="a", deployment="b", phase="Analysing").set(1)
    metrics.last_value.labels(namespace="a", deployment="b", check="availability").set(0.01)
    metrics.phase_since.labels(namespace="a", deployment="b").set(1)
    metrics.rollbacks.labels(namespace="a", deployment="b", action="undo").inc()
    metrics.promotions.labels(namespace="a", deployment="b").inc()
    metrics.backend_query_seconds.labels(backend="mimir").observe(0.1)
    metrics.backend_errors.labels(backend="mimir", kind="timeout").inc()
    metrics.decision_seconds.labels(namespace="a", deployment="b").observe(0.1)
    metrics.canaries.labels(phase="Analysing").set(1)
    text = generate_latest(registry).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_every_yaml_config_parses(stacks: dict[Any, list[Manifest]]) -> None:
    for (env, profile), objects in stacks.items():
        for cm in (o for o in objects if o["kind"] == "ConfigMap"):
            for key, text in cm.get("data", {}).items():
                if key.endswith((".yaml", ".yml")):
                    assert isinstance(yaml.safe_load(text), dict), f"{env}/{profile} {cm['metadata']['name']} {key}"
                elif key.endswith(".json"):
                    assert isinstance(json.loads(text), dict)


def _render_snippet(overrides: str) -> list[Manifest]:
    lib = repo_dir("stack") / "lib"
    out = json.loads(
        _gojsonnet.evaluate_snippet("test", f"(import 'mop/mop.libsonnet').new({overrides})", jpathdir=[str(lib)])
    )
    objects: list[Manifest] = []
    flatten(out, "test", objects)
    return objects


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_alloy_config_is_balanced_and_references_defined_components(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    text = find(stacks[(env, profile)], "ConfigMap", "alloy")["data"]["config.alloy"]
    assert alloy_syntax.check(text) == []
    for needed in [
        "otelcol.processor.tail_sampling",
        "otelcol.exporter.loadbalancing",
        "otelcol.processor.k8sattributes",
        "prometheus.remote_write",
        "otelcol.exporter.otlphttp",
        "loki.write",
    ]:
        assert needed in text
    if env == "production":  # multi-destination: the archive receives the sampled traces too
        assert "otelcol.exporter.otlp.archive.input" in text and 'otelcol.exporter.otlp "archive"' in text


def test_probabilistic_sampling_and_extra_remote_write_render_consistent_alloy() -> None:
    objects = _render_snippet(
        "{env: 'dev', alloy: {sampling: 'probabilistic', extraRemoteWrite: ['https://metrics.example.com/push']}}"
    )
    text = find(objects, "ConfigMap", "alloy")["data"]["config.alloy"]
    assert alloy_syntax.check(text) == []
    assert "otelcol.processor.probabilistic_sampler" in text and "tail_sampling" not in text
    assert "prometheus.remote_write.extra_0.receiver" in text


def test_unknown_sampling_mode_fails_with_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=re.escape("alloy.sampling must be tail or probabilistic, got sometimes")):
        _render_snippet("{env: 'dev', alloy: {sampling: 'sometimes'}}")


def test_the_alloy_check_catches_dangling_references_and_unbalanced_blocks(dev: list[Manifest]) -> None:
    text = find(dev, "ConfigMap", "alloy")["data"]["config.alloy"]
    dangling = text.replace("otelcol.exporter.otlp.tempo.input", "otelcol.exporter.otlp.tmepo.input")
    assert any("tmepo" in p for p in alloy_syntax.check(dangling))
    wrong_export = text.replace("prometheus.remote_write.mimir.receiver", "prometheus.remote_write.mimir.input")
    assert any("no export 'input'" in p for p in alloy_syntax.check(wrong_export))
    assert any("never closed" in p for p in alloy_syntax.check(text + '\nloki.write "x" {\n'))


def test_object_storage_follows_the_provider() -> None:
    azure = _render_snippet("{env: 'dev', storage: {provider: 'azure', azure: {accountName: 'mopstore'}}}")
    tempo = yaml.safe_load(find(azure, "ConfigMap", "tempo")["data"]["tempo.yaml"])
    assert tempo["storage"]["trace"]["backend"] == "azure"
    assert tempo["storage"]["trace"]["azure"]["storage_account_name"] == "mopstore"
    loki = yaml.safe_load(find(azure, "ConfigMap", "loki")["data"]["loki.yaml"])
    assert loki["schema_config"]["configs"][0]["object_store"] == "azure"
    env = find(azure, "StatefulSet", "mimir")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["STORAGE_ACCOUNT_KEY"]
    tempo_env = find(azure, "StatefulSet", "tempo-block-builder")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in tempo_env] == ["STORAGE_ACCOUNT_KEY"]
    with pytest.raises(RuntimeError, match=re.escape("storage.provider must be s3, gcs or azure, got ftp")):
        _render_snippet("{env: 'dev', storage: {provider: 'ftp'}}")


def test_dev_ships_its_own_s3_and_the_others_use_the_cloud(stacks: dict[Any, list[Manifest]]) -> None:
    dev = stacks[("dev", "small")]
    mimir = yaml.safe_load(find(dev, "ConfigMap", "mimir")["data"]["mimir.yaml"])
    assert mimir["common"]["storage"]["s3"]["endpoint"] == "minio.mop.svc.cluster.local:9000"
    minio = find(dev, "StatefulSet", "minio")
    made = minio["spec"]["template"]["spec"]["initContainers"][0]["command"]
    buckets = {mimir["blocks_storage"]["s3"]["bucket_name"], mimir["alertmanager_storage"]["s3"]["bucket_name"]}
    assert {f"/data/{b}" for b in buckets} <= set(made)
    staging = stacks[("staging", "medium")]
    assert not [o for o in staging if o["metadata"]["name"] == "minio"]
    assert "amazonaws.com" in find(staging, "ConfigMap", "tempo")["data"]["tempo.yaml"]
    production = stacks[("production", "large")]
    tempo = yaml.safe_load(find(production, "ConfigMap", "tempo")["data"]["tempo.yaml"])
    assert tempo["storage"]["trace"]["backend"] == "gcs"
    builder = find(production, "StatefulSet", "tempo-block-builder")["spec"]["template"]["spec"]["containers"][0]
    assert not builder.get("env")
    assert "iam.gke.io/gcp-service-account" in find(production, "ServiceAccount", "tempo")["metadata"]["annotations"]


def _promtool() -> str:
    return find_binary("promtool", "PROMTOOL_BIN")


@pytest.mark.prometheus
def test_alert_rules_pass_promtool(dev: list[Manifest], tmp_path: Path) -> None:
    rules = find(dev, "ConfigMap", "mimir-rules")["data"]["mop-pipeline.yaml"]
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    result = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r["alert"] for g in yaml.safe_load(rules)["groups"] for r in g["rules"] if "alert" in r}
    assert {"MopTraceIngestionFailing", "MopSpansDropped", "MopMimirCompactorStuck"} <= names
    recorded = {r["record"] for g in yaml.safe_load(rules)["groups"] for r in g["rules"] if "record" in r}
    used = {m for g in yaml.safe_load(rules)["groups"] for r in g["rules"] for m in metric_names(r["expr"])}
    assert used <= STACK_METRICS | recorded, used - STACK_METRICS - recorded


@pytest.mark.prometheus
def test_metric_ingestion_alert_fires_when_remote_write_fails(dev: list[Manifest], tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(find(dev, "ConfigMap", "mimir-rules")["data"]["mop-pipeline.yaml"])
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yaml"],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [
                            {
                                "series": 'prometheus_remote_storage_samples_failed_total{job="mop/alloy"}',
                                "values": "0+10x30",
                            },
                        ],
                        "alert_rule_test": [
                            {"eval_time": "4m", "alertname": "MopMetricIngestionFailing", "exp_alerts": []},
                            {
                                "eval_time": "20m",
                                "alertname": "MopMetricIngestionFailing",
                                "exp_alerts": [
                                    {
                                        "exp_labels": {"severity": "critical"},
                                        "exp_annotations": {"summary": "Remote write to Mimir is failing"},
                                    }
                                ],
                            },
                        ],
                    }
                ],
            }
        )
    )
    result = subprocess.run(
        [_promtool(), "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _dashboards(objects: list[Manifest]) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in find(objects, "ConfigMap", "grafana-dashboards")["data"].items()}


def _grafana_expand(text: str) -> str:
    """What Grafana does to provisioning files: `$VAR`/`${VAR}` from the environment, `$$` -> `$`."""
    return re.sub(r"\$\$|\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: "$" if m.group(0) == "$$" else "", text)


def test_datasources_have_fixed_uids_and_correlations(dev: list[Manifest]) -> None:
    text = find(dev, "ConfigMap", "grafana-provisioning")["data"]["datasources.yaml"]
    sources = {d["uid"]: d for d in yaml.safe_load(_grafana_expand(text))["datasources"]}
    assert set(sources) == DATASOURCE_UIDS
    tempo = sources["mop-tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "mop-loki"
    assert tempo["tracesToMetrics"]["datasourceUid"] == "mop-mimir"
    assert tempo["serviceMap"]["datasourceUid"] == "mop-mimir"
    assert sources["mop-mimir"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "mop-tempo"
    derived = sources["mop-loki"]["jsonData"]["derivedFields"][1]
    assert derived["datasourceUid"] == "mop-tempo" and derived["url"] == "${__value.raw}"
    assert re.search(derived["matcherRegex"], 'msg="boom" trace_id=4bf92f3577b34da6a3ce929d0e0e4736').group(1) == (
        "4bf92f3577b34da6a3ce929d0e0e4736"
    )
    # Grafana's own template variables survive its environment expansion.
    for query in tempo["tracesToMetrics"]["queries"]:
        assert "{$__tags" in query["query"]


def _datasource_uids(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["datasource"]["uid"]] if isinstance(node.get("datasource"), dict) else []
        return own + [u for v in node.values() for u in _datasource_uids(v)]
    if isinstance(node, list):
        return [u for v in node for u in _datasource_uids(v)]
    return []


def _promql(dashboard: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"] if p["datasource"]["uid"] == "mop-mimir"]
    return queries


def _substitute(expr: str) -> str:
    """Grafana's variables as a Prometheus server would see them."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$namespace", "shop")
        .replace("$service", "checkout")
    )


def test_dashboards_reference_provisioned_datasources_and_real_metrics(dev: list[Manifest]) -> None:
    dashboards = _dashboards(dev)
    assert {d["title"] for d in dashboards.values()} == {"Canary analysis", "Service RED", "MOP health", "MOP SLOs"}
    controller = controller_metric_names()
    rules = yaml.safe_load(find(dev, "ConfigMap", "mimir-rules")["data"]["mop-pipeline.yaml"])
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    known = {
        "canary-analysis.json": controller,
        "service-red.json": OBI_METRICS,
        "mop-health.json": STACK_METRICS,
        "mop-slo.json": STACK_METRICS | recorded,
    }
    for file, dashboard in dashboards.items():
        assert set(_datasource_uids(dashboard)) <= DATASOURCE_UIDS, file
        assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
        for expr in _promql(dashboard):
            used = metric_names(expr)
            assert used, f"{file}: no metric in {expr}"
            assert used <= known[file], f"{file}: {used - known[file]} not exported"
    canary_used = {m for e in _promql(dashboards["canary-analysis.json"]) for m in metric_names(e)}
    assert {"canary_canaries", "canary_checks_total", "canary_rollbacks_total", "canary_decision_seconds_bucket"} <= (
        canary_used
    )
    assert metric_names('sum by (le) (rate(a_b{c="d{"}[5m])) / on (x) b offset 5m') == {"a_b", "b"}
    red = " ".join(_promql(dashboards["service-red.json"]))
    labels = set(re.findall(r"\b([a-z_]+)\s*(?:=~|!=|=)\s*\"", red)) | {
        label.strip() for group in re.findall(r"by \(([^)]*)\)", red) for label in group.split(",")
    }
    assert labels <= OBI_LABELS, labels - OBI_LABELS


@pytest.mark.prometheus
def test_every_dashboard_query_is_valid_promql(dev: list[Manifest], tmp_path: Path) -> None:
    exprs = [_substitute(e) for d in _dashboards(dev).values() for e in _promql(d)]
    rules = {
        "groups": [{"name": "dashboards", "rules": [{"record": f"q:{i}", "expr": e} for i, e in enumerate(exprs)]}]
    }
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(tmp_path / "queries.yaml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "bad.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "q:x", "expr": "sum(rate(x[5m])"}]}]})
    )
    bad = subprocess.run([_promtool(), "check", "rules", str(tmp_path / "bad.yaml")], capture_output=True, timeout=60)
    assert bad.returncode != 0
