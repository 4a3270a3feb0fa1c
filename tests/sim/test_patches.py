"""Merge, strategic-merge, JSON and server-side-apply patches, and dryRun, through the real client."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from canary_testkit.kube import KubeSim

from .manifests import deployment

APPLY = "application/apply-patch+yaml"


def _containers(apps: client.AppsV1Api) -> list[dict]:
    d = apps.read_namespaced_deployment("web", "default")
    return [
        {k: v for k, v in c.to_dict(serialize=True).items() if v is not None} for c in d.spec.template.spec.containers
    ]


def test_strategic_merge_merges_containers_by_name(apps: client.AppsV1Api) -> None:
    manifest = deployment()
    manifest["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    apps.create_namespaced_deployment("default", manifest)
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "app", "image": "web:2", "env": [{"name": "B", "value": "2"}]}]}
            }
        }
    }
    apps.patch_namespaced_deployment("web", "default", patch, _content_type="application/strategic-merge-patch+json")
    containers = _containers(apps)
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    assert containers[0]["image"] == "web:2"
    assert [e["name"] for e in containers[0]["env"]] == ["A", "B"]
    assert containers[0]["ports"][0]["containerPort"] == 8080


def test_merge_patch_replaces_lists_and_deletes_with_null(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    patch = {
        "metadata": {"labels": {"app": None, "team": "shop"}},
        "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "other:1"}]}}},
    }
    apps.patch_namespaced_deployment("web", "default", patch, _content_type="application/merge-patch+json")
    current = apps.read_namespaced_deployment("web", "default")
    assert current.metadata.labels == {"team": "shop"}
    assert _containers(apps) == [{"name": "only", "image": "other:1"}]


def test_json_patch_with_a_failed_test_is_rejected(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    ops = [
        {"op": "add", "path": "/metadata/annotations", "value": {"canary.mop.dev/status": "{}"}},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "web:3"},
    ]
    apps.patch_namespaced_deployment("web", "default", ops)
    current = apps.read_namespaced_deployment("web", "default")
    assert current.metadata.annotations["canary.mop.dev/status"] == "{}"
    assert current.spec.template.spec.containers[0].image == "web:3"
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(
            "web", "default", [{"op": "test", "path": "/spec/replicas", "value": 99}, {"op": "remove", "path": "/spec"}]
        )
    assert err.value.status == 422
    assert "test operation 0 failed" in json.loads(err.value.body)["message"]
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 4


def test_status_subresource_only_changes_status(apps: client.AppsV1Api, api: client.ApiClient) -> None:
    apps.create_namespaced_deployment("default", deployment())
    # writes to the main resource keep the status; writes to /status keep the spec
    apps.patch_namespaced_deployment("web", "default", {"status": {"replicas": 99}})
    assert apps.read_namespaced_deployment("web", "default").status.replicas == 4
    policy = client.PolicyV1Api(api)
    pdb = {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}
    policy.create_namespaced_pod_disruption_budget("default", pdb)
    policy.patch_namespaced_pod_disruption_budget_status(
        "web",
        "default",
        {
            "spec": {"minAvailable": 5},
            "status": {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 2},
        },
    )
    current = policy.read_namespaced_pod_disruption_budget("web", "default")
    assert (current.spec.min_available, current.status.current_healthy) == (1, 2)


def test_server_side_apply_creates_then_reapply_is_a_no_op(apps: client.AppsV1Api, sim: KubeSim) -> None:
    manifest = deployment()
    created = apps.patch_namespaced_deployment(
        "web", "default", manifest, field_manager="mop-canary", _content_type=APPLY
    )
    assert created.metadata.managed_fields[0].manager == "mop-canary"
    assert created.metadata.managed_fields[0].operation == "Apply"
    settled = apps.read_namespaced_deployment("web", "default")
    writes_before = sim.resource_version
    again = apps.patch_namespaced_deployment(
        "web", "default", manifest, field_manager="mop-canary", _content_type=APPLY
    )
    assert again.metadata.resource_version == settled.metadata.resource_version
    assert sim.resource_version == writes_before
    assert [
        rs.metadata.name for rs in apps.list_namespaced_replica_set("default").items
    ] and again.metadata.generation == 1


def test_apply_removes_fields_the_manager_no_longer_sets(apps: client.AppsV1Api) -> None:
    manifest = deployment()
    manifest["metadata"]["annotations"] = {"team": "shop", "tier": "1"}
    apps.patch_namespaced_deployment("web", "default", manifest, field_manager="stack", _content_type=APPLY)
    apps.patch_namespaced_deployment(
        "web", "default", {"metadata": {"annotations": {"canary.mop.dev/enabled": "true"}}}, field_manager="canary"
    )
    del manifest["metadata"]["annotations"]["tier"]
    manifest["spec"]["replicas"] = 6
    applied = apps.patch_namespaced_deployment("web", "default", manifest, field_manager="stack", _content_type=APPLY)
    assert applied.metadata.annotations["team"] == "shop"
    assert "tier" not in applied.metadata.annotations
    assert applied.metadata.annotations["canary.mop.dev/enabled"] == "true"  # owned by another manager: kept
    assert applied.spec.replicas == 6
    assert {m.manager for m in applied.metadata.managed_fields} == {"stack", "canary"}


def test_apply_conflict_with_another_manager_unless_forced(apps: client.AppsV1Api) -> None:
    apps.patch_namespaced_deployment("web", "default", deployment(), field_manager="stack", _content_type=APPLY)
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 2}}, field_manager="hpa")
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", "default", deployment(), field_manager="stack", _content_type=APPLY)
    assert err.value.status == 409
    assert 'conflict with "hpa": .spec.replicas' in json.loads(err.value.body)["message"]
    forced = apps.patch_namespaced_deployment(
        "web", "default", deployment(), field_manager="stack", force=True, _content_type=APPLY
    )
    assert forced.spec.replicas == 4


def test_apply_without_field_manager_is_rejected(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", "default", deployment(), _content_type=APPLY)
    assert err.value.status == 400 and "fieldManager is required" in json.loads(err.value.body)["message"]


def test_dynamic_client_server_side_apply(api: client.ApiClient, tmp_path) -> None:
    dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    roles = dynamic.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "mop-canary"},
        "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "patch"]}],
    }
    first = roles.server_side_apply(body=role, name="mop-canary", field_manager="mop-canary")
    second = roles.server_side_apply(body=role, name="mop-canary", field_manager="mop-canary")
    assert first.metadata.resourceVersion == second.metadata.resourceVersion
    assert roles.get(name="mop-canary").rules[0].verbs == ["get", "list", "watch", "patch"]


def test_dry_run_returns_the_result_without_storing_it(apps: client.AppsV1Api, sim: KubeSim) -> None:
    before = sim.resource_version
    preview = apps.create_namespaced_deployment("default", deployment(), dry_run="All")
    assert preview.metadata.name == "web" and preview.metadata.uid
    assert apps.list_namespaced_deployment("default").items == []
    applied = apps.patch_namespaced_deployment(
        "web", "default", deployment(), field_manager="stack", dry_run="All", _content_type=APPLY
    )
    assert applied.spec.replicas == 4
    assert sim.resource_version == before
    apps.create_namespaced_deployment("default", deployment())
    before = sim.resource_version
    patched = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 9}}, dry_run="All")
    assert patched.spec.replicas == 9
    replaced = apps.read_namespaced_deployment("web", "default")
    replaced.spec.replicas = 7
    assert apps.replace_namespaced_deployment("web", "default", replaced, dry_run="All").spec.replicas == 7
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 4
    assert sim.resource_version == before
    assert apps.delete_namespaced_deployment("web", "default", dry_run="All")
    assert apps.read_namespaced_deployment("web", "default")


def test_custom_resource_definition_adds_a_served_resource(api: client.ApiClient, tmp_path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
            ],
        },
    }
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(crd)
    established = extensions.read_custom_resource_definition("widgets.example.com")
    assert {c.type: c.status for c in established.status.conditions}["Established"] == "True"
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        "example.com",
        "v1",
        "default",
        "widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}},
    )
    assert custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")["spec"] == {"size": 3}
    dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    assert dynamic.resources.get(api_version="example.com/v1", kind="Widget").namespaced
    extensions.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")
    assert err.value.status == 404


def test_reapplying_a_stack_of_kinds_changes_nothing(api: client.ApiClient, sim: KubeSim, tmp_path) -> None:
    dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    sts = deployment("tempo", replicas=3)
    sts.update(kind="StatefulSet")
    sts["metadata"]["namespace"] = "mop"
    sts["spec"]["serviceName"] = "tempo"
    stack = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mop"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tempo", "namespace": "mop"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3", "namespace": "mop"},
            "stringData": {"key": "minio"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tempo", "namespace": "mop"},
            "data": {"tempo.yaml": "server: {}\n"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "tempo", "namespace": "mop"},
            "spec": {"selector": {"app": "tempo"}, "ports": [{"name": "http", "port": 3200}]},
        },
        sts,
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "tempo", "namespace": "mop"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "tempo"}}},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "obi"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "obi"},
            "subjects": [{"kind": "ServiceAccount", "name": "tempo", "namespace": "mop"}],
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "pipeline", "namespace": "mop"},
            "spec": {"groups": [{"name": "mop", "rules": [{"alert": "X", "expr": "up == 0"}]}]},
        },
    ]

    def apply_all() -> list[str]:
        versions = []
        for obj in stack:
            resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            namespace = obj["metadata"].get("namespace")
            applied = resource.server_side_apply(
                body=obj, name=obj["metadata"]["name"], namespace=namespace, field_manager="mop-canary"
            )
            versions.append(applied.metadata.resourceVersion)
        return versions

    apply_all()
    settled = sim.resource_version
    apply_all()
    assert sim.resource_version == settled
    service = client.CoreV1Api(api).read_namespaced_service("tempo", "mop")
    assert service.spec.cluster_ip and service.spec.ports[0].target_port == 3200
    assert client.CoreV1Api(api).read_namespaced_secret("s3", "mop").data == {"key": "bWluaW8="}
