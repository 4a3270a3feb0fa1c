"""Alerts reach somebody, and the stack's own SLOs (99.9% ingestion availability, queries under 1 s)
have recording rules, multi-window burn-rate alerts (checked with promtool's rule unit tests), a
Watchdog, absent() alerts and a dashboard."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary_testkit.prometheus import find_binary
from tests.stack.conftest import find

Manifest = dict[str, Any]


def _rules(objects: list[Manifest]) -> dict[str, Any]:
    return dict(yaml.safe_load(find(objects, "ConfigMap", "mimir-rules")["data"]["mop-pipeline.yaml"]))


def _promtool_test(tmp_path: Path, objects: list[Manifest], tests: list[dict[str, Any]]) -> None:
    (tmp_path / "rules.yaml").write_text(find(objects, "ConfigMap", "mimir-rules")["data"]["mop-pipeline.yaml"])
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    promtool = find_binary("promtool", "PROMTOOL_BIN")
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _ingestion(failed_per_minute: int) -> list[dict[str, str]]:
    """Alloy sending 10000 spans a minute, `failed_per_minute` of them failing, for 3 hours."""
    return [
        {
            "series": 'otelcol_exporter_sent_spans_total{job="mop/alloy"}',
            "values": f"0+{10000 - failed_per_minute}x180",
        },
        {"series": 'otelcol_exporter_send_failed_spans_total{job="mop/alloy"}', "values": f"0+{failed_per_minute}x180"},
    ]


@pytest.mark.prometheus
def test_ingestion_burn_rate_pages_on_a_fast_burn_and_stays_quiet_within_budget(
    dev: list[Manifest], tmp_path: Path
) -> None:
    fast_burn = {
        "exp_labels": {"severity": "critical", "slo": "ingestion"},
        "exp_annotations": {"summary": "IngestionAvailability SLO (99.9%) burns its error budget fast"},
    }
    # the slow-burn ticket fires too (Alertmanager inhibits it while the page fires: same alertname)
    slow_burn = {
        "exp_labels": {"severity": "warning", "slo": "ingestion"},
        "exp_annotations": {"summary": "IngestionAvailability SLO (99.9%) burns its error budget slowly"},
    }
    _promtool_test(
        tmp_path,
        dev,
        [
            {  # 2% of sends fail: 20x the 0.1% budget, above the 14.4x page threshold on 1h and 5m
                "interval": "1m",
                "input_series": _ingestion(200),
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "MopIngestionAvailabilityBudgetBurn", "exp_alerts": []},
                    {"eval_time": "5m", "alertname": "MopIngestionAvailabilityBudgetBurn", "exp_alerts": [fast_burn]},
                    {
                        "eval_time": "30m",
                        "alertname": "MopIngestionAvailabilityBudgetBurn",
                        "exp_alerts": [fast_burn, slow_burn],
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": "round(mop_slo:ingestion_errors:ratio_rate1h * 1000)",
                        "eval_time": "2h",
                        "exp_samples": [{"labels": "{}", "value": 20}],
                    }
                ],
            },
            {  # 0.05% fail: half the budget, no page and no ticket
                "interval": "1m",
                "input_series": _ingestion(5),
                "alert_rule_test": [
                    {"eval_time": "3h", "alertname": "MopIngestionAvailabilityBudgetBurn", "exp_alerts": []},
                ],
            },
        ],
    )


@pytest.mark.prometheus
def test_query_latency_burn_rate_fires_when_too_many_queries_take_over_a_second(
    dev: list[Manifest], tmp_path: Path
) -> None:
    route = 'route="prometheus_api_v1_query_range"'
    _promtool_test(
        tmp_path,
        dev,
        [
            {  # 100 queries a minute, 20 of them slower than 1 s: 20x the 1% budget
                "interval": "1m",
                "input_series": [
                    {"series": f'cortex_request_duration_seconds_bucket{{{route}, le="1"}}', "values": "0+80x120"},
                    {"series": f'cortex_request_duration_seconds_bucket{{{route}, le="+Inf"}}', "values": "0+100x120"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "MopQueryLatencyBudgetBurn",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "slo": "query_latency"},
                                "exp_annotations": {"summary": "QueryLatency SLO (99%) burns its error budget fast"},
                            }
                        ],
                    },
                ],
            },
        ],
    )


@pytest.mark.prometheus
def test_watchdog_always_fires_and_a_vanished_component_is_alerted(dev: list[Manifest], tmp_path: Path) -> None:
    jobs = [r["expr"] for g in _rules(dev)["groups"] for r in g["rules"] if r.get("alert") == "MopComponentAbsent"]
    components = [e.split('job="mop/')[1].split('"')[0] for e in jobs]
    workloads = {o["metadata"]["name"] for o in dev if o["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}}
    scraped = {
        o["metadata"]["name"]
        for o in dev
        if o["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}
        and o["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"
    }
    assert set(components) == scraped - {"minio"} and set(components) <= workloads
    (watchdog,) = [r["annotations"] for g in _rules(dev)["groups"] for r in g["rules"] if r.get("alert") == "Watchdog"]
    _promtool_test(
        tmp_path,
        dev,
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'up{{job="mop/{c}", instance="{c}-0"}}', "values": "1x30"}
                    for c in components
                    if c != "loki"
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "1m",
                        "alertname": "Watchdog",
                        "exp_alerts": [{"exp_labels": {"severity": "none"}, "exp_annotations": watchdog}],
                    },
                    {
                        "eval_time": "15m",
                        "alertname": "MopComponentAbsent",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "component": "loki", "job": "mop/loki"},
                                "exp_annotations": {
                                    "summary": "No loki target has been scraped for 10 minutes "
                                    "(not deployed, or discovery broken)"
                                },
                            }
                        ],
                    },
                ],
            },
        ],
    )


def test_alerts_are_routed_to_a_receiver_with_an_integration_and_the_watchdog_to_a_dead_mans_switch(
    dev: list[Manifest],
) -> None:
    config = yaml.safe_load(find(dev, "ConfigMap", "mimir")["data"]["alertmanager-fallback.yaml"])
    receivers = {r["name"]: r for r in config["receivers"]}
    default = receivers[config["route"]["receiver"]]
    integrations = [k for k in default if k.endswith("_configs")]
    assert integrations and all(default[k] for k in integrations), "the default receiver notifies nobody"
    (watchdog,) = [r for r in config["route"]["routes"] if r["matchers"] == ['alertname="Watchdog"']]
    assert receivers[watchdog["receiver"]]["webhook_configs"][0]["url_file"].startswith("/etc/mimir/alerting/")
    assert watchdog["repeat_interval"] == "1m"
    # the receiver's credentials are files of a Secret mounted where the config reads them
    pod = find(dev, "StatefulSet", "mimir")["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/etc/mimir/alerting"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "mop-alerting"
    assert default["slack_configs"][0]["api_url_file"].startswith("/etc/mimir/alerting/")


def test_the_slo_dashboard_shows_both_slos_and_their_budgets(dev: list[Manifest]) -> None:
    dashboard = json.loads(find(dev, "ConfigMap", "grafana-dashboards")["data"]["mop-slo.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    recorded = {r["record"] for g in _rules(dev)["groups"] for r in g["rules"] if "record" in r}
    assert {"mop_slo:ingestion_errors:ratio_rate30m", "mop_slo:query_latency_errors:ratio_rate3d"} <= recorded
    assert "mop_slo:ingestion_errors" in exprs and "mop_slo:query_latency_errors" in exprs
    assert "/ 0.001" in exprs and "/ 0.01" in exprs
