"""The pure parts of the simulator: selectors, patches, field ownership and the pod-template hash."""

from __future__ import annotations

import pytest

from canary_testkit.kube import StatusError, pod_template_hash
from canary_testkit.kube import managed_fields as mf
from canary_testkit.kube.patches import apply_merge, json_patch, merge_patch, strategic_merge_patch
from canary_testkit.kube.selectors import format_label_selector, labels_match, parse_label_selector


def _match(selector: str, labels: dict[str, str]) -> bool:
    return labels_match(parse_label_selector(selector), {"metadata": {"labels": labels}})


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("env in (prod,staging)", {"env": "staging"}, True),
        ("env notin (prod)", {"env": "prod"}, False),
        ("env notin (prod)", {}, True),
        ("canary.mop.dev/enabled", {"canary.mop.dev/enabled": "true"}, True),
        ("!canary.mop.dev/enabled", {"canary.mop.dev/enabled": "true"}, False),
        ("a=1, b in (2, 3), !c", {"a": "1", "b": "3"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selector_semantics(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert _match(selector, labels) is expected


@pytest.mark.parametrize("bad", ["a b", "x in ()", "app=we b", "=x", "a,,b", "UPPER/x=y", "k=" + "v" * 64])
def test_bad_label_selectors_are_400_naming_the_selector(bad: str) -> None:
    with pytest.raises(StatusError) as err:
        parse_label_selector(bad)
    assert err.value.code == 400
    assert "unable to parse requirement" in err.value.message


def test_empty_label_value_is_valid() -> None:
    assert _match("app=", {"app": ""}) and not _match("app=", {"app": "web"})


def test_label_selector_object_round_trip() -> None:
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["a"]}]}
    assert format_label_selector(selector) == "app=web,env in (a)"


def test_merge_patch_rfc7386() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None, "d": 3}, "l": [3]}) == {
        "a": {"c": 2, "d": 3},
        "l": [3],
    }


def test_strategic_merge_by_keys_and_delete_directive() -> None:
    current = {"containers": [{"name": "a", "image": "1", "ports": [{"containerPort": 80}]}, {"name": "b"}]}
    patch = {"containers": [{"name": "a", "ports": [{"containerPort": 81}]}, {"name": "b", "$patch": "delete"}]}
    assert strategic_merge_patch(current, patch) == {
        "containers": [{"name": "a", "image": "1", "ports": [{"containerPort": 80}, {"containerPort": 81}]}]
    }
    # Service ports merge by port; unkeyed lists are replaced
    svc = {"ports": [{"port": 80, "name": "http"}], "args": ["a"]}
    assert strategic_merge_patch(svc, {"ports": [{"port": 80, "targetPort": 8080}], "args": ["b"]}) == {
        "ports": [{"port": 80, "name": "http", "targetPort": 8080}],
        "args": ["b"],
    }


def test_json_patch_operations_and_errors() -> None:
    doc = {"a": [1, 2], "b": {"c": "x"}, "k/e~y": 1}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "replace", "path": "/a/0", "value": 0},
        {"op": "move", "from": "/b/c", "path": "/d"},
        {"op": "copy", "from": "/d", "path": "/e"},
        {"op": "remove", "path": "/k~1e~0y"},
        {"op": "test", "path": "/e", "value": "x"},
    ]
    assert json_patch(doc, ops) == {"a": [0, 2, 3], "b": {}, "d": "x", "e": "x"}
    assert doc["a"] == [1, 2]  # the input is not changed
    for bad in ([{"op": "remove", "path": "/missing"}], [{"op": "jump", "path": "/a"}], [{"op": "add", "path": "/a"}]):
        with pytest.raises(StatusError) as err:
            json_patch(doc, bad)
        assert err.value.code == 422
    with pytest.raises(StatusError):
        json_patch(doc, {"op": "add"})


def test_apply_merge_keeps_unmentioned_fields() -> None:
    live = {"spec": {"replicas": 3, "paused": True, "containers": [{"name": "a", "image": "1"}]}}
    assert apply_merge(live, {"spec": {"replicas": 4, "containers": [{"name": "a", "image": "2"}]}}) == {
        "spec": {"replicas": 4, "paused": True, "containers": [{"name": "a", "image": "2"}]}
    }


def test_field_paths_round_trip_through_fields_v1() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "X",
        "metadata": {"name": "n", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "app", "image": "i"}], "args": ["x"]},
        "status": {"ignored": True},
    }
    paths = set(mf.leaves(obj))
    assert ("f:spec", "f:containers", 'k:{"name":"app"}', "f:image") in paths
    assert ("f:spec", "f:args") in paths and not any(p[0] == "f:status" for p in paths)
    assert mf.from_fields_v1(mf.to_fields_v1(paths)) == paths
    mf.remove(obj, ("f:spec", "f:containers", 'k:{"name":"app"}', "f:image"))
    assert "containers" not in obj["spec"]  # the item and then the list it left empty are gone
    mf.remove(obj, ("f:metadata", "f:labels", "f:a"))
    assert "labels" not in obj["metadata"]


def test_pod_template_hash_is_stable_short_and_ignores_its_own_label() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "1"}]}}
    value = pod_template_hash(template)
    assert value == pod_template_hash(template) and 6 <= len(value) <= 10 and value.isalnum()
    labelled = {**template, "metadata": {"labels": {"app": "web", "pod-template-hash": value}}}
    assert pod_template_hash(labelled) == value
    changed = {**template, "spec": {"containers": [{"name": "a", "image": "2"}]}}
    assert pod_template_hash(changed) != value
