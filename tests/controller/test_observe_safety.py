"""Pure reads that decide safety: which GitOps agent owns a template, and whether a Deployment seen for
the first time is still rolling out."""

from __future__ import annotations

from typing import Any

import pytest

from canary.controller.observe import gitops_agent, mid_rollout, serving_rejected
from canary.kube.deployments import template_hash
from canary.vocabulary import Mode


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
    assert gitops_agent(deployment(**meta)).startswith(agent)


def test_no_agent_when_nobody_applies_the_template_from_git() -> None:
    only_replicas = {"managedFields": [managed("argocd-controller", {"f:replicas": {}})]}
    kubectl = {"managedFields": [managed("kubectl-client-side-apply", {"f:template": {}})],
               "labels": {"app.kubernetes.io/managed-by": "kustomize"}}
    for meta in (only_replicas, kubectl, {}):
        assert gitops_agent(deployment(**meta)) == ""


def rs(image: str, replicas: int, ready: int | None = None) -> dict[str, Any]:
    return {"metadata": {"name": f"checkout-{image}"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"readyReplicas": replicas if ready is None else ready}}


def test_first_sight_is_mid_rollout_while_another_replicaset_runs_pods() -> None:
    current = template_hash(rs("a:v2", 0))
    stable = template_hash(rs("a:v1", 0))
    assert mid_rollout(current, [rs("a:v1", 3), rs("a:v2", 1)]) == stable, "under way"
    assert mid_rollout(current, [rs("a:v1", 4)]) == stable, "applied, paused before its first pod"
    assert mid_rollout(current, [rs("a:v1", 0, ready=1), rs("a:v2", 4)]) == stable, "old pods still ready"
    assert mid_rollout(current, [rs("a:v0", 0), rs("a:v1", 0), rs("a:v2", 4)]) == "", "rolled out: adopt"


def test_a_rejected_template_could_serve_when_unpaused_or_scaled() -> None:
    paused = {"spec": {"paused": True, "replicas": 4}}
    assert not serving_rejected(Mode.GUARD, paused, rs("a:v2", 0))
    assert serving_rejected(Mode.GUARD, paused, rs("a:v2", 1))
    assert serving_rejected(Mode.GUARD, {"spec": {"replicas": 4}}, rs("a:v2", 0))
    assert serving_rejected(Mode.CANARY, {"spec": {"replicas": 2}}, None)
    assert not serving_rejected(Mode.CANARY, {"spec": {"replicas": 0}}, None)
