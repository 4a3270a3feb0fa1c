"""Simulated controllers: Deployments roll out through ReplicaSets; workloads report ready pods at once.

The Deployment controller follows the real one (kube-controller-manager's `rolloutRolling`, `sync` and
`scale`) where the canary controller can tell: a template change makes (or, on undo, reuses) a ReplicaSet
`<deployment>-<pod-template-hash>` with the next `deployment.kubernetes.io/revision`, at once with its
surge pods (`NewRSNewReplicas`: min(desired + maxSurge - all pods, desired - new pods)), and scales old
ReplicaSets down as far as `maxUnavailable` allows; so with `maxSurge: 0` the new ReplicaSet starts at 0
and old pods go first. Each later `step()` (or background tick) is one reconcile: scale the new
ReplicaSet up if it may, else old ones down. A paused Deployment creates no ReplicaSet and does not
advance; it is only scaled (one active ReplicaSet gets every replica; a saturated new one takes the
old ones to 0 on the next tick; else several share desired + maxSurge proportionally, leftovers to the
largest), so a new ReplicaSet paused at 0 pods stays at 0.
`Recreate` scales old ReplicaSets to 0, then the new one to every replica. Pods are ready at once.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from canary_testkit.kube.registry import Registry, ResourceType, from_crd
from canary_testkit.kube.store import Change, Store, now

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
MANAGER = "kube-controller-manager"


def pod_template_hash(template: dict[str, Any]) -> str:
    """A short stable hash of a pod template (FNV-1a 32 of its canonical JSON, encoded like `SafeEncodeString`)."""
    text = json.dumps(_without_hash(template), sort_keys=True, separators=(",", ":"))
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(value))


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template or {})
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return template


def _revision(obj: dict[str, Any]) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _scaled(value: Any, replicas: int, round_up: bool) -> int:
    """An int-or-percent of `replicas` (`intstr.GetScaledValueFromIntOrPercent`)."""
    if isinstance(value, int):
        return value
    text = str(value)
    try:
        percent = float(text[:-1]) if text.endswith("%") else float(text)
    except ValueError:
        percent = 25.0
    exact = replicas * percent / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def fenceposts(deployment: dict[str, Any], replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods, as `ResolveFenceposts`: surge rounds up, unavailable down, and
    both 0 means maxUnavailable 1. Recreate: (0, all)."""
    strategy = deployment["spec"].get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _replicas(rs: dict[str, Any] | None) -> int:
    return int(rs["spec"].get("replicas", 0)) if rs is not None else 0


def _available(rs: dict[str, Any]) -> int:
    return int((rs.get("status") or {}).get("availableReplicas") or 0)


