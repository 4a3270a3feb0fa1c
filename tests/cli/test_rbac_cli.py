"""`canary rbac grant-secrets`: the Role and RoleBinding that let the controller (as the ServiceAccount of
manifests/) read exactly the webhook Secrets an application namespace's ServiceSLOs name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from canary.cli import app
from canary_testkit.kube import KubeSim
from canary_testkit.kube.identity import install_controller_identity

runner = CliRunner()
SLO = """
apiVersion: canary.mop.dev/v1alpha1
kind: ServiceSLO
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  notify:
    slack: {webhookSecretRef: {name: slack-webhook, key: url}}
    webhook: {urlSecretRef: {name: events-hook}}
---
apiVersion: canary.mop.dev/v1alpha1
kind: ServiceSLO
metadata: {name: billing, namespace: billing}
spec:
  service: billing
  notify:
    slack: {webhookSecretRef: {name: billing-slack}}
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeSim, str]]:
    with KubeSim(rollout_step_seconds=None) as sim:
        sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        yield sim, str(sim.write_kubeconfig(tmp_path / "kubeconfig"))


def test_prints_a_role_for_exactly_the_secrets_the_namespace_slos_name(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO)
    result = runner.invoke(app, ["rbac", "grant-secrets", "-n", "shop", "--slo", str(slo)])
    assert result.exit_code == 0, result.output
    role, binding = yaml.safe_load_all(result.output)
    assert (role["kind"], role["metadata"]["namespace"]) == ("Role", "shop")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                              "resourceNames": ["events-hook", "slack-webhook"], "verbs": ["get"]}]
    assert binding["kind"] == "RoleBinding" and binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": "mop-canary", "name": "mop-canary"}]


def test_refuses_to_grant_nothing_and_bad_service_accounts(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO)
    empty = runner.invoke(app, ["rbac", "grant-secrets", "-n", "other", "--slo", str(slo)])
    assert empty.exit_code == 4 and "namespace other: no Secret to grant" in empty.output
    bad = runner.invoke(app, ["rbac", "grant-secrets", "-n", "shop", "--secret", "s", "--service-account", "x"])
    assert bad.exit_code == 4 and "expected NAMESPACE/NAME" in bad.output


def test_apply_lets_the_controller_read_those_secrets_and_no_other(cluster: tuple[KubeSim, str]) -> None:
    sim, kubeconfig = cluster
    identity = install_controller_identity(sim)
    for name in ("slack-webhook", "db-password"):
        sim.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"},
                    "stringData": {"url": "http://127.0.0.1:9/"}})
    core = client.CoreV1Api(sim.api_client(identity.token))
    with pytest.raises(ApiException) as before:
        core.read_namespaced_secret("slack-webhook", "shop")
    assert before.value.status == 403
    result = runner.invoke(app, ["rbac", "grant-secrets", "-n", "shop", "--secret", "slack-webhook", "--apply",
                                 "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    assert "Role shop/mop-canary-webhook-secrets created" in result.output
    assert core.read_namespaced_secret("slack-webhook", "shop").data
    with pytest.raises(ApiException) as other:
        core.read_namespaced_secret("db-password", "shop")
    assert other.value.status == 403
    again = runner.invoke(app, ["rbac", "grant-secrets", "-n", "shop", "--secret", "slack-webhook", "--apply",
                                "--kubeconfig", kubeconfig])
    assert again.exit_code == 0 and "unchanged" in again.output, again.output
