"""`canary stack apply|diff` and `canary up` against the simulated Kubernetes API server on 127.0.0.1."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from canary.cli import app
from canary.stack import Applier, ApplyError, Change
from canary.stack.readiness import workload_ready
from canary.stack.render import ref
from canary_testkit.kube import APPLY_PATCH, KubeSim

Manifest = dict[str, Any]
PLURALS = {
    "namespaces": "Namespace",
    "serviceaccounts": "ServiceAccount",
    "secrets": "Secret",
    "configmaps": "ConfigMap",
    "clusterroles": "ClusterRole",
    "clusterrolebindings": "ClusterRoleBinding",
    "roles": "Role",
    "rolebindings": "RoleBinding",
    "services": "Service",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "networkpolicies": "NetworkPolicy",
    "certificates": "Certificate",
    "clusterissuers": "ClusterIssuer",
}


def cert_manager_crd(kind: str, plural: str, scope: str) -> Manifest:
    """The part of cert-manager's CustomResourceDefinition a server needs to serve the kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": kind + "List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def install_cert_manager(sim: KubeSim) -> None:
    """What installing cert-manager leaves behind that the stack relies on: its CRDs and namespace."""
    for kind, plural, scope in [
        ("Certificate", "certificates", "Namespaced"),
        ("ClusterIssuer", "clusterissuers", "Cluster"),
    ]:
        sim.create(cert_manager_crd(kind, plural, scope))
    sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}})


@pytest.fixture
def sim() -> Iterator[KubeSim]:
    with KubeSim(rollout_step_seconds=0.02) as server:
        install_cert_manager(server)
        yield server


def applier(sim: KubeSim, tmp_path: Path, **kw: Any) -> Applier:
    return Applier(
        sim.api_client(), poll_seconds=0.02, timeout_seconds=20, discovery_cache_file=str(tmp_path / "disc.json"), **kw
    )


def applied_in_order(sim: KubeSim) -> list[tuple[str, str]]:
    """(kind, name) of every server-side apply request, in the order the server received them."""
    out = []
    for r in sim.requests:
        if r.method == "PATCH" and r.content_type.startswith(APPLY_PATCH):
            parts = r.path.strip("/").split("/")
            out.append((PLURALS[parts[-2]], parts[-1]))
    return out


def test_apply_creates_everything_in_dependency_order(sim: KubeSim, dev: list[Manifest], tmp_path: Path) -> None:
    report = applier(sim, tmp_path).apply(copy.deepcopy(dev))
    assert report.counts() == {Change.CREATED: len(dev), Change.CONFIGURED: 0, Change.UNCHANGED: 0}
    order = applied_in_order(sim)
    assert len(order) == len(dev) and order[0] == ("Namespace", "mop")
    position = {item: i for i, item in enumerate(order)}
    workloads = [i for i, (kind, _) in enumerate(order) if kind in {"Deployment", "StatefulSet", "DaemonSet"}]
    assert max(i for i, (kind, _) in enumerate(order) if kind not in {"Deployment", "StatefulSet", "DaemonSet"}) < min(
        workloads
    )
    storage = max(
        position[(k, n)] for k, n in [("StatefulSet", "minio"), ("Deployment", "memcached"), ("StatefulSet", "kafka")]
    )
    backends = [position[("StatefulSet", n)] for n in ("tempo-live-store", "mimir", "loki")]
    pipeline = [position[("StatefulSet", "alloy")], position[("DaemonSet", "obi")]]
    assert storage < min(backends) and max(backends) < min(pipeline)
    assert max(pipeline) < position[("Deployment", "grafana")] == len(order) - 1
    assert sim.get("apps/v1", "statefulsets", "mop", "tempo-live-store")["spec"]["replicas"] == 3
    # certificates and NetworkPolicies come before any pod that mounts or is guarded by them
    assert max(i for i, (kind, _) in enumerate(order) if kind in {"Certificate", "NetworkPolicy"}) < min(workloads)
    assert sim.get("v1", "configmaps", "mop", "alloy")["data"]["config.alloy"].startswith("logging {")
    # every write was a server-side apply by the mop-canary field manager
    managers = {
        r.query.get("fieldManager")
        for r in sim.requests
        if r.method == "PATCH" and r.content_type.startswith(APPLY_PATCH)
    }
    assert managers == {"mop-canary"}


