"""`canary validate` through the CLI: the shipped examples pass (files, a directory, a Kustomize
directory), bad values are refused with a hint, and `--cluster` validates what is live in the simulated
cluster through the real client."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from canary.cli import app
from canary.errors import ExitCode
from canary_testkit.kube import KubeSim

runner = CliRunner()
EXAMPLES = Path(__file__).parents[2] / "manifests" / "examples"


def slo(spec: str, name: str = "checkout", namespace: str = "shop") -> str:
    return ("apiVersion: canary.mop.dev/v1alpha1\nkind: ServiceSLO\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}")


def deployment(name: str, annotations: str, namespace: str = "shop") -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
            f"  annotations: {{canary.mop.dev/enabled: \"true\", {annotations}}}\n"
            "spec: {replicas: 1, selector: {matchLabels: {app: x}}, template: {metadata: {labels: {app: x}}, "
            "spec: {containers: [{name: app, image: x:1}]}}}\n")


def run(*args: str) -> Result:
    return runner.invoke(app, ["validate", *args])


def lines(result: Result, prefix: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(prefix)]


def test_the_shipped_examples_pass() -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    for args in (files, [str(EXAMPLES)]):
        result = run(*args)
        assert result.exit_code == 0, result.output
        ok = lines(result, "ok ")
        assert any("ServiceSLO shop/checkout (service checkout)" in line and "ConfigMap shop/checkout-slo" in line
                   for line in ok)
        assert any("ServiceSLO shop/cart (service cart)" in line for line in ok)
        assert any("Deployment shop/checkout-canary (canary of shop/checkout, SLO shop/checkout)" in line
                   for line in ok)
        assert any("Deployment shop/cart (guard mode, SLO shop/cart)" in line for line in ok)
        assert not lines(result, "error") and not lines(result, "warning")


def test_a_kustomize_directory(tmp_path: Path) -> None:
    for name in ("namespace.yaml", "guard-mode.yaml", "canary-mode.yaml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [namespace.yaml, guard-mode.yaml, canary-mode.yaml]\n")
    result = run("-k", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert len(lines(result, "ok ")) == 4
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    broken = run("-k", str(tmp_path))
    assert broken.exit_code == ExitCode.BAD_INPUT and "missing.yaml" in broken.output
    assert "Traceback" not in broken.output


def test_fraction_like_availability_and_unit_less_latency_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(slo("  service: checkout\n  objectives: {availability: 0.995, latencyP99: 500}\n"))
    result = run(str(path))
    assert result.exit_code == ExitCode.FAIL
    errors = lines(result, "error ")
    assert len(errors) == 2 and not lines(result, "ok ")
    assert "field spec.objectives.availability" in errors[0] and "did you mean 99.5?" in errors[0]
    assert "ServiceSLO shop/checkout" in errors[0]
    assert "field spec.objectives.latencyP99" in errors[1] and "500 seconds" in errors[1] and "500ms" in errors[1]
    path.write_text(slo("  service: checkout\n  objectives: {availability: 99.5, latencyP99: 500ms}\n"))
    assert run(str(path)).exit_code == 0


def test_unit_less_intervals_warn_and_strict_refuses(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(slo("  service: checkout\n  analysis: {interval: 30, window: 2m}\n"))
    result = run(str(path))
    assert result.exit_code == 0, result.output
    (warning,) = lines(result, "warning ")
    assert "field spec.analysis.interval" in warning and "30 seconds" in warning and "30s" in warning
    assert run("--strict", str(path)).exit_code == ExitCode.FAIL


def test_configmaps_and_deployments_are_checked_together(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    unlabelled = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: slos, namespace: shop}\ndata:\n  a.yaml: |\n"
                  + "".join(f"    {line}\n" for line in slo("  service: cart\n", name="cart").splitlines()))
    path.write_text("---\n".join([
        unlabelled,
        deployment("web", 'canary.mop.dev/interval: "soon"'),
        deployment("cart", "canary.mop.dev/slo: cart, canary.mop.dev/interval: 10m"),
        deployment("api", "canary.mop.dev/slo: nope, canary.mop.dev/baseline: api-stable"),
    ]))
    result = run(str(path))
    assert result.exit_code == ExitCode.FAIL
    output = result.output
    assert 'ConfigMap shop/slos: field metadata.labels: holds ServiceSLOs but is not labelled' in output
    web = next(line for line in lines(result, "error ") if "Deployment shop/web" in line)
    assert "annotation canary.mop.dev/interval" in web and "'soon'" in web and "(document 2)" in web
    cart = next(line for line in lines(result, "error ") if "Deployment shop/cart" in line)
    assert "interval 600s is longer than the SLO's window 120s" in cart
    warnings = [line for line in lines(result, "warning ") if "Deployment shop/api" in line]
    assert any("ServiceSLO shop/nope not found among the inputs" in w for w in warnings)
    assert any("Deployment shop/api-stable not found" in w for w in warnings)
    assert any("ServiceSLO shop/cart" in line for line in lines(result, "ok "))


def test_nothing_to_validate_is_bad_input(tmp_path: Path) -> None:
    assert run().exit_code == ExitCode.BAD_INPUT
    missing = run(str(tmp_path / "nope.yaml"))
    assert missing.exit_code == ExitCode.BAD_INPUT and "no such file" in missing.output
    (tmp_path / "other.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
    empty = run(str(tmp_path / "other.yaml"))
    assert empty.exit_code == ExitCode.BAD_INPUT and "no ServiceSLO" in empty.output


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeSim, str]]:
    with KubeSim(rollout_step_seconds=None) as sim:
        sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        yield sim, str(sim.write_kubeconfig(tmp_path / "kubeconfig"))


def test_cluster_validates_what_is_live(cluster: tuple[KubeSim, str], tmp_path: Path) -> None:
    import yaml

    sim, kubeconfig = cluster
    for doc in yaml.safe_load_all((EXAMPLES / "guard-mode.yaml").read_text()):
        sim.create(doc)
    live = run("--cluster", "--kubeconfig", kubeconfig)
    assert live.exit_code == 0, live.output
    assert any("ServiceSLO shop/cart" in line and "cluster" in line for line in lines(live, "ok "))
    assert any("Deployment shop/cart (guard mode, SLO shop/cart) in cluster" in line for line in lines(live, "ok "))
    # A Deployment in a file that names an SLO only the cluster has: found with --cluster.
    mine = tmp_path / "mine.yaml"
    mine.write_text(deployment("orders", "canary.mop.dev/slo: cart"))
    assert run(str(mine), "--cluster", "--kubeconfig", kubeconfig, "--strict").exit_code == 0
    # What is live but broken: an SLO ConfigMap with a fraction-like availability, a Deployment naming no SLO.
    sim.create({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "bad", "namespace": "shop", "labels": {"canary.mop.dev/slo-config": "true"}},
                "data": {"slo.yaml": slo("  service: pay\n  objectives: {availability: 0.99}\n", name="pay")}})
    sim.create(yaml.safe_load(deployment("lost", "canary.mop.dev/slo: gone")))
    broken = run("--cluster", "-n", "shop", "--kubeconfig", kubeconfig)
    assert broken.exit_code == ExitCode.FAIL
    errors = lines(broken, "error ")
    assert any("ConfigMap shop/bad key slo.yaml" in e and "did you mean 99?" in e for e in errors)
    assert any("Deployment shop/lost" in e and "ServiceSLO shop/gone not found" in e for e in errors)
