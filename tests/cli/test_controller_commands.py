"""`canary status`, `canary abort|promote|retry` against the simulated cluster with the real client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli import app
from canary.controller.status import STATUS_ANNOTATION, CanaryStatus
from canary.kube.deployments import template_hash
from canary.vocabulary import CanaryPhase, FreezeCause, Mode
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
    assert "Analysing" in row and "guard" in row and " 7 " in row and "4/10 ✔ 1/1 ✖" in row
    fresh = next(line for line in result.output.splitlines() if "default/fresh" in line)
    assert "not seen by the controller yet" in fresh
    assert "plain" not in result.output


def _with_status(sim: KubeSim, name: str, phase: CanaryPhase, **kw: object) -> str:
    """Give Deployment `name` a status about its current template; returns that template's hash."""
    current = template_hash(sim.get("apps/v1", "deployments", "default", name) or {})
    st = CanaryStatus.model_validate({"phase": phase, "mode": Mode.GUARD, "template_hash": current, **kw})
    sim.patch("apps/v1", "deployments", "default", name,
              {"metadata": {"annotations": {STATUS_ANNOTATION: st.to_annotation(), "canary.mop.dev/abort": None,
                                            "canary.mop.dev/promote": None, "canary.mop.dev/retry": None}}})
    return current


P = CanaryPhase
REJECTED = {"freeze_cause": FreezeCause.REJECTED}
# (phase, status extras, whether the template is rejected) -> commands that act; every other one refuses.
CASES = [
    (P.WAITING, {}, False, {"abort", "promote"}),
    (P.ANALYSING, {}, False, {"abort", "promote"}),
    (P.PROMOTING, {}, False, {"abort", "promote"}),
    (P.FROZEN, {"freeze_cause": FreezeCause.BACKEND}, False, {"abort", "promote"}),
    (P.FROZEN, REJECTED, True, {"abort", "retry"}),
    (P.ROLLED_BACK, {}, True, {"retry"}),
    (P.ROLLED_BACK, {}, False, set()),
    (P.ROLLING_BACK, {}, False, set()),
    (P.SUCCEEDED, {}, False, set()),
    (P.INVALID, {}, False, set()),
]


@pytest.mark.parametrize(("phase", "extra", "rejected", "acts"), CASES)
def test_abort_promote_retry_act_per_phase_or_refuse_in_one_line(
    cluster: tuple[KubeSim, str], phase: CanaryPhase, extra: dict[str, object], rejected: bool, acts: set[str]
) -> None:
    sim, kubeconfig = cluster
    deployment(sim, "checkout", {"canary.mop.dev/enabled": "true"})
    for command in ("abort", "promote", "retry"):
        current = template_hash(sim.get("apps/v1", "deployments", "default", "checkout") or {})
        current = _with_status(sim, "checkout", phase, rejected=[current] if rejected else [], **extra)
        result = runner.invoke(app, [command, "default/checkout", "--kubeconfig", kubeconfig])
        annotations = sim.get("apps/v1", "deployments", "default", "checkout")["metadata"]["annotations"]  # type: ignore[index]
        if command in acts:
            assert result.exit_code == 0, result.output
            assert annotations[f"canary.mop.dev/{command}"] == current, "the request names the template it is for"
        else:
            assert result.exit_code == 1, f"{command} in {phase}: {result.output}"
            assert len(result.output.strip().splitlines()) == 1 and "default/checkout" in result.output
            assert f"canary.mop.dev/{command}" not in annotations


def test_requests_refuse_unknown_targets_and_a_template_the_controller_has_not_seen(
    cluster: tuple[KubeSim, str],
) -> None:
    sim, kubeconfig = cluster
    deployment(sim, "checkout", {"canary.mop.dev/enabled": "true"})
    deployment(sim, "plain", {})
    fresh = runner.invoke(app, ["abort", "default/checkout", "--kubeconfig", kubeconfig])
    assert fresh.exit_code == 1 and "not analysed it yet" in fresh.output
    _with_status(sim, "checkout", CanaryPhase.ANALYSING)
    sim.patch("apps/v1", "deployments", "default", "checkout",
              {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop/app:v9"}]}}}},
              patch_type="application/strategic-merge-patch+json")
    moved = runner.invoke(app, ["abort", "default/checkout", "--kubeconfig", kubeconfig])
    assert moved.exit_code == 1 and "has not caught up" in moved.output
    refused = runner.invoke(app, ["abort", "default/plain", "--kubeconfig", kubeconfig])
    assert refused.exit_code == 1 and "not annotated" in refused.output
    missing = runner.invoke(app, ["abort", "default/nope", "--kubeconfig", kubeconfig])
    assert missing.exit_code == 4 and "Deployment default/nope not found" in missing.output
    bad = runner.invoke(app, ["retry", "checkout", "--kubeconfig", kubeconfig])
    assert bad.exit_code == 4 and "NAMESPACE/NAME" in bad.output
