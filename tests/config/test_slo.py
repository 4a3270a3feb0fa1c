"""ServiceSLO loading: the documented forms parse, every bad document is reported with its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli import app
from canary.config.loader import load_configmap, parse_documents
from canary.config.slo import RollbackAction, default_slo
from canary.config.units import format_duration, parse_duration, parse_percent

FULL = """
apiVersion: canary.mop.dev/v1alpha1
kind: ServiceSLO
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  objectives: {availability: 99.5, latencyP99: 500ms, traceErrorRate: 2%}
  comparison: {maxErrorRateRatio: 2.0, maxLatencyRatio: 1.5}
  analysis: {interval: 30s, window: 2m, minRequests: 50, successfulChecks: 10, failedChecks: 3,
             backendErrorLimit: 4, onBackendFailure: hold}
  rollback: {action: undo}
  notify:
    slack: {webhookSecretRef: {name: slack-webhook, key: url}, channel: "#checkout", mention: "@oncall"}
"""


def test_the_documented_example_parses_to_the_documented_values() -> None:
    result = parse_documents(FULL, "slo.yaml")
    assert result.errors == []
    (slo,) = result.slos
    spec = slo.spec
    assert slo.ref == "shop/checkout"
    assert (spec.objectives.availability, spec.objectives.latency_p99, spec.objectives.trace_error_rate) == (
        99.5, 0.5, 2.0,
    )
    assert (spec.analysis.interval, spec.analysis.window) == (30, 120)
    assert spec.rollback.action is RollbackAction.UNDO
    assert spec.notify.slack is not None and spec.notify.slack.webhook_secret_ref is not None
    assert spec.notify.slack.webhook_secret_ref.name == "slack-webhook"


def test_only_service_is_required() -> None:
    (slo,) = parse_documents("kind: ServiceSLO\napiVersion: canary.mop.dev/v1alpha1\nmetadata: {name: a}\n"
                             "spec: {service: a}\n", "x").slos
    assert slo.spec == default_slo("a").spec


def test_one_bad_document_never_hides_the_good_ones() -> None:
    text = FULL + """---
apiVersion: canary.mop.dev/v1alpha1
kind: ServiceSLO
metadata: {name: broken, namespace: shop}
spec:
  service: cart
  objectives: {availability: 101, latencyP99: fast}
  analysis: {failedCheks: 3, interval: 5m, window: 1m}
---
apiVersion: canary.mop.dev/v1alpha1
kind: ServiceSLO
metadata: {name: nospec}
"""
    result = parse_documents(text, "slos.yaml")
    assert [s.metadata.name for s in result.slos] == ["checkout"]
    fields = {(e.object, e.field) for e in result.errors}
    assert ("shop/broken", "spec.objectives.availability") in fields
    assert ("shop/broken", "spec.objectives.latencyP99") in fields
    assert ("shop/broken", "spec.analysis.failedCheks") in fields
    assert ("nospec", "spec") in fields
    assert all(e.source == "slos.yaml" and e.document in (1, 2) for e in result.errors)


def test_invalid_yaml_reports_the_line() -> None:
    (error,) = parse_documents("kind: ServiceSLO\nspec: [unclosed\n", "bad.yaml").errors
    assert "invalid YAML" in error.reason and "line" in error.reason


def test_configmap_slos_take_the_configmap_namespace() -> None:
    cm = {"metadata": {"name": "slos", "namespace": "shop"}, "data": {"checkout.yaml": FULL.replace(
        "namespace: shop", "namespace: shop"), "other.yaml": "kind: ServiceSLO\napiVersion: canary.mop.dev/v1alpha1\n"
        "metadata: {name: cart}\nspec: {service: cart}\n"}}
    result = load_configmap(cm)
    assert sorted(s.ref for s in result.slos) == ["shop/cart", "shop/checkout"]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2m", 120), ("500ms", 0.5), ("1h30m", 5400), (45, 45)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("bad", ["", "5 minutes", "-1s", "1x", "0s"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_percentages() -> None:
    assert parse_percent("2%") == 2 and parse_percent(99.5) == 99.5 and parse_percent("99.9") == 99.9
    with pytest.raises(ValueError, match="between 0 and 100"):
        parse_percent("120%")


def test_validate_command_prints_every_error_and_exits_1(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(FULL)
    bad.write_text(FULL.replace("availability: 99.5", "availability: lots").replace("2m", "2 minutes"))
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(good)])
    assert ok.exit_code == 0 and "shop/checkout" in ok.output
    failed = runner.invoke(app, ["validate", str(good), str(bad)])
    assert failed.exit_code == 1
    assert "spec.objectives.availability" in failed.output and "spec.analysis.window" in failed.output