class Controllers:
    """Reacts to every settled write: Deployments, ReplicaSets, StatefulSets, DaemonSets and CRDs."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.deployments = self._type("apps", "deployments")
        self.replicasets = self._type("apps", "replicasets")
        self.statefulsets = self._type("apps", "statefulsets")
        self.daemonsets = self._type("apps", "daemonsets")
        store.add_hook(self.on_changes)

    def _type(self, group: str, plural: str) -> ResourceType:
        rt = self.registry.get(group, "v1", plural)
        assert rt is not None
        return rt

    # -- hook ----------------------------------------------------------------------------------------

    def on_changes(self, changes: list[Change]) -> None:
        deployments: set[tuple[str, str]] = set()
        workloads: set[tuple[ResourceType, str, str]] = set()
        for change in changes:
            meta = change.obj["metadata"]
            where = (meta.get("namespace", ""), meta["name"])
            if change.storage == self.deployments.storage and change.type != "DELETED":
                deployments.add(where)
            elif change.storage == self.replicasets.storage:
                for ref in meta.get("ownerReferences") or []:
                    if ref.get("kind") == "Deployment":
                        deployments.add((where[0], ref.get("name", "")))
                workloads.add((self.replicasets, *where))
            elif change.storage in (self.statefulsets.storage, self.daemonsets.storage):
                workloads.add(
                    (self.statefulsets if change.storage == self.statefulsets.storage else self.daemonsets, *where)
                )
            elif change.storage == ("apiextensions.k8s.io", "customresourcedefinitions"):
                self._crd(change)
        for rt, namespace, name in sorted(workloads, key=lambda w: (w[0].plural, w[1], w[2])):
            current = self.store.stored(rt, namespace, name)
            if current is not None:
                self._workload_status(rt, current)
        for namespace, name in sorted(deployments):
            self.sync(namespace, name, advance=False)

    def _crd(self, change: Change) -> None:
        for rt in from_crd(change.old or {}):
            self.registry.remove_group_resource(rt.group, rt.plural)
        if change.type == "DELETED":
            for rt in from_crd(change.obj):
                self.store.drop_storage(rt.storage)
            return
        for rt in from_crd(change.obj):
            self.registry.add(rt)
        crd = copy.deepcopy(change.obj)
        names = crd["spec"].get("names") or {}
        conditions = [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ]
        status = {
            "acceptedNames": names,
            "conditions": conditions,
            "storedVersions": [v["name"] for v in crd["spec"].get("versions") or [] if v.get("storage")],
        }
        if (
            crd.get("status", {}).get("acceptedNames") != names
            or crd.get("status", {}).get("storedVersions") != status["storedVersions"]
        ):
            for condition in conditions:
                condition["lastTransitionTime"] = now()
            crd["status"] = status
            self.store.put(self._type("apiextensions.k8s.io", "customresourcedefinitions"), crd)

    # -- simple workloads ------------------------------------------------------------------------------

    def _workload_status(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Pods are ready at once: status follows spec (ReplicaSets, StatefulSets, one-node DaemonSets)."""
        generation = obj["metadata"].get("generation", 1)
        revision = f"{obj['metadata']['name']}-{pod_template_hash(obj['spec'].get('template') or {})}"
        status: dict[str, Any]
        if rt is self.replicasets:
            replicas = int(obj["spec"].get("replicas", 1))
            status = {
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "observedGeneration": generation,
            }
        elif rt is self.statefulsets:
            replicas = int(obj["spec"].get("replicas", 1))
            status = {
                "observedGeneration": generation,
                "replicas": replicas,
                "readyReplicas": replicas,
                "currentReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            }
        else:
            status = {
                "observedGeneration": generation,
                "currentNumberScheduled": 1,
                "desiredNumberScheduled": 1,
                "numberAvailable": 1,
                "numberMisscheduled": 0,
                "numberReady": 1,
                "updatedNumberScheduled": 1,
            }
        if obj.get("status") != status:
            updated = copy.deepcopy(obj)
            updated["status"] = status
            self.store.put(rt, updated)

    # -- deployments -----------------------------------------------------------------------------------

    def step(self) -> int:
        """Advance every unpaused rollout by one step; returns how many Deployments moved."""
        moved = 0
        with self.store.lock:
            for deployment in self.store.objects(self.deployments):
                meta = deployment["metadata"]
                if self.sync(meta["namespace"], meta["name"], advance=True):
                    moved += 1
        return moved

    def _owned(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deployment["metadata"]["uid"]
        return [
            rs
            for rs in self.store.objects(self.replicasets, deployment["metadata"]["namespace"])
            if any(r.get("uid") == uid and r.get("controller") for r in rs["metadata"].get("ownerReferences") or [])
        ]

    def sync(self, namespace: str, name: str, advance: bool) -> bool:
        """Reconcile one Deployment; with `advance`, also take one rollout step. True if a rollout moved."""
        with self.store.lock:
            found = [d for d in self.store.objects(self.deployments, namespace) if d["metadata"]["name"] == name]
            if not found:
                return False
            deployment = found[0]
            spec = deployment["spec"]
            replicas = int(spec.get("replicas", 1))
            paused = bool(spec.get("paused"))
            owned = self._owned(deployment)
            template = _without_hash(spec.get("template") or {})
            new = next((rs for rs in owned if _without_hash(rs["spec"].get("template") or {}) == template), None)
            max_revision = max((_revision(rs) for rs in owned), default=0)
            olds = [rs for rs in owned if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
            old_total = sum(int(rs["spec"].get("replicas", 0)) for rs in olds)
            moved = first = False
            if new is not None and _revision(new) < max_revision:
                new = self._reuse(new, max_revision + 1)  # a rollback (undo) to an older template, even paused
                moved = first = not paused
            if paused:
                self._scale_paused(deployment, new, olds, replicas, advance)
            elif (deployment["spec"].get("strategy") or {}).get("type") == "Recreate":
                for rs in olds:
                    self._scale(rs, 0, deployment)
                if new is None:
                    new = self._new_replicaset(deployment, max_revision + 1, replicas)
                    moved = True
                moved = self._scale(new, replicas, deployment) is not new or moved or old_total > 0
            else:
                if new is None:
                    surge, _ = fenceposts(deployment, replicas)
                    start = max(0, min(replicas + surge - old_total, replicas))
                    new = self._new_replicaset(deployment, max_revision + 1, start)
                    moved = first = True
                moved = self._roll(deployment, new, olds, replicas, advance or first) or moved
            self._cleanup(deployment, new)
            self._deployment_status(deployment, new)
            return moved

    def _new_replicaset(self, deployment: dict[str, Any], revision: int, replicas: int) -> dict[str, Any]:
        meta, spec = deployment["metadata"], deployment["spec"]
        template = copy.deepcopy(spec.get("template") or {})
        hash_ = pod_template_hash(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hash_
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hash_
        desired = int(spec.get("replicas", 1))
        annotations = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if not k.startswith("deployment.kubernetes.io/") and k != "kubectl.kubernetes.io/last-applied-configuration"
        }
        annotations.update(
            {
                REVISION: str(revision),
                DESIRED: str(spec.get("replicas", 1)),
                MAX_REPLICAS: str(desired + fenceposts(deployment, desired)[0]),
            }
        )
        rs = {
            "metadata": {
                "name": f"{meta['name']}-{hash_}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": spec.get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }
        return self.store.put(self.replicasets, rs)

    def _reuse(self, rs: dict[str, Any], revision: int) -> dict[str, Any]:
        rs = copy.deepcopy(rs)
        annotations = rs["metadata"].setdefault("annotations", {})
        history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
        history.append(annotations.get(REVISION, "0"))
        annotations[REVISION_HISTORY] = ",".join(history)
        annotations[REVISION] = str(revision)
        return self.store.put(self.replicasets, rs)

    def _scale(self, rs: dict[str, Any], replicas: int, deployment: dict[str, Any]) -> dict[str, Any]:
        """Set a ReplicaSet's replicas and its desired/max-replicas annotations; returns `rs` itself if unchanged."""
        if int(rs["spec"].get("replicas", 0)) == replicas:
            return rs
        desired = int(deployment["spec"].get("replicas", 1))
        rs = copy.deepcopy(rs)
        rs["spec"]["replicas"] = replicas
        annotations = rs["metadata"].setdefault("annotations", {})
        annotations[DESIRED] = str(desired)
        annotations[MAX_REPLICAS] = str(desired + fenceposts(deployment, desired)[0])
        return self.store.put(self.replicasets, rs)

    def _scale_paused(
        self, deployment: dict[str, Any], new: dict[str, Any] | None, olds: list[dict[str, Any]], replicas: int,
        advance: bool,
    ) -> None:
        """A paused Deployment is only scaled (the deployment controller's `scale`), never rolled forward.
        A saturated new ReplicaSet (all its pods available) takes the old ones to 0 only on a tick, the
        controller's next sync: writes a client makes back to back (scale one ReplicaSet up, another down)
        can land before it, as they can on a real cluster, where that sync comes some milliseconds later."""
        active = [rs for rs in ([new] if new is not None else []) + olds if _replicas(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else new or (max(olds, key=_revision) if olds else None)
            if target is not None:
                self._scale(target, replicas, deployment)
            return
        if new is not None and _replicas(new) == replicas and _available(new) >= replicas:
            for rs in olds if advance else ():
                self._scale(rs, 0, deployment)
            return
        allowed = replicas + fenceposts(deployment, replicas)[0] if replicas > 0 else 0
        to_add = allowed - sum(_replicas(rs) for rs in active)
        if to_add == 0:
            return
        ordered = sorted(active, key=lambda rs: (-_replicas(rs), -_revision(rs)))
        sizes = {rs["metadata"]["uid"]: _replicas(rs) for rs in ordered}
        added = 0
        for rs in ordered:
            annotated = int((rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS) or allowed or 1)
            share = round(_replicas(rs) * allowed / annotated) - _replicas(rs)
            share = min(share, to_add - added) if to_add > 0 else max(share, to_add - added)
            sizes[rs["metadata"]["uid"]] += share
            added += share
        sizes[ordered[0]["metadata"]["uid"]] += to_add - added
        for rs in ordered:
            self._scale(rs, max(0, sizes[rs["metadata"]["uid"]]), deployment)

    def _roll(
        self, deployment: dict[str, Any], new: dict[str, Any], olds: list[dict[str, Any]], replicas: int, advance: bool
    ) -> bool:
        """One reconcile of a rolling update (`rolloutRolling`): scale the new ReplicaSet up as far as maxSurge
        allows and stop there, else scale old ones down (oldest first) as far as maxUnavailable allows. Without
        `advance` (a change seen between ticks) only a finished rollout is kept at the desired size."""
        old_total = sum(_replicas(rs) for rs in olds)
        if not advance:
            return old_total == 0 and self._scale(new, replicas, deployment) is not new
        surge, unavailable = fenceposts(deployment, replicas)
        current = _replicas(new)
        if current > replicas:
            return self._scale(new, replicas, deployment) is not new
        grow = max(0, min(replicas + surge - (current + old_total), replicas - current))
        if grow:
            self._scale(new, current + grow, deployment)
            return True
        min_available = replicas - unavailable
        if current + old_total - min_available - (current - _available(new)) <= 0:
            return False
        available = _available(new) + sum(min(_available(rs), _replicas(rs)) for rs in olds)
        excess = available - min_available
        moved = False
        for rs in sorted(olds, key=_revision):
            if excess <= 0:
                break
            cut = min(_replicas(rs), excess)
            if cut:
                self._scale(rs, _replicas(rs) - cut, deployment)
                excess -= cut
                moved = True
        return moved

    def _cleanup(self, deployment: dict[str, Any], new: dict[str, Any] | None) -> None:
        limit = deployment["spec"].get("revisionHistoryLimit", 10)
        new_uid = new["metadata"]["uid"] if new else None
        idle = sorted(
            (
                rs
                for rs in self._owned(deployment)
                if int(rs["spec"].get("replicas", 0)) == 0 and rs["metadata"]["uid"] != new_uid
            ),
            key=_revision,
        )
        for rs in idle[: max(0, len(idle) - int(limit))]:
            self.store.remove(self.replicasets, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _deployment_status(self, deployment: dict[str, Any], new: dict[str, Any] | None) -> None:
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        owned = self._owned(deployment)
        total = sum(int(rs["spec"].get("replicas", 0)) for rs in owned)
        updated = int(new["spec"].get("replicas", 0)) if new else 0
        others = total - updated
        complete = new is not None and updated == replicas and others == 0
        unavailable_allowed = fenceposts(deployment, replicas)[1]
        old_status = deployment.get("status") or {}
        old_conditions = {c["type"]: c for c in old_status.get("conditions") or []}
        if spec.get("paused"):
            progressing = ("Unknown", "DeploymentPaused", "Deployment is paused")
        elif complete and new is not None:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{new["metadata"]["name"]}" has successfully progressed.',
            )
        else:
            name = new["metadata"]["name"] if new else deployment["metadata"]["name"]
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
        available = (
            ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            if total >= replicas - unavailable_allowed
            else ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        )
        conditions = [
            _condition(old_conditions.get("Available"), "Available", *available),
            _condition(old_conditions.get("Progressing"), "Progressing", *progressing),
        ]
        status: dict[str, Any] = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": total,
            "availableReplicas": total,
            "conditions": conditions,
        }
        unavailable = max(0, replicas - total)
        if unavailable:
            status["unavailableReplicas"] = unavailable
        meta = copy.deepcopy(deployment["metadata"])
        if new is not None:
            meta.setdefault("annotations", {})[REVISION] = str(_revision(new))
        if status != old_status or meta != deployment["metadata"]:
            updated_deployment = copy.deepcopy(deployment)
            updated_deployment["status"] = status
            updated_deployment["metadata"] = meta
            self.store.put(self.deployments, updated_deployment)


def _condition(previous: dict[str, Any] | None, type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    """A condition that keeps its times while nothing about it changes."""
    if previous and (previous.get("status"), previous.get("reason"), previous.get("message")) == (
        status,
        reason,
        message,
    ):
        return previous
    stamp = now()
    transition = previous.get("lastTransitionTime", stamp) if previous and previous.get("status") == status else stamp
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }
