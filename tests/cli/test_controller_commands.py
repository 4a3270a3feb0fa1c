"""`canary status`, `canary abort` and `canary promote` against the simulated cluster with the real client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli import app
from canary.controller.status import STATUS_ANNOTATION, CanaryPhase, CanaryStatus
from canary.notify.events import Mode
from canary_testkit.kube import KubeSim

runner = CliRunner()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeSim, str]]:
    with KubeSim(rollout_step_seconds=None) as sim:
        yield sim, str(sim.write_kubeconfig(tmp_path / "kubeconfig"))


def deployment(sim: KubeSim, name: str, annotations: dict[str, str]) -> None:
    labels = {"app": name}
    sim.create({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "default", "annotations": annotations},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "app", "image": "shop/app:v1"}]}}}})


def test_status_lists_guarded_deployments_only(cluster: tuple[KubeSim, str]) -> None:
    sim, kubeconfig = cluster
    st = CanaryStatus(phase=CanaryPhase.ANALYSING, mode=Mode.GUARD, revision="7", checks_passed=4, checks_failed=1,
                      started_at=datetime.now(UTC))
    deployment(sim, "checkout", {"canary.mop.dev/enabled": "true", STATUS_ANNOTATION: st.to_annotation()})
    deployment(sim, "fresh", {"canary.mop.dev/enabled": "true"})
    deployment(sim, "plain", {})
    result = runner.invoke(app, ["status", "--kubeconfig", kubeconfig, "-n", "default"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "default/checkout" in line)
    assert "Analysing" in row and "guard" in row and " 7 " in row and "4/10 ✔ 1/3 ✖" in row
    fresh = next(line for line in result.output.splitlines() if "default/fresh" in line)
    assert "not seen by the controller yet" in fresh
    assert "plain" not in result.output


def test_abort_and_promote_set_the_annotations(cluster: tuple[KubeSim, str]) -> None:
    sim, kubeconfig = cluster
    deployment(sim, "checkout", {"canary.mop.dev/enabled": "true"})
    deployment(sim, "plain", {})
    assert runner.invoke(app, ["abort", "default/checkout", "--kubeconfig", kubeconfig]).exit_code == 0
    annotations = sim.get("apps/v1", "deployments", "default", "checkout")["metadata"]["annotations"]  # type: ignore[index]
    assert annotations["canary.mop.dev/abort"] == "true"
    assert runner.invoke(app, ["promote", "default/checkout", "--kubeconfig", kubeconfig]).exit_code == 0
    annotations = sim.get("apps/v1", "deployments", "default", "checkout")["metadata"]["annotations"]  # type: ignore[index]
    assert annotations["canary.mop.dev/skip"] == annotations["canary.mop.dev/promote"] == "true"
    refused = runner.invoke(app, ["abort", "default/plain", "--kubeconfig", kubeconfig])
    assert refused.exit_code == 1 and "not annotated" in refused.output
    missing = runner.invoke(app, ["abort", "default/nope", "--kubeconfig", kubeconfig])
    assert missing.exit_code == 4 and "Deployment default/nope not found" in missing.output
    bad = runner.invoke(app, ["abort", "checkout", "--kubeconfig", kubeconfig])
    assert bad.exit_code == 4 and "NAMESPACE/NAME" in bad.output
