"""CRUD, resourceVersions, Status errors, selectors, discovery, Events and Leases through the real client."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from canary_testkit.kube import ADMIN_TOKEN, KubeSim

from .manifests import deployment


def _status(err: ApiException) -> dict:
    return json.loads(err.body)


def test_configmap_crud_keeps_metadata_and_bumps_resource_version(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "settings"}, "data": {"mode": "fast"}})
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    first_rv = int(created.metadata.resource_version)

    created.data["mode"] = "slow"
    replaced = core.replace_namespaced_config_map("settings", "default", created)
    assert int(replaced.metadata.resource_version) > first_rv
    assert replaced.metadata.uid == created.metadata.uid
    assert core.read_namespaced_config_map("settings", "default").data == {"mode": "slow"}

    deleted = core.delete_namespaced_config_map("settings", "default")
    assert deleted is not None
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("settings", "default")
    assert err.value.status == 404
    body = _status(err.value)
    assert body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'configmaps "settings" not found'


def test_stale_resource_version_on_update_is_a_409_conflict(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    first = apps.read_namespaced_deployment("web", "default")
    second = apps.read_namespaced_deployment("web", "default")
    first.spec.replicas = 5
    apps.replace_namespaced_deployment("web", "default", first)

    second.spec.replicas = 6
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("web", "default", second)
    assert err.value.status == 409
    assert _status(err.value)["reason"] == "Conflict"
    assert "the object has been modified" in _status(err.value)["message"]
    stale_patch = {"metadata": {"resourceVersion": second.metadata.resource_version}, "spec": {"replicas": 7}}
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", "default", stale_patch)
    assert err.value.status == 409
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 5


def test_create_twice_is_already_exists_and_missing_namespace_is_not_found(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret("default", {"metadata": {"name": "token"}, "stringData": {"key": "s3cret"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret("default", {"metadata": {"name": "token"}})
    assert err.value.status == 409 and _status(err.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "x"}})
    assert err.value.status == 404 and _status(err.value)["message"] == 'namespaces "nowhere" not found'
    # stringData is stored base64-encoded in data, as the API server does
    assert core.read_namespaced_secret("token", "default").data == {"key": "czNjcmV0"}


def test_invalid_objects_get_422_naming_the_field(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "Bad_Name"}})
    assert err.value.status == 422
    assert _status(err.value)["reason"] == "Invalid"
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name' in _status(err.value)["message"]

    broken = deployment()
    broken["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("default", broken)
    assert err.value.status == 422
    assert "spec.template.metadata.labels" in _status(err.value)["message"]
    assert 'Deployment.apps "web"' in _status(err.value)["message"]

    hostile = {"metadata": {"name": "x", "labels": {"app": "a b;rm -rf"}}}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", hostile)
    assert err.value.status == 422 and "metadata.labels" in _status(err.value)["message"]


def test_label_and_field_selectors(core: client.CoreV1Api) -> None:
    labels = {"a": {"tier": "web", "env": "prod"}, "b": {"tier": "db", "env": "prod"}, "c": {"tier": "web"}}
    for name, lbls in labels.items():
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": lbls}})
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_config_map("other", {"metadata": {"name": "a", "labels": {"tier": "web"}}})

    def names(selector: str, namespace: str | None = "default", field: str | None = None) -> list[str]:
        if namespace is None:
            items = core.list_config_map_for_all_namespaces(label_selector=selector, field_selector=field).items
            return [f"{i.metadata.namespace}/{i.metadata.name}" for i in items]
        items = core.list_namespaced_config_map(namespace, label_selector=selector, field_selector=field).items
        return [i.metadata.name for i in items]

    assert names("tier=web") == ["a", "c"]
    assert names("tier==web,env=prod") == ["a"]
    assert names("tier!=web") == ["b"]
    assert names("tier in (db, cache)") == ["b"]
    assert names("tier notin (db)") == ["a", "c"]
    assert names("env") == ["a", "b"]
    assert names("!env") == ["c"]
    assert names("tier=web", namespace=None) == ["default/a", "default/c", "other/a"]
    assert names("", namespace=None, field="metadata.namespace=other") == ["other/a"]
    assert names("", field="metadata.name!=a") == ["b", "c"]
    with pytest.raises(ApiException) as err:
        names("tier in (web")
    assert err.value.status == 400
    with pytest.raises(ApiException) as err:
        names("", field="spec.secret=x")
    assert err.value.status == 400 and "field label not supported: spec.secret" in _status(err.value)["message"]


def test_list_carries_the_resource_version_and_pages(core: client.CoreV1Api, sim: KubeSim) -> None:
    for n in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{n}"}})
    page = core.list_namespaced_config_map("default", limit=2)
    assert page.metadata.resource_version == str(sim.resource_version)
    seen = [i.metadata.name for i in page.items]
    while page.metadata._continue:
        page = core.list_namespaced_config_map("default", limit=2, _continue=page.metadata._continue)
        seen += [i.metadata.name for i in page.items]
    assert seen == [f"cm-{n}" for n in range(5)]


def test_discovery_lets_the_dynamic_client_resolve_kinds(api: client.ApiClient, tmp_path) -> None:
    dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced and deployments.name == "deployments"
    assert not dynamic.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole").namespaced
    lease = dynamic.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    lease.create(body={"metadata": {"name": "lock"}, "spec": {"holderIdentity": "a"}}, namespace="default")
    assert lease.get(name="lock", namespace="default").spec.holderIdentity == "a"
    monitors = dynamic.resources.get(api_version="monitoring.coreos.com/v1", kind="ServiceMonitor")
    created = monitors.create(
        body={
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "m"},
            "spec": {"endpoints": [{"port": "metrics"}]},
        },
        namespace="default",
    )
    assert created.metadata.resourceVersion
    assert dynamic.resources.get(api_version="apps/v1", kind="Deployment").subresources["scale"].kind == "Scale"
    version = dynamic.version["kubernetes"]
    assert version["major"] == "1"


def test_unknown_resource_is_a_404_status(sim: KubeSim) -> None:
    for path in (
        "/apis/apps/v1/namespaces/default/widgets",
        "/apis/example.com/v1",
        "/api/v1/namespaces/default/pods/x/log",
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            request = urllib.request.Request(sim.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 404
        body = json.loads(err.value.read())
        assert (body["kind"], body["code"], body["reason"]) == ("Status", 404, "NotFound")


def test_core_and_events_v1_share_storage(api: client.ApiClient, core: client.CoreV1Api) -> None:
    events = client.EventsV1Api(api)
    now = datetime.now(UTC)
    events.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "web.1"},
            "eventTime": now.isoformat().replace("+00:00", "Z"),
            "reportingController": "mop.dev/canary",
            "reportingInstance": "canary-0",
            "action": "Rollback",
            "reason": "CanaryRolledBack",
            "type": "Warning",
            "note": "error rate 12% > 1%",
            "regarding": {"kind": "Deployment", "name": "web", "namespace": "default", "apiVersion": "apps/v1"},
        },
    )
    core.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "web.2"},
            "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default"},
            "reason": "CanaryStarted",
            "message": "analysing revision 2",
            "type": "Normal",
            "source": {"component": "mop-canary"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        },
    )
    core_view = core.list_namespaced_event("default", field_selector="involvedObject.name=web")
    assert sorted((e.reason, e.message) for e in core_view.items) == [
        ("CanaryRolledBack", "error rate 12% > 1%"),
        ("CanaryStarted", "analysing revision 2"),
    ]
    events_view = events.list_namespaced_event("default", field_selector="reason=CanaryRolledBack")
    assert [(e.note, e.regarding.name, e.reporting_controller) for e in events_view.items] == [
        ("error rate 12% > 1%", "web", "mop.dev/canary")
    ]
    with pytest.raises(ApiException) as err:
        events.create_namespaced_event(
            "default", {"metadata": {"name": "bad"}, "eventTime": now, "type": "Normal", "reason": "X"}
        )
    assert err.value.status == 422 and "reportingController: Required value" in _status(err.value)["message"]


def test_two_candidates_racing_for_a_lease_one_wins(api: client.ApiClient, sim: KubeSim) -> None:
    coordination = client.CoordinationV1Api(api)
    coordination.create_namespaced_lease("default", {"metadata": {"name": "canary-leader"}, "spec": {}})
    observed = [coordination.read_namespaced_lease("canary-leader", "default") for _ in range(2)]
    results: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def acquire(identity: str, lease: client.V1Lease) -> None:
        lease.spec.holder_identity = identity
        lease.spec.lease_duration_seconds = 15
        barrier.wait(5)
        try:
            coordination.replace_namespaced_lease("canary-leader", "default", lease)
            results[identity] = 200
        except ApiException as err:
            results[identity] = err.status

    threads = [threading.Thread(target=acquire, args=(f"replica-{n}", observed[n])) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results.values()) == [200, 409]
    winner = next(k for k, v in results.items() if v == 200)
    assert coordination.read_namespaced_lease("canary-leader", "default").spec.holder_identity == winner


def test_namespace_delete_removes_its_objects(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_config_map("team", {"metadata": {"name": "x"}})
    assert core.read_namespace("team").status.phase == "Active"
    core.delete_namespace("team")
    assert core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=team").items == []


def test_kubeconfig_works_with_the_client_loader(sim: KubeSim, tmp_path) -> None:
    from kubernetes import config

    path = sim.write_kubeconfig(tmp_path / "kubeconfig", namespace="kube-system")
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    _, active = config.list_kube_config_contexts(config_file=str(path))
    assert active["context"]["namespace"] == "kube-system"
