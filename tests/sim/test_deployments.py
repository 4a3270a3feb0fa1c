"""The simulated Deployment controller: ReplicaSets, revisions, stepped rollouts, pause, undo, status."""

from __future__ import annotations

import time

from kubernetes import client

from canary_testkit.kube import HASH_LABEL, REVISION, KubeSim, pod_template_hash

from .manifests import deployment


def _replicasets(apps: client.AppsV1Api, name: str = "web") -> dict[str, tuple[int, str]]:
    """{replicaset name: (replicas, revision)} of one Deployment."""
    return {
        rs.metadata.name: (rs.spec.replicas, rs.metadata.annotations[REVISION])
        for rs in apps.list_namespaced_replica_set("default", label_selector=f"app={name}").items
    }


def _set_image(apps: client.AppsV1Api, image: str, name: str = "web") -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    apps.patch_namespaced_deployment(name, "default", patch)


def _finish(sim: KubeSim) -> None:
    for _ in range(20):
        if not sim.step_rollouts():
            return
    raise AssertionError("rollout did not finish in 20 steps")


def test_create_makes_a_replicaset_with_hash_revision_and_owner(apps: client.AppsV1Api) -> None:
    created = apps.create_namespaced_deployment("default", deployment(replicas=3))
    (rs,) = apps.list_namespaced_replica_set("default").items
    template_hash = pod_template_hash(deployment()["spec"]["template"])
    assert rs.metadata.name == f"web-{template_hash}"
    assert rs.metadata.labels == {"app": "web", HASH_LABEL: template_hash}
    assert rs.spec.selector.match_labels == {"app": "web", HASH_LABEL: template_hash}
    assert rs.spec.template.metadata.labels[HASH_LABEL] == template_hash
    assert rs.metadata.annotations[REVISION] == "1"
    (owner,) = rs.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Deployment", "web", created.metadata.uid, True)
    assert (rs.status.replicas, rs.status.ready_replicas, rs.status.available_replicas) == (3, 3, 3)

    current = apps.read_namespaced_deployment("web", "default")
    assert current.metadata.annotations[REVISION] == "1"
    status = current.status
    assert (status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3, 3)
    assert status.observed_generation == current.metadata.generation == 1
    conditions = {c.type: c for c in status.conditions}
    assert conditions["Progressing"].reason == "NewReplicaSetAvailable"
    assert conditions["Available"].status == "True"


def test_template_change_rolls_out_in_steps(apps: client.AppsV1Api, sim: KubeSim) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=4))
    (old,) = _replicasets(apps)
    _set_image(apps, "web:2")
    rs = _replicasets(apps)
    (new,) = set(rs) - {old}
    # at once, as kube-controller-manager: the new ReplicaSet with its surge pod (25% of 4, rounded up),
    # an old pod gone as maxUnavailable (25%, rounded down) allows
    assert rs == {old: (3, "1"), new: (1, "2")}
    current = apps.read_namespaced_deployment("web", "default")
    assert current.metadata.annotations[REVISION] == "2"
    assert current.metadata.generation == 2 and current.status.observed_generation == 2
    assert current.status.updated_replicas == 1
    assert {c.type: c.reason for c in current.status.conditions}["Progressing"] == "ReplicaSetUpdated"

    assert sim.step_rollouts() == 1  # one reconcile: scale up as far as maxSurge allows, and stop
    assert _replicasets(apps) == {old: (3, "1"), new: (2, "2")}
    assert sim.step_rollouts() == 1  # then old ones down as far as maxUnavailable allows
    assert _replicasets(apps) == {old: (1, "1"), new: (2, "2")}
    _finish(sim)
    assert _replicasets(apps) == {old: (0, "1"), new: (4, "2")}
    status = apps.read_namespaced_deployment("web", "default").status
    assert {c.type: c.reason for c in status.conditions}["Progressing"] == "NewReplicaSetAvailable"
    assert (status.replicas, status.updated_replicas, status.available_replicas) == (4, 4, 4)


def _strategy(max_surge: int | str, max_unavailable: int | str) -> dict:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}}


