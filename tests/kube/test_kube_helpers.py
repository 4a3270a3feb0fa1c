"""Pure helpers of canary.kube: template identity, ReplicaSet ordering, selectors, backoff, time formats."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import pytest
from kubernetes.client import Configuration, CoreV1Api

from canary.controller import edits
from canary.kube import owned_replicasets, pod_template, revision, template_hash
from canary.kube.backoff import Backoff
from canary.kube.client import KubeConfigError, load_api_client
from canary.kube.deployments import label_selector
from canary.kube.wire import format_micro_time, parse_time
from canary_testkit.kube import KubeSim

TEMPLATE = {
    "metadata": {"creationTimestamp": None, "labels": {"app": "shop", "tier": "web"}},
    "spec": {
        "containers": [{"name": "shop", "image": "shop:1.2", "resources": {}, "ports": [{"containerPort": 8080}]}],
        "restartPolicy": "Always",
    },
}


def deployment(uid: str = "dep-uid", template: dict | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": "prod", "uid": uid},
        "spec": {"selector": {"matchLabels": {"app": "shop"}}, "template": copy.deepcopy(template or TEMPLATE)},
    }


def replicaset(name: str, rev: str | None, owner_uid: str = "dep-uid", template: dict | None = None) -> dict:
    tpl = copy.deepcopy(template or TEMPLATE)
    tpl["metadata"]["labels"]["pod-template-hash"] = name.rsplit("-", 1)[-1]
    annotations = {"deployment.kubernetes.io/revision": rev} if rev is not None else {}
    return {
        "metadata": {
            "name": name,
            "namespace": "prod",
            "annotations": annotations,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"kind": "Deployment", "name": "shop", "uid": owner_uid, "controller": True}],
        },
        "spec": {"template": tpl},
    }


def test_template_hash_same_for_deployment_and_its_replicaset() -> None:
    dep = deployment()
    rs = replicaset("shop-7d9f8c", "3")
    assert template_hash(dep) == template_hash(rs)
    assert "pod-template-hash" not in pod_template(rs)["metadata"]["labels"]


def test_template_hash_ignores_key_order_and_empty_fields_but_not_content() -> None:
    dep = deployment()
    reordered = deployment(template={"spec": TEMPLATE["spec"], "metadata": {"labels": {"tier": "web", "app": "shop"}}})
    assert template_hash(dep) == template_hash(reordered)
    changed = deployment()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "shop:1.3"
    assert template_hash(changed) != template_hash(dep)
    annotated = deployment()
    annotated["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}
    assert template_hash(annotated) != template_hash(dep)


def test_template_hash_does_not_modify_its_argument() -> None:
    rs = replicaset("shop-abc", "1")
    before = copy.deepcopy(rs)
    template_hash(rs)
    assert rs == before


def test_undo_restores_the_template_without_only_pod_template_hash_and_resumes() -> None:
    rs = replicaset("shop-abc", "1")
    restored = deployment(template={"metadata": {"labels": {}}, "spec": {}})
    restored["spec"]["paused"] = True
    edits.apply(restored, [edits.RestoreTemplate("shop-abc", rs["spec"]["template"])])
    template = restored["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "shop", "tier": "web"}
    assert template["spec"] == TEMPLATE["spec"]
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "abc", "the ReplicaSet is not changed"
    assert template_hash(restored) == template_hash(rs)
    assert "paused" not in restored["spec"]


def test_owned_replicasets_sorted_by_numeric_revision_newest_last() -> None:
    items = [
        replicaset("shop-10", "10"),
        replicaset("other-1", "1", owner_uid="someone-else"),
        replicaset("shop-9", "9"),
        replicaset("shop-x", None),
        replicaset("shop-2", "2"),
    ]
    names = [rs["metadata"]["name"] for rs in owned_replicasets(deployment(), items)]
    assert names == ["shop-x", "shop-2", "shop-9", "shop-10"]
    assert revision(items[0]) == 10
    assert revision(items[3]) is None
    assert owned_replicasets({"metadata": {"name": "no-uid"}}, items) == []


def test_label_selector_formats_labels_and_expressions() -> None:
    selector = {
        "matchLabels": {"app": "shop", "env": "prod"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "legacy", "operator": "NotIn", "values": ["yes"]},
            {"key": "team", "operator": "Exists"},
            {"key": "deprecated", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(selector) == "app=shop,env=prod,tier in (web,api),legacy notin (yes),team,!deprecated"
    assert label_selector(None) == ""
    with pytest.raises(ValueError, match=r"'Near'.*'tier'"):
        label_selector({"matchExpressions": [{"key": "tier", "operator": "Near"}]})


def test_backoff_grows_to_the_cap_with_bounded_jitter_and_resets() -> None:
    low = Backoff(initial=0.5, maximum=4.0, jitter=0.2, rng=lambda: 0.0)
    assert [round(low.next(), 3) for _ in range(6)] == [0.4, 0.8, 1.6, 3.2, 3.2, 3.2]
    high = Backoff(initial=0.5, maximum=4.0, jitter=0.2, rng=lambda: 0.999999)
    delays = [high.next() for _ in range(6)]
    assert delays[0] == pytest.approx(0.6, rel=1e-3)
    assert max(delays) == 4.0
    high.reset()
    assert high.next() == pytest.approx(0.6, rel=1e-3)
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0)


def test_micro_time_always_has_six_fraction_digits_in_utc() -> None:
    whole_second = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert format_micro_time(whole_second) == "2026-03-01T12:00:05.000000Z"
    assert parse_time("2026-03-01T12:00:05.000000Z") == whole_second
    assert parse_time("yesterday") is None


def test_load_api_client_names_the_missing_or_broken_kubeconfig(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(KubeConfigError, match=re.escape(f"{missing}: file not found")):
        load_api_client(str(missing))
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [\n")
    with pytest.raises(KubeConfigError, match=re.escape(str(broken))):
        load_api_client(str(broken))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError, match=r"\.kube/config: file not found"):
        load_api_client()


def test_load_api_client_reaches_the_cluster_of_the_kubeconfig_without_global_config(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    default_before = Configuration.get_default_copy().host
    with KubeSim(rollout_step_seconds=None) as sim:
        path = sim.write_kubeconfig(tmp_path / "kubeconfig")
        client = load_api_client(str(path))
        names = [ns.metadata.name for ns in CoreV1Api(client).list_namespace().items]
        assert "default" in names
        monkeypatch.setenv("KUBECONFIG", str(path))
        assert load_api_client(context="kube-sim").configuration.host == sim.url
        with pytest.raises(KubeConfigError, match=r"context 'staging'"):
            load_api_client(str(path), context="staging")
        client.close()
    assert Configuration.get_default_copy().host == default_before, "the global default must stay untouched"
