"""Pure reads that decide safety: which GitOps agent owns a template, whether a Deployment seen for
the first time is still rolling out, and whether a rejected template could still serve (per mode)."""

from __future__ import annotations

from typing import Any

import pytest

from canary.controller.configure import Configurator
from canary.controller.slostore import SLOStore
from canary.controller.snapshot import Snapshot, gitops_agent, mid_rollout, take_snapshot
from canary.kube.bodies import DeploymentBody, ReplicaSetBody
from canary.kube.deployments import template_hash


def deployment(**meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "checkout", "namespace": "shop", **meta},
            "spec": {"replicas": 4, "template": {"spec": {"containers": [{"name": "app", "image": "a:v2"}]}}}}


def managed(manager: str, spec_fields: dict[str, Any]) -> dict[str, Any]:
    return {"manager": manager, "operation": "Apply", "fieldsV1": {"f:spec": spec_fields}}


@pytest.mark.parametrize(("meta", "agent"), [
    ({"managedFields": [managed("argocd-controller", {"f:template": {}})]}, "Argo CD"),
    ({"managedFields": [managed("kustomize-controller", {"f:template": {}, "f:replicas": {}})]}, "Flux"),
    ({"managedFields": [managed("helm-controller", {"f:template": {}})]}, "Flux"),
    ({"labels": {"argocd.argoproj.io/instance": "shop"}}, "Argo CD"),
    ({"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/checkout"}}, "Argo CD"),
    ({"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}, "Flux"),
    ({"labels": {"helm.toolkit.fluxcd.io/name": "checkout"}}, "Flux"),
    ({"labels": {"app.kubernetes.io/managed-by": "Helm"}}, "Helm"),
    ({"annotations": {"meta.helm.sh/release-name": "checkout"}}, "Helm"),
])
def test_gitops_agents_are_recognised(meta: dict[str, Any], agent: str) -> None:
    assert gitops_agent(DeploymentBody(deployment(**meta))).startswith(agent)


def test_no_agent_when_nobody_applies_the_template_from_git() -> None:
    only_replicas = {"managedFields": [managed("argocd-controller", {"f:replicas": {}})]}
    kubectl = {"managedFields": [managed("kubectl-client-side-apply", {"f:template": {}})],
               "labels": {"app.kubernetes.io/managed-by": "kustomize"}}
    for meta in (only_replicas, kubectl, {}):
        assert gitops_agent(DeploymentBody(deployment(**meta))) == ""


def rs(image: str, replicas: int, ready: int | None = None) -> dict[str, Any]:
    return {"metadata": {"name": f"checkout-{image}"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"readyReplicas": replicas if ready is None else ready}}


def rss(*replicasets: dict[str, Any]) -> tuple[ReplicaSetBody, ...]:
    return tuple(ReplicaSetBody(r) for r in replicasets)


def test_first_sight_is_mid_rollout_while_another_replicaset_runs_pods() -> None:
    current = template_hash(rs("a:v2", 0))
    stable = template_hash(rs("a:v1", 0))
    assert mid_rollout(current, rss(rs("a:v1", 3), rs("a:v2", 1))) == stable, "under way"
    assert mid_rollout(current, rss(rs("a:v1", 4))) == stable, "applied, paused before its first pod"
    assert mid_rollout(current, rss(rs("a:v1", 0, ready=1), rs("a:v2", 4))) == stable, "old pods still ready"
    assert mid_rollout(current, rss(rs("a:v0", 0), rs("a:v1", 0), rs("a:v2", 4))) == "", "rolled out: adopt"


def snapshot(spec: dict[str, Any], replicasets: list[dict[str, Any]], baseline: str | None = None) -> Snapshot:
    annotations = {"canary.mop.dev/enabled": "true", **({"canary.mop.dev/baseline": baseline} if baseline else {})}
    d = deployment(annotations=annotations)
    d["spec"].update(spec)
    base = deployment() if baseline else None
    return take_snapshot(d, lambda _: replicasets, Configurator(SLOStore()), lambda ns, name: base)


def test_a_rejected_template_could_serve_when_unpaused_or_scaled() -> None:
    def serving(snap: Snapshot) -> bool:
        assert snap.error is None
        return snap.strategy.serving_rejected(snap)

    rejected = rs("a:v2", 0)
    assert not serving(snapshot({"paused": True}, [rejected])), "guard mode: paused, its ReplicaSet at 0"
    assert serving(snapshot({"paused": True}, [rs("a:v2", 1)])), "guard mode: its ReplicaSet has a pod"
    assert serving(snapshot({}, [rejected])), "guard mode: the rollout would go on"
    assert serving(snapshot({"replicas": 2}, [], baseline="checkout-stable")), "canary mode: asks for pods"
    assert not serving(snapshot({"replicas": 0}, [], baseline="checkout-stable")), "canary mode: scaled to 0"