def test_surge_pods_come_at_once_and_old_pods_stay_while_max_unavailable_is_zero(
    apps: client.AppsV1Api, sim: KubeSim
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=4, strategy=_strategy(1, 0)))
    (old,) = _replicasets(apps)
    _set_image(apps, "web:2")
    (new,) = set(_replicasets(apps)) - {old}
    assert _replicasets(apps) == {old: (4, "1"), new: (1, "2")}
    totals = []
    for _ in range(20):
        if not sim.step_rollouts():
            break
        rs = _replicasets(apps)
        totals.append(rs[old][0] + rs[new][0])
    assert _replicasets(apps) == {old: (0, "1"), new: (4, "2")}
    assert max(totals) == 5 and min(totals) >= 4, "never more than desired + 1 nor fewer than desired"


def test_max_surge_zero_scales_old_pods_down_first_and_starts_the_new_replicaset_at_zero(
    apps: client.AppsV1Api, sim: KubeSim
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=4, strategy=_strategy(0, 1)))
    (old,) = _replicasets(apps)
    _set_image(apps, "web:2")
    (new,) = set(_replicasets(apps)) - {old}
    assert _replicasets(apps) == {old: (3, "1"), new: (0, "2")}
    assert sim.step_rollouts() == 1
    assert _replicasets(apps) == {old: (3, "1"), new: (1, "2")}
    _finish(sim)
    assert _replicasets(apps) == {old: (0, "1"), new: (4, "2")}


def test_a_pause_before_the_new_replicaset_has_a_pod_holds_it_at_zero(apps: client.AppsV1Api, sim: KubeSim) -> None:
    """As on a real cluster (the paused `sync` only scales): the one active ReplicaSet gets every replica back."""
    apps.create_namespaced_deployment("default", deployment(replicas=4, strategy=_strategy(0, 1)))
    (old,) = _replicasets(apps)
    _set_image(apps, "web:2")
    (new,) = set(_replicasets(apps)) - {old}
    apps.patch_namespaced_deployment("web", "default", {"spec": {"paused": True}})
    for _ in range(3):
        sim.step_rollouts()
    assert _replicasets(apps) == {old: (4, "1"), new: (0, "2")}
    apps.patch_namespaced_deployment("web", "default", {"spec": {"paused": False}})
    _finish(sim)
    assert _replicasets(apps) == {old: (0, "1"), new: (4, "2")}


def test_a_paused_rollout_keeps_desired_plus_surge_pods_the_leftover_to_the_largest(
    apps: client.AppsV1Api, sim: KubeSim
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=4))
    (old,) = _replicasets(apps)
    _set_image(apps, "web:2")
    (new,) = set(_replicasets(apps)) - {old}
    apps.patch_namespaced_deployment("web", "default", {"spec": {"paused": True}})
    assert sim.step_rollouts() == 0
    assert _replicasets(apps) == {old: (4, "1"), new: (1, "2")}


def test_a_paused_deployment_takes_old_replicasets_to_zero_once_the_new_one_is_saturated(
    apps: client.AppsV1Api, sim: KubeSim
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    (old,) = _replicasets(apps)
    _set_image(apps, "web:2")
    _finish(sim)
    (new,) = set(_replicasets(apps)) - {old}
    apps.patch_namespaced_deployment("web", "default", {"spec": {"paused": True}})
    apps.patch_namespaced_replica_set_scale(old, "default", {"spec": {"replicas": 2}})
    assert _replicasets(apps) == {old: (2, "1"), new: (2, "2")}, "the deployment controller's next sync does it"
    sim.step_rollouts()
    assert _replicasets(apps) == {old: (0, "1"), new: (2, "2")}


def test_recreate_replaces_every_pod_at_once(apps: client.AppsV1Api, sim: KubeSim) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=3, strategy={"type": "Recreate"}))
    (old,) = _replicasets(apps)
    _set_image(apps, "web:2")
    (new,) = set(_replicasets(apps)) - {old}
    assert _replicasets(apps) == {old: (0, "1"), new: (3, "2")}


