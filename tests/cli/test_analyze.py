"""`canary analyze` end to end against a real Prometheus (route prefix /prometheus) loaded with
OBI-shaped series: the verdict and the exit code a user scripts against."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli import app
from canary_testkit.prometheus import PrometheusServer
from tests.promdata import DataRange, scenarios_openmetrics, standard_scenarios

SLO = """apiVersion: canary.mop.dev/v1alpha1
kind: ServiceSLO
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  objectives: {availability: 98, latencyP99: 500ms}
  analysis: {window: 5m}
"""
runner = CliRunner()


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    with PrometheusServer(openmetrics=scenarios_openmetrics(standard_scenarios(), DataRange.ending_now())) as prom:
        yield prom


@pytest.fixture
def slo_file(tmp_path: Path) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(SLO)
    return path


def analyze(prom_url: str, slo: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["analyze", "--slo", str(slo), "--mimir-url", prom_url, *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("namespace", "code", "failing"),
    [
        ("errors", 1, {"availability", "error-rate-ratio"}),
        ("healthy", 0, set()),
        ("lowtraffic", 2, set()),
        ("latency", 1, {"latency-p99", "latency-ratio"}),
        ("grpc", 1, {"availability"}),
    ],
)
def test_guard_mode_verdicts(
    prometheus: PrometheusServer, slo_file: Path, namespace: str, code: int, failing: set[str]
) -> None:
    exit_code, output = analyze(prometheus.url, slo_file, "-n", namespace, "-d", "checkout", "-o", "json")
    assert exit_code == code, output
    result = json.loads(output)
    assert result["measurement"]["target"]["canary"]["replicaset"] == "checkout-7f6d5c4b3"
    assert [b["replicaset"] for b in result["measurement"]["target"]["baseline"]] == ["checkout-5d8f7c9b4"]
    failed = {c["name"] for c in result["verdict"]["checks"] if c["result"] == "fail"}
    assert failing <= failed
    if code != 1:
        assert not failed


def test_canary_mode_with_baseline_and_table_output(prometheus: PrometheusServer, slo_file: Path) -> None:
    slo_file.write_text(SLO.replace("service: checkout", "service: cart"))
    exit_code, output = analyze(
        prometheus.url, slo_file, "-n", "canarymode", "-d", "cart-canary", "--baseline", "cart"
    )
    assert exit_code == 1, output
    assert "verdict: fail" in output
    rows = [line.split("│") for line in output.splitlines() if "│" in line]
    assert any(cells[1].strip() == "availability" and cells[-2].strip() == "fail" for cells in rows)


def test_since_defaults_to_the_canary_replicaset_s_first_requests(prometheus: PrometheusServer, slo_file: Path) -> None:
    """The canary ReplicaSet first served 20 minutes before the data's end: its whole evidence is
    tested at one look, with bounds, e-values and the cumulative counts in the output."""
    code, output = analyze(prometheus.url, slo_file, "-n", "errors", "-d", "checkout", "-o", "json")
    assert code == 1, output
    result = json.loads(output)
    span = result["measurement"]["target"]["window"]
    assert 1100 <= span <= 1500, span  # ~20 min, to the presence sampling's step (+ the lag to now)
    availability = next(c for c in result["verdict"]["checks"] if c["name"] == "availability")
    assert availability["samples"] > 10 * 1000  # 10 req/s over ~20 min, not one window
    assert availability["lower"] > 0.1 and availability["e_value"] > 100
    assert result["cumulative"]["increments"] == 1


def test_since_flag_sets_the_span_and_a_bad_value_is_bad_input(prometheus: PrometheusServer, slo_file: Path) -> None:
    code, output = analyze(prometheus.url, slo_file, "-n", "healthy", "-d", "checkout", "--since", "5m", "-o", "json")
    assert code == 0, output
    assert json.loads(output)["measurement"]["target"]["window"] == 300
    code, output = analyze(prometheus.url, slo_file, "-n", "lowtraffic", "-d", "checkout", "--since", "soon")
    assert code == 4 and "--since" in output
    code, output = analyze(prometheus.url, slo_file, "-n", "healthy", "-d", "checkout", "--window", "10m")
    assert code == 0 and "bounds" in output and "e-value" in output and "shown below" in output, output


def test_unknown_deployment_is_inconclusive(prometheus: PrometheusServer, slo_file: Path) -> None:
    code, output = analyze(prometheus.url, slo_file, "-n", "errors", "-d", 'nope"} or vector(1) #')
    assert code == 2 and "no series" in output


def test_invalid_slo_is_bad_input(prometheus: PrometheusServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SLO.replace("availability: 98", "availability: most"))
    code, output = analyze(prometheus.url, bad, "-n", "errors", "-d", "checkout")
    assert code == 4 and "spec.objectives.availability" in output


def test_prometheus_down_is_a_backend_error(slo_file: Path) -> None:
    with PrometheusServer(openmetrics=scenarios_openmetrics(standard_scenarios()[:1], DataRange.ending_now())) as p:
        url = p.url
    code, output = analyze(url, slo_file, "-n", "errors", "-d", "checkout", "--baseline", "checkout-old")
    assert code == 3, output
    assert "mimir" in output