def test_reapply_is_a_no_op_and_a_change_is_reported_configured(
    sim: KubeSim, dev: list[Manifest], tmp_path: Path
) -> None:
    applier(sim, tmp_path).apply(copy.deepcopy(dev))
    version = sim.resource_version
    again = applier(sim, tmp_path).apply(copy.deepcopy(dev))
    assert again.counts()[Change.UNCHANGED] == len(dev) and not again.changed
    assert sim.resource_version == version
    changed = copy.deepcopy(dev)
    tempo = next(o for o in changed if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "tempo-live-store")
    tempo["spec"]["replicas"] = 5
    report = applier(sim, tmp_path).apply(changed)
    (configured,) = [r for r in report.results if r.change is Change.CONFIGURED]
    assert configured.ref == "StatefulSet mop/tempo-live-store"
    assert "-  replicas: 3\n+  replicas: 5" in configured.diff
    assert sim.get("apps/v1", "statefulsets", "mop", "tempo-live-store")["spec"]["replicas"] == 5


def test_server_dry_run_stores_nothing(sim: KubeSim, dev: list[Manifest], tmp_path: Path) -> None:
    report = applier(sim, tmp_path, dry_run=True).apply(copy.deepcopy(dev))
    assert report.dry_run and report.counts()[Change.CREATED] == len(dev)
    assert sim.get("v1", "namespaces", None, "mop") is None
    applied = [r for r in sim.requests if r.method == "PATCH"]
    assert applied and all(r.query.get("dryRun") == "All" for r in applied)


def test_a_rejected_object_stops_the_apply_with_an_error_naming_it(
    sim: KubeSim, dev: list[Manifest], tmp_path: Path
) -> None:
    objects = copy.deepcopy(dev)
    bad = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "loki")
    bad["metadata"]["labels"]["app.kubernetes.io/version"] = "not a valid label!"
    with pytest.raises(ApplyError) as err:
        applier(sim, tmp_path).apply(objects)
    assert err.value.ref == "ConfigMap mop/loki"
    assert "422" in str(err.value) and "metadata.labels" in str(err.value) and "not a valid label!" in str(err.value)
    # nothing after it was applied: no workload exists
    assert sim.get("apps/v1", "statefulsets", "mop", "loki") is None
    assert sim.get("v1", "configmaps", "mop", "loki") is None


def test_a_server_error_names_the_object(sim: KubeSim, dev: list[Manifest], tmp_path: Path) -> None:
    sim.fail_next("PATCH /api/v1/namespaces/mop/configmaps/tempo", status=500, message="etcdserver: request timed out")
    with pytest.raises(ApplyError, match=r"ConfigMap mop/tempo: rejected by the API server \(500 .*request timed out"):
        applier(sim, tmp_path).apply(copy.deepcopy(dev))


def test_without_cert_manager_nothing_is_written_and_the_error_says_what_to_install(
    dev: list[Manifest], tmp_path: Path
) -> None:
    with KubeSim(rollout_step_seconds=0.02) as bare:
        with pytest.raises(
            ApplyError,
            match=r"Certificate mop/alloy: the cluster serves no Certificate in cert-manager.io/v1 "
            r"\(install cert-manager first",
        ):
            applier(bare, tmp_path).apply(copy.deepcopy(dev))
        assert not [r for r in bare.requests if r.method in {"PATCH", "POST", "PUT"}]


def test_an_unknown_kind_is_reported_before_anything_is_written(sim: KubeSim, tmp_path: Path) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}}
    with pytest.raises(ApplyError, match=r"Widget default/w: the cluster serves no Widget in example.com/v1"):
        applier(sim, tmp_path).apply([widget])