def test_paused_deployment_holds_and_creates_no_replicaset(apps: client.AppsV1Api, sim: KubeSim) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=4))
    _set_image(apps, "web:2")
    apps.patch_namespaced_deployment("web", "default", {"spec": {"paused": True}})
    held = _replicasets(apps)
    assert sim.step_rollouts() == 0
    assert _replicasets(apps) == held
    status = apps.read_namespaced_deployment("web", "default").status
    assert {c.type: c.reason for c in status.conditions}["Progressing"] == "DeploymentPaused"

    _set_image(apps, "web:3")  # a template change while paused makes no ReplicaSet
    assert _replicasets(apps) == held
    apps.patch_namespaced_deployment("web", "default", {"spec": {"paused": False}})
    rs = _replicasets(apps)
    assert len(rs) == 3 and max(int(rev) for _, rev in rs.values()) == 3
    _finish(sim)
    assert sorted(_replicasets(apps).values()) == [(0, "1"), (0, "2"), (4, "3")]


def test_undo_reuses_the_old_replicaset_with_a_new_revision(apps: client.AppsV1Api, sim: KubeSim) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=4))
    (good,) = _replicasets(apps)
    good_rs = apps.read_namespaced_replica_set(good, "default")
    _set_image(apps, "web:bad")
    (bad,) = set(_replicasets(apps)) - {good}

    # kubectl rollout undo: write back the previous ReplicaSet's template without pod-template-hash
    template = good_rs.spec.template.to_dict(serialize=True)
    del template["metadata"]["labels"][HASH_LABEL]
    current = apps.read_namespaced_deployment("web", "default")
    apps.patch_namespaced_deployment(
        "web",
        "default",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": current.metadata.resource_version},
            {"op": "replace", "path": "/spec/template", "value": template},
        ],
    )
    rs = _replicasets(apps)
    assert set(rs) == {good, bad}  # no third ReplicaSet
    assert rs[good][1] == "3" and rs[bad][1] == "2"
    reused = apps.read_namespaced_replica_set(good, "default")
    assert reused.metadata.annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert apps.read_namespaced_deployment("web", "default").metadata.annotations[REVISION] == "3"
    _finish(sim)
    assert _replicasets(apps) == {good: (4, "3"), bad: (0, "2")}


def test_scaling_including_to_zero(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    assert list(_replicasets(apps).values()) == [(5, "1")]
    assert apps.read_namespaced_deployment_scale("web", "default").status.replicas == 5
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 0}})
    assert list(_replicasets(apps).values()) == [(0, "1")]
    status = apps.read_namespaced_deployment("web", "default").status
    assert not status.replicas and not status.available_replicas


def test_deleting_a_deployment_deletes_its_replicasets(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    _set_image(apps, "web:2")
    apps.delete_namespaced_deployment("web", "default")
    assert apps.list_namespaced_replica_set("default").items == []


def test_statefulsets_and_daemonsets_are_ready_at_once(apps: client.AppsV1Api) -> None:
    sts = deployment("db", replicas=3)
    sts.update(kind="StatefulSet")
    sts["spec"]["serviceName"] = "db"
    apps.create_namespaced_stateful_set("default", sts)
    status = apps.read_namespaced_stateful_set("db", "default").status
    assert (status.replicas, status.ready_replicas, status.current_replicas, status.updated_replicas) == (3, 3, 3, 3)
    assert status.observed_generation == 1
    ds = deployment("agent")
    ds.update(kind="DaemonSet")
    del ds["spec"]["replicas"]
    apps.create_namespaced_daemon_set("default", ds)
    status = apps.read_namespaced_daemon_set("agent", "default").status
    assert status.desired_number_scheduled == status.number_ready == status.updated_number_scheduled == 1
    apps.patch_namespaced_stateful_set("db", "default", {"spec": {"replicas": 1}})
    status = apps.read_namespaced_stateful_set("db", "default").status
    assert (status.ready_replicas, status.observed_generation) == (1, 2)


def test_background_tick_finishes_rollouts() -> None:
    with KubeSim(rollout_step_seconds=0.05) as sim:
        apps = client.AppsV1Api(sim.api_client())
        apps.create_namespaced_deployment("default", deployment(replicas=4))
        _set_image(apps, "web:2")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = apps.read_namespaced_deployment("web", "default").status
            if status.updated_replicas == 4 and status.replicas == 4:
                break
            time.sleep(0.05)
        assert sorted(_replicasets(apps).values()) == [(0, "1"), (4, "2")]
