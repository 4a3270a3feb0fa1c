"""RBAC in the simulated API server, with kube-apiserver's semantics: the authorizer on its own (verbs,
subresources, groups, names, wildcards, binding scope, subjects), then over HTTP with the real client
(tokens, 401/403 Status bodies, the verb each request maps to, the rules of manifests/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.rbac import secret_grant
from canary_testkit.kube import KubeSim
from canary_testkit.kube.identity import install_controller_identity
from canary_testkit.kube.rbac import (
    ANONYMOUS,
    Attributes,
    Policy,
    UserInfo,
    field_selector_name,
    forbidden,
    resource_verb,
    service_account_user,
)

from .manifests import deployment

SA = service_account_user("mop-canary", "mop-canary")
ALICE = UserInfo("alice", ("dev", "system:authenticated"))


def policy(*objects: dict[str, Any]) -> Policy:
    by_kind = {"clusterroles": "ClusterRole", "roles": "Role", "clusterrolebindings": "ClusterRoleBinding",
               "rolebindings": "RoleBinding"}

    def listing(plural: str, namespace: str | None) -> list[dict[str, Any]]:
        return [
            o for o in objects
            if o["kind"] == by_kind[plural] and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]

    return Policy(listing)


def role(kind: str, name: str, *rules: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "rules": list(rules)}


def binding(kind: str, role_kind: str, role_name: str, *subjects: dict[str, Any],
            namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": f"{role_name}-binding", **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "subjects": list(subjects),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name}}


def rule(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **({"resourceNames": names} if names else {})}


SA_SUBJECT = {"kind": "ServiceAccount", "name": "mop-canary", "namespace": "mop-canary"}


def deploy(verb: str, namespace: str = "shop", name: str = "checkout", subresource: str = "") -> Attributes:
    return Attributes(verb, "apps", "deployments", subresource, namespace, name)


# -- the authorizer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "named", "watch", "verb"),
    [
        ("GET", True, False, "get"), ("GET", False, False, "list"), ("GET", False, True, "watch"),
        ("POST", False, False, "create"), ("PUT", True, False, "update"), ("PATCH", True, False, "patch"),
        ("DELETE", True, False, "delete"), ("DELETE", False, False, "deletecollection"),
    ],
)
def test_verbs_follow_the_method_and_whether_a_name_or_watch_is_given(
    method: str, named: bool, watch: bool, verb: str
) -> None:
    assert resource_verb(method, named=named, watch=watch) == verb


def test_a_cluster_role_bound_cluster_wide_grants_exactly_its_verbs_everywhere() -> None:
    p = policy(role("ClusterRole", "reader", rule(["apps"], ["deployments"], ["get", "list", "watch", "patch"])),
               binding("ClusterRoleBinding", "ClusterRole", "reader", SA_SUBJECT))
    for verb in ("get", "list", "watch", "patch"):
        assert p.allows(SA, deploy(verb, namespace="any"))
    for verb in ("update", "create", "delete", "deletecollection"):
        assert not p.allows(SA, deploy(verb))
    assert not p.allows(SA, Attributes("get", "", "deployments", "", "shop", "x")), "the group must match"
    assert not p.allows(SA, Attributes("get", "apps", "replicasets", "", "shop", "x"))


def test_subresources_are_separate_resources_unless_a_wildcard_names_them() -> None:
    only = policy(role("ClusterRole", "r", rule(["apps"], ["deployments"], ["*"])),
                  binding("ClusterRoleBinding", "ClusterRole", "r", SA_SUBJECT))
    assert only.allows(SA, deploy("patch"))
    assert not only.allows(SA, deploy("patch", subresource="scale"))
    assert not only.allows(SA, deploy("update", subresource="status"))
    scale = policy(role("ClusterRole", "r", rule(["apps"], ["deployments/scale"], ["patch"])),
                   binding("ClusterRoleBinding", "ClusterRole", "r", SA_SUBJECT))
    assert scale.allows(SA, deploy("patch", subresource="scale"))
    assert not scale.allows(SA, deploy("patch"))
    any_status = policy(role("ClusterRole", "r", rule(["*"], ["*/status"], ["get"])),
                        binding("ClusterRoleBinding", "ClusterRole", "r", SA_SUBJECT))
    assert any_status.allows(SA, deploy("get", subresource="status"))
    assert not any_status.allows(SA, deploy("get"))
    everything = policy(role("ClusterRole", "r", rule(["*"], ["*"], ["*"])),
                        binding("ClusterRoleBinding", "ClusterRole", "r", SA_SUBJECT))
    assert everything.allows(SA, deploy("patch", subresource="scale"))
    assert everything.allows(SA, Attributes("delete", "", "secrets", "", "kube-system", "x"))


def test_resource_names_restrict_get_but_cannot_allow_create_or_unselected_lists() -> None:
    p = policy(role("Role", "slack", rule([""], ["secrets"], ["get", "list", "watch", "create"], ["slack"]),
                    namespace="shop"),
               binding("RoleBinding", "Role", "slack", SA_SUBJECT, namespace="shop"))
    assert p.allows(SA, Attributes("get", "", "secrets", "", "shop", "slack"))
    assert not p.allows(SA, Attributes("get", "", "secrets", "", "shop", "db-password"))
    assert not p.allows(SA, Attributes("list", "", "secrets", "", "shop", ""))
    assert not p.allows(SA, Attributes("create", "", "secrets", "", "shop", ""))
    # a list or watch is named by a metadata.name field selector, as kube-apiserver does
    assert field_selector_name("metadata.name=slack") == "slack"
    assert field_selector_name("metadata.namespace=shop,metadata.name==slack") == "slack"
    assert field_selector_name("metadata.name!=slack") == ""
    assert p.allows(SA, Attributes("watch", "", "secrets", "", "shop", "slack"))


def test_a_role_binding_to_a_cluster_role_grants_only_in_its_namespace() -> None:
    p = policy(role("ClusterRole", "editor", rule(["apps"], ["deployments"], ["patch"])),
               binding("RoleBinding", "ClusterRole", "editor", SA_SUBJECT, namespace="shop"))
    assert p.allows(SA, deploy("patch", namespace="shop"))
    assert not p.allows(SA, deploy("patch", namespace="billing"))
    nodes = policy(role("ClusterRole", "nodes", rule([""], ["nodes"], ["get"])),
                   binding("RoleBinding", "ClusterRole", "nodes", SA_SUBJECT, namespace="shop"))
    assert not nodes.allows(SA, Attributes("get", "", "nodes", "", "", "n1")), "no cluster-scoped grant"


def test_a_role_binding_needs_its_role_in_the_same_namespace() -> None:
    p = policy(role("Role", "editor", rule(["apps"], ["deployments"], ["patch"]), namespace="billing"),
               binding("RoleBinding", "Role", "editor", SA_SUBJECT, namespace="shop"))
    assert not p.allows(SA, deploy("patch", namespace="shop"))
    assert not p.allows(SA, deploy("patch", namespace="billing"))


def test_user_group_and_service_account_subjects() -> None:
    rules = role("ClusterRole", "r", rule(["apps"], ["deployments"], ["get"]))
    assert policy(rules, binding("ClusterRoleBinding", "ClusterRole", "r", {"kind": "User", "name": "alice"})).allows(
        ALICE, deploy("get"))
    assert policy(rules, binding("ClusterRoleBinding", "ClusterRole", "r", {"kind": "Group", "name": "dev"})).allows(
        ALICE, deploy("get"))
    by_group = policy(rules, binding("ClusterRoleBinding", "ClusterRole", "r",
                                     {"kind": "Group", "name": "system:serviceaccounts:mop-canary"}))
    assert by_group.allows(SA, deploy("get"))
    assert not by_group.allows(service_account_user("other", "mop-canary"), deploy("get"))
    other_namespace = policy(rules, binding("ClusterRoleBinding", "ClusterRole", "r",
                                            {"kind": "ServiceAccount", "name": "mop-canary", "namespace": "other"}))
    assert not other_namespace.allows(SA, deploy("get"))
    as_user = policy(rules, binding("ClusterRoleBinding", "ClusterRole", "r",
                                    {"kind": "User", "name": "system:serviceaccount:mop-canary:mop-canary"}))
    assert as_user.allows(SA, deploy("get"))
    assert not policy(rules).allows(ALICE, deploy("get"))
    assert policy().allows(UserInfo("root", ("system:masters",)), deploy("delete"))


def test_discovery_is_open_to_authenticated_users_and_health_to_everyone() -> None:
    p = policy()
    assert p.allows(SA, Attributes("get", path="/apis/apps/v1"))
    assert not p.allows(ANONYMOUS, Attributes("get", path="/apis/apps/v1"))
    assert p.allows(ANONYMOUS, Attributes("get", path="/healthz"))
    assert not p.allows(SA, Attributes("post", path="/apis"))


def test_the_forbidden_message_is_worded_as_kube_apiservers() -> None:
    err = forbidden(SA, deploy("update"))
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == (
        'deployments.apps "checkout" is forbidden: User "system:serviceaccount:mop-canary:mop-canary" cannot '
        'update resource "deployments" in API group "apps" in the namespace "shop"'
    )
    assert forbidden(ALICE, Attributes("list", "", "secrets")).message == (
        'secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" at the cluster scope'
    )
    assert 'cannot patch resource "deployments/scale"' in forbidden(SA, deploy("patch", subresource="scale")).message


# -- over HTTP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeSim]:
    with KubeSim(rollout_step_seconds=None) as sim:
        sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        manifest = deployment("checkout")
        manifest["metadata"]["namespace"] = "shop"
        sim.create(manifest)
        yield sim


def status_body(err: ApiException) -> dict[str, Any]:
    return dict(json.loads(err.body))


def test_the_controller_may_do_what_manifests_grant_and_nothing_else(cluster: KubeSim) -> None:
    identity = install_controller_identity(cluster)
    api = cluster.api_client(identity.token)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    assert apps.read_namespaced_deployment("checkout", "shop").metadata.name == "checkout"
    apps.patch_namespaced_deployment("checkout", "shop", {"metadata": {"annotations": {"a": "b"}}})
    apps.list_replica_set_for_all_namespaces()
    with pytest.raises(ApiException) as err:
        body = apps.read_namespaced_deployment("checkout", "shop")
        apps.replace_namespaced_deployment("checkout", "shop", body)
    assert err.value.status == 403
    status = status_body(err.value)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Forbidden", 403)
    assert status["message"] == (
        f'deployments.apps "checkout" is forbidden: User "{identity.user}" cannot update resource "deployments" '
        'in API group "apps" in the namespace "shop"'
    )
    assert status["details"] == {"name": "checkout", "group": "apps", "kind": "deployments"}
    with pytest.raises(ApiException) as err:
        apps.delete_namespaced_deployment("checkout", "shop")
    assert err.value.status == 403
    with pytest.raises(ApiException) as err:
        core.list_namespaced_secret("shop")
    assert err.value.status == 403
    assert [d.message for d in cluster.denials_for(identity.user)][-3:] == [
        f'deployments.apps "checkout" is forbidden: User "{identity.user}" cannot update resource "deployments" '
        'in API group "apps" in the namespace "shop"',
        f'deployments.apps "checkout" is forbidden: User "{identity.user}" cannot delete resource "deployments" '
        'in API group "apps" in the namespace "shop"',
        f'secrets is forbidden: User "{identity.user}" cannot list resource "secrets" in API group "" '
        'in the namespace "shop"',
    ]
    assert cluster.get("apps/v1", "deployments", "shop", "checkout") is not None


def test_webhook_secrets_are_readable_only_as_granted(cluster: KubeSim) -> None:
    identity = install_controller_identity(cluster)
    core = client.CoreV1Api(cluster.api_client(identity.token))
    for name in ("slack", "db-password"):
        cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"},
                        "stringData": {"url": "http://127.0.0.1:9/"}})
    with pytest.raises(ApiException) as err:
        core.read_namespaced_secret("slack", "shop")
    assert err.value.status == 403
    for obj in secret_grant("shop", ["slack"], (identity.namespace, identity.service_account)):
        cluster.apply(obj, manager="canary")
    assert core.read_namespaced_secret("slack", "shop").data
    with pytest.raises(ApiException) as err:
        core.read_namespaced_secret("db-password", "shop")
    assert err.value.status == 403
    with pytest.raises(ApiException) as err:
        core.list_namespaced_secret("shop")
    assert err.value.status == 403


def test_tokens_authenticate_and_die_with_their_service_account(cluster: KubeSim) -> None:
    cluster.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ci", "namespace": "shop"}})
    token = cluster.service_account_token("shop", "ci")
    apps = client.AppsV1Api(cluster.api_client(token))
    with pytest.raises(ApiException) as err:
        apps.list_namespaced_deployment("shop")
    assert err.value.status == 403
    message = status_body(err.value)["message"]
    assert 'User "system:serviceaccount:shop:ci" cannot list resource "deployments"' in message
    cluster.delete("v1", "serviceaccounts", "shop", "ci")
    with pytest.raises(ApiException) as err:
        apps.list_namespaced_deployment("shop")
    assert err.value.status == 401
    assert status_body(err.value)["reason"] == "Unauthorized"
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(cluster.api_client("not-a-token")).list_namespaced_deployment("shop")
    assert err.value.status == 401


def test_server_side_apply_that_creates_needs_create_too(cluster: KubeSim) -> None:
    cluster.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": "patcher", "namespace": "shop"},
                    "rules": [rule([""], ["configmaps"], ["patch"])]})
    cluster.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "patcher", "namespace": "shop"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "patcher"},
                    "subjects": [{"kind": "User", "name": "bob"}]})
    core = client.CoreV1Api(cluster.api_client(cluster.user_token("bob")))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"}}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("cfg", "shop", body, field_manager="bob",
                                         _content_type="application/apply-patch+yaml")
    assert err.value.status == 403
    assert 'cannot create resource "configmaps"' in status_body(err.value)["message"]
    cluster.create(body)
    core.patch_namespaced_config_map("cfg", "shop", {**body, "data": {"a": "1"}}, field_manager="bob",
                                     _content_type="application/apply-patch+yaml")
    assert (cluster.get("v1", "configmaps", "shop", "cfg") or {}).get("data") == {"a": "1"}