def test_readiness_follows_rollout_status() -> None:
    base = {"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": 3}}
    stale = {**base, "status": {"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3}}
    assert workload_ready(stale) == (False, "waiting for the controller to observe the new generation")
    rolling = {
        **base,
        "status": {
            "observedGeneration": 2,
            "readyReplicas": 3,
            "updatedReplicas": 1,
            "currentRevision": "a",
            "updateRevision": "b",
        },
    }
    assert workload_ready(rolling)[0] is False and "rolling to revision b" in workload_ready(rolling)[1]
    done = {
        **base,
        "status": {
            "observedGeneration": 2,
            "readyReplicas": 3,
            "updatedReplicas": 3,
            "currentRevision": "b",
            "updateRevision": "b",
        },
    }
    assert workload_ready(done) == (True, "3/3 ready")
    ds = {
        "kind": "DaemonSet",
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 4,
            "updatedNumberScheduled": 4,
            "numberAvailable": 3,
        },
    }
    assert workload_ready(ds) == (False, "3/4 nodes ready, 4 updated")
    deploy = {
        "kind": "Deployment",
        "metadata": {"generation": 1},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2},
    }
    assert workload_ready(deploy) == (False, "2/2 updated, old replicas terminating")


def test_canary_up_applies_the_stack_then_the_controller_and_diff_sees_nothing_left(
    sim: KubeSim, tmp_path: Path, dev: list[Manifest], controller: list[Manifest]
) -> None:
    kubeconfig = str(sim.write_kubeconfig(tmp_path / "kubeconfig"))
    runner = CliRunner()
    up = runner.invoke(app, ["up", "--env", "dev", "--kubeconfig", kubeconfig, "--timeout", "30"])
    assert up.exit_code == 0, up.output
    assert "Deployment mop-canary/mop-canary created" in up.output
    order = applied_in_order(sim)
    assert order.index(("Deployment", "grafana")) < order.index(("Deployment", "mop-canary")) == len(order) - 1
    deployment = sim.get("apps/v1", "deployments", "mop-canary", "mop-canary")
    assert deployment["status"]["availableReplicas"] == 2
    diff = runner.invoke(app, ["stack", "diff", "--env", "dev", "--kubeconfig", kubeconfig])
    assert diff.exit_code == 0, diff.output
    assert f"0 to create, 0 to change, {len(dev)} unchanged" in diff.output
    bigger = runner.invoke(app, ["stack", "diff", "--env", "dev", "--profile", "medium", "--kubeconfig", kubeconfig])
    assert bigger.exit_code == 1
    assert "StatefulSet mop/tempo-live-store" in bigger.output and re.search(r"\+\s+cpu: '3'", bigger.output)
    dry = runner.invoke(
        app,
        ["stack", "apply", "--env", "dev", "--profile", "medium", "--kubeconfig", kubeconfig, "--dry-run", "server"],
    )
    assert dry.exit_code == 0, dry.output
    assert "dry run (server): nothing was stored" in dry.output
    assert (
        sim.get("apps/v1", "statefulsets", "mop", "tempo-live-store")["spec"]["template"]["spec"]["containers"][0][
            "resources"
        ]["requests"]["cpu"]
        == "1"
    )
    assert ref(controller[0]) == "Namespace mop-canary"


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_env = runner.invoke(app, ["stack", "render", "--env", "qa"])
    assert bad_env.exit_code == 4 and "unknown environment 'qa'" in bad_env.output
    missing = runner.invoke(app, ["stack", "render", "--env", "dev", "--stack-dir", str(tmp_path)])
    assert missing.exit_code == 4 and "is not a stack directory" in missing.output
    rendered = runner.invoke(app, ["stack", "render", "--env", "dev"])
    assert rendered.exit_code == 0 and rendered.output.startswith("---\napiVersion: v1\nkind: Namespace\n")
    unreachable = runner.invoke(
        app, ["stack", "apply", "--env", "dev", "--kubeconfig", str(tmp_path / "none"), "--timeout", "5"]
    )
    assert unreachable.exit_code == 4 and "none" in unreachable.output
