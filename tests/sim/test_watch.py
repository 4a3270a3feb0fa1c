"""Watch streams through `kubernetes.watch.Watch`: replay, selectors, bookmarks, 410 Expired, timeouts."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from canary_testkit.kube import KubeSim


def _events(core: client.CoreV1Api, **kwargs: object) -> list[tuple[str, str]]:
    stream = watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1, **kwargs)
    return [(e["type"], e["raw_object"]["metadata"]["name"]) for e in stream]


def test_watch_replays_changes_after_a_resource_version(core: client.CoreV1Api) -> None:
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"v": "1"}})
    core.patch_namespaced_config_map("a", "default", {"data": {"v": "2"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    core.delete_namespaced_config_map("a", "default")
    assert _events(core, resource_version=start) == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]


def test_watch_without_version_starts_with_synthetic_added_events(core: client.CoreV1Api) -> None:
    for name in ("x", "y"):
        core.create_namespaced_config_map("default", {"metadata": {"name": name}})
    assert _events(core) == [("ADDED", "x"), ("ADDED", "y")]
    assert _events(core, resource_version="0") == [("ADDED", "x"), ("ADDED", "y")]


def test_watch_streams_live_changes_in_order(core: client.CoreV1Api) -> None:
    received: list[tuple[str, str, str]] = []
    w = watch.Watch()
    rv = core.list_namespaced_config_map("default").metadata.resource_version

    def consume() -> None:
        for event in w.stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5):
            obj = event["object"]
            received.append((event["type"], obj.metadata.name, obj.metadata.resource_version))
            if len(received) == 3:
                w.stop()

    consumer = threading.Thread(target=consume)
    consumer.start()
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "live"}})
    modified = core.patch_namespaced_config_map("live", "default", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("live", "default")
    consumer.join(10)
    assert not consumer.is_alive()
    assert [r[:2] for r in received] == [("ADDED", "live"), ("MODIFIED", "live"), ("DELETED", "live")]
    assert received[0][2] == created.metadata.resource_version
    assert received[1][2] == modified.metadata.resource_version
    assert int(received[2][2]) > int(modified.metadata.resource_version)


def test_label_selector_watch_sees_objects_enter_and_leave(core: client.CoreV1Api) -> None:
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "m", "labels": {"canary": "no"}}})
    core.patch_namespaced_config_map("m", "default", {"metadata": {"labels": {"canary": "yes"}}})
    core.patch_namespaced_config_map("m", "default", {"data": {"k": "v"}})
    core.patch_namespaced_config_map("m", "default", {"metadata": {"labels": {"canary": "no"}}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "other"}})
    assert _events(core, resource_version=start, label_selector="canary=yes") == [
        ("ADDED", "m"),
        ("MODIFIED", "m"),
        ("DELETED", "m"),
    ]


def test_expired_history_gives_410_gone(core: client.CoreV1Api, sim: KubeSim) -> None:
    old = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "late"}})
    sim.expire_watch_history()
    with pytest.raises(ApiException) as err:
        _events(core, resource_version=old)
    assert err.value.status == 410
    assert "too old resource version" in str(err.value.reason)
    fresh = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "later"}})
    assert _events(core, resource_version=fresh) == [("ADDED", "later")]


def test_bounded_history_expires_old_versions() -> None:
    with KubeSim(rollout_step_seconds=None, history_size=3) as small:
        core = client.CoreV1Api(small.api_client())
        old = core.list_namespaced_config_map("default").metadata.resource_version
        for n in range(5):
            core.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{n}"}})
        with pytest.raises(ApiException) as err:
            _events(core, resource_version=old)
        assert err.value.status == 410
        recent = str(small.resource_version - 2)
        assert _events(core, resource_version=recent) == [("ADDED", "cm-3"), ("ADDED", "cm-4")]


def test_bookmarks_carry_the_latest_resource_version(core: client.CoreV1Api, sim: KubeSim) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespace({"metadata": {"name": "elsewhere"}})  # a change the watch does not match
    w = watch.Watch()
    kinds = []
    for event in w.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=1
    ):
        kinds.append(event["type"])
    assert "BOOKMARK" in kinds and set(kinds) == {"BOOKMARK"}
    assert w.resource_version == str(sim.resource_version)


def test_timeout_seconds_ends_the_stream(core: client.CoreV1Api) -> None:
    started = time.monotonic()
    assert _events(core, resource_version="1") == []
    assert time.monotonic() - started < 5


def test_close_watches_ends_streams_and_clients_resume_without_loss(core: client.CoreV1Api, sim: KubeSim) -> None:
    seen: list[str] = []
    w = watch.Watch()
    rv = core.list_namespaced_config_map("default").metadata.resource_version

    def consume() -> None:
        for event in w.stream(core.list_namespaced_config_map, "default", resource_version=rv):
            seen.append(event["object"].metadata.name)
            if len(seen) == 2:
                w.stop()

    consumer = threading.Thread(target=consume)
    consumer.start()
    core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    sim.close_watches()
    core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    consumer.join(10)
    assert not consumer.is_alive()
    assert seen == ["before", "after"]
    watches = [r for r in sim.requests if r.query.get("watch") == "True" or r.query.get("watch") == "true"]
    assert len(watches) >= 2  # the helper re-watched after the server closed the first stream


def test_watch_of_deployments_follows_the_rollout(api: client.ApiClient, sim: KubeSim) -> None:
    from .manifests import deployment

    apps = client.AppsV1Api(api)
    rv = apps.list_namespaced_replica_set("default").metadata.resource_version
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    events = [
        (e["type"], e["object"].spec.replicas)
        for e in watch.Watch().stream(
            apps.list_namespaced_replica_set, "default", resource_version=rv, timeout_seconds=1
        )
    ]
    assert events[0] == ("ADDED", 2)
    assert all(kind == "MODIFIED" for kind, _ in events[1:])


def test_dynamic_client_watch_and_initial_events_end_bookmark(api: client.ApiClient, tmp_path) -> None:
    from kubernetes.dynamic import DynamicClient

    dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    leases = dynamic.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    leases.create(body={"metadata": {"name": "lock"}, "spec": {"holderIdentity": "a"}}, namespace="default")
    seen = [(e["type"], e["object"].metadata.name) for e in leases.watch(namespace="default", timeout=1)]
    assert seen == [("ADDED", "lock")]

    stream = watch.Watch().stream(
        client.CoordinationV1Api(api).list_namespaced_lease,
        "default",
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
        timeout_seconds=1,
    )
    events = [(e["type"], e["raw_object"]["metadata"]) for e in stream]
    assert events[0][0] == "ADDED" and events[0][1]["name"] == "lock"
    assert events[1][0] == "BOOKMARK"
    assert events[1][1]["annotations"] == {"k8s.io/initial-events-end": "true"}
