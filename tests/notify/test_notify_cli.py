"""`canary notify test`: a sample rollback message through the real sinks (Slack sim, KubeSim Secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli import app
from canary_testkit.kube import KubeSim
from canary_testkit.slack import Reply, SlackSim

SLO = """\
apiVersion: canary.mop.dev/v1alpha1
kind: ServiceSLO
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  notify:
    slack:
      webhookSecretRef: {name: checkout-slack}
      channel: "#checkout"
      mention: "<!subteam^S0ONCALL>"
    webhook:
      urlSecretRef: {name: checkout-hook, key: endpoint}
"""


@pytest.fixture
def slo_file(tmp_path: Path) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(SLO)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["notify", "test", *args])
    return result.exit_code, result.output


def test_sends_a_sample_rollback_to_the_given_webhook(slack: SlackSim, slo_file: Path) -> None:
    code, output = run("--slo", str(slo_file), "--webhook-url", slack.url, "--grafana-url", "https://grafana.example")
    assert code == 0, output
    assert f"Slack webhook http://127.0.0.1:{slack.port}/services/T…/***: delivered" in output
    assert slack.token not in output
    [message] = slack.messages
    assert message["channel"] == "#checkout"
    assert message["text"].startswith(
        "<!subteam^S0ONCALL> checkout 1.5.0 rolled back: 3.2% of requests failing (shop/checkout): TEST MESSAGE"
    )
    body = str(message["blocks"])
    assert "*availability*" in body and "https://grafana.example/explore?" in body


def test_reports_slacks_refusal_and_exits_3(slack: SlackSim, slo_file: Path) -> None:
    slack.set_default(Reply.channel_not_found())
    code, output = run("--slo", str(slo_file), "--webhook-url", slack.url)
    assert code == 3  # a backend error
    assert "error HTTP 404 channel_not_found" in output and slack.token not in output


def test_reads_both_sinks_from_their_secrets(slo_file: Path, tmp_path: Path) -> None:
    with KubeSim(rollout_step_seconds=None) as kube, SlackSim() as slack, SlackSim(slack=False) as hook:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        for name, key, url in (("checkout-slack", "url", slack.url), ("checkout-hook", "endpoint", hook.url)):
            secret = {"metadata": {"name": name, "namespace": "shop"}, "stringData": {key: url}}
            kube.create({"apiVersion": "v1", "kind": "Secret", **secret})
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        code, output = run("--slo", str(slo_file), "--kubeconfig", str(kubeconfig))
        assert code == 0, output
        assert "Slack webhook" in output and "JSON webhook" in output and output.count(": delivered") == 2
        assert len(slack.messages) == 1
        [payload] = hook.messages
        assert payload["type"] == "rolled-back" and payload["namespace"] == "shop"

        kube.delete("v1", "secrets", "shop", "checkout-hook")
        code, output = run("--slo", str(slo_file), "--kubeconfig", str(kubeconfig))
        assert code == 3
        assert "webhook: error Secret shop/checkout-hook key 'endpoint': not found" in output


def test_an_slo_without_any_sink_needs_a_webhook_url(tmp_path: Path) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text("kind: ServiceSLO\napiVersion: canary.mop.dev/v1alpha1\nmetadata: {name: x}\nspec: {service: x}\n")
    code, output = run("--slo", str(path))
    assert code == 4  # bad input
    assert "ServiceSLO x names no webhook Secret" in output and "--webhook-url" in output
