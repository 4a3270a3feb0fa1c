"""The runtime's feeds: which informer events reconcile which Deployment (no cluster: the cache is a list
and the reconciler a recorder, so what is checked is only the routing)."""

from __future__ import annotations

import queue
from typing import Any

import pytest

from canary.analysis import Analyzer
from canary.controller.configure import Configurator
from canary.controller.metrics import ControllerMetrics
from canary.controller.runtime import Runtime
from canary.controller.slostore import SLOStore
from canary.controller.snapshot import Snapshot


def deployment(name: str, enabled: bool, **annotations: str) -> dict[str, Any]:
    if enabled:
        annotations["canary.mop.dev/enabled"] = "true"
    return {"metadata": {"namespace": "shop", "name": name, "uid": f"uid-{name}", "annotations": annotations},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": name}]}}}}


def replicaset(owner: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": f"{owner}-abc", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner, "uid": f"uid-{owner}"}]}}


class ListCache:
    def __init__(self, deployments: list[dict[str, Any]]) -> None:
        self.items = {d["metadata"]["name"]: d for d in deployments}

    def deployments(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return list(self.items.values())

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.items.get(name)

    def replicasets_of(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        return []

    def replicasets(self) -> list[dict[str, Any]]:
        return []


class Recorder:
    """Stands in for the Reconciler: records which Deployment each reconcile was about."""

    def __init__(self) -> None:
        self.seen: queue.Queue[str] = queue.Queue()

    def reconcile(self, snap: Snapshot, outcome: object = None) -> None:
        self.seen.put(snap.deployment.ref)


@pytest.fixture
def runtime() -> Any:
    deployments = [deployment("checkout", True), deployment("checkout-canary", True, **{
        "canary.mop.dev/baseline": "checkout"}), deployment("plain", False)]
    recorder = Recorder()
    slos = SLOStore()
    rt = Runtime(Configurator(slos), recorder, None, Analyzer(lambda _: None), slos,  # type: ignore[arg-type]
                 ControllerMetrics(), ListCache(deployments))
    rt.start()
    for d in deployments:
        rt.on_deployment("ADDED", d)
    rt.set_leader(True)
    yield rt, recorder, deployments
    rt.stop()


def drain(recorder: Recorder) -> set[str]:
    seen = set()
    try:
        while True:
            seen.add(recorder.seen.get(timeout=0.5))
    except queue.Empty:
        return seen


def test_a_replicaset_change_reconciles_its_guarded_deployment_only(runtime: Any) -> None:
    rt, recorder, _ = runtime
    assert drain(recorder) == {"shop/checkout", "shop/checkout-canary"}, "a new leader looks at every guarded one"
    rt.on_replicaset("MODIFIED", replicaset("checkout"))
    assert recorder.seen.get(timeout=5) == "shop/checkout"
    rt.on_replicaset("MODIFIED", replicaset("plain"))
    rt.on_replicaset("MODIFIED", {"metadata": {"namespace": "shop", "name": "orphan"}})
    assert drain(recorder) == set(), "ReplicaSets of unguarded Deployments, or of none, reconcile nothing"


def test_a_baseline_change_reconciles_its_canaries(runtime: Any) -> None:
    rt, recorder, deployments = runtime
    drain(recorder)
    rt.on_deployment("MODIFIED", deployments[0])
    assert drain(recorder) == {"shop/checkout", "shop/checkout-canary"}, "the promotion landing may settle it"
