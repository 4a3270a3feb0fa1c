"""Deployment reads and guarded writes against the simulated API server (whose Deployment controller
creates ReplicaSets with revision annotations and pod-template-hash labels)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kube_testkit import wait_until

from canary.controller import edits
from canary.kube import (
    Deployments,
    KubeApiError,
    revision,
    template_hash,
)
from canary.kube.deployments import merge_patch_between, owned_replicasets
from canary_testkit.kube import KubeSim
from canary_testkit.kube.identity import install_controller_identity

DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/default/deployments/web"


def web(image: str = "web:1") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"canary.mop.dev/enabled": "true"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


def set_image(image: str) -> Callable[[dict], dict]:
    def mutate(d: dict) -> dict:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return d

    return mutate


def writes(sim: KubeSim) -> int:
    return sum(1 for r in sim.requests if r.method == "PATCH" and r.path == DEPLOYMENT_PATH)


@pytest.fixture
def deployments(sim: KubeSim) -> Iterator[Deployments]:
    """As the controller runs: the ServiceAccount of manifests/ with its RBAC rules (which grant `patch`, not
    `update`); nothing it sends may be refused."""
    identity = install_controller_identity(sim)
    yield Deployments(sim.api_client(identity.token))
    assert not sim.denials_for(identity.user)


def test_merge_patch_between_sends_only_the_difference() -> None:
    current = {"metadata": {"annotations": {"a": "1", "b": "2"}, "name": "web"},
               "spec": {"paused": True, "replicas": 2, "template": {"containers": [{"image": "x:1"}, {"image": "y"}]}}}
    desired = {"metadata": {"annotations": {"a": "1", "c": "3"}, "name": "web"},
               "spec": {"replicas": 2, "template": {"containers": [{"image": "x:2"}, {"image": "y"}]}}}
    assert merge_patch_between(current, desired) == {
        "metadata": {"annotations": {"b": None, "c": "3"}},
        "spec": {"paused": None, "template": {"containers": [{"image": "x:2"}, {"image": "y"}]}},
    }
    assert merge_patch_between(current, current) == {}


def test_a_guarded_write_is_a_merge_patch_carrying_the_resource_version(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    sim.clear_requests()
    def pause(d: dict) -> dict:
        d["spec"]["paused"] = True
        return d

    outcome = deployments.update_deployment("default", "web", pause, expect_template_hash=template_hash(created))
    assert outcome.status == "written", outcome.reason
    (write,) = [r for r in sim.requests if r.path == DEPLOYMENT_PATH and r.method != "GET"]
    assert (write.method, write.content_type) == ("PATCH", "application/merge-patch+json")


@pytest.fixture
def created(sim: KubeSim) -> dict:
    sim.create(web())
    assert wait_until(lambda: len(sim.list("apps/v1", "replicasets", "default")) == 1)
    found = sim.get("apps/v1", "deployments", "default", "web")
    assert found is not None
    return found


def image_of(sim: KubeSim) -> str:
    found = sim.get("apps/v1", "deployments", "default", "web")
    assert found is not None
    return str(found["spec"]["template"]["spec"]["containers"][0]["image"])


def roll_out(sim: KubeSim, deployments: Deployments, image: str) -> None:
    before = len(sim.list("apps/v1", "replicasets", "default"))
    current = deployments.read_deployment("default", "web")
    assert current is not None
    outcome = deployments.update_deployment("default", "web", set_image(image),
                                            expect_template_hash=template_hash(current))
    assert outcome.status == "written", outcome.reason
    assert wait_until(lambda: len(sim.list("apps/v1", "replicasets", "default")) == before + 1)


def test_read_deployment_returns_the_wire_object_or_none(sim: KubeSim, deployments: Deployments, created: dict) -> None:
    found = deployments.read_deployment("default", "web")
    assert found is not None
    assert found["kind"] == "Deployment" and found["metadata"]["uid"] == created["metadata"]["uid"]
    assert found["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"
    assert deployments.read_deployment("default", "absent") is None
    sim.fail_next(f"GET {DEPLOYMENT_PATH}", 500)
    with pytest.raises(KubeApiError, match="read Deployment default/web: HTTP 500"):
        deployments.read_deployment("default", "web")


def test_replicasets_are_owned_and_ordered_by_revision_and_hash_like_their_template(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    hashes = [template_hash(created)]
    for image in ("web:2", "web:3"):
        roll_out(sim, deployments, image)
        current = deployments.read_deployment("default", "web")
        assert current is not None
        hashes.append(template_hash(current))
    sim.create({**web(), "metadata": {"name": "stranger", "namespace": "default"}})  # same labels, not owned

    current = deployments.read_deployment("default", "web")
    assert current is not None
    replicasets = owned_replicasets(current, sim.list("apps/v1", "replicasets", "default"))
    assert [revision(rs) for rs in replicasets] == [1, 2, 3]
    assert [template_hash(rs) for rs in replicasets] == hashes, "a ReplicaSet hashes like the template it runs"
    assert len(set(hashes)) == 3
    assert all("pod-template-hash" in rs["metadata"]["labels"] for rs in replicasets)
    assert all(rs["metadata"]["ownerReferences"][0]["uid"] == current["metadata"]["uid"] for rs in replicasets)


def test_undo_writes_back_the_previous_template_like_kubectl(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    roll_out(sim, deployments, "web:2")
    current = deployments.read_deployment("default", "web")
    assert current is not None
    previous = owned_replicasets(current, sim.list("apps/v1", "replicasets", "default"))[-2]

    def undo(d: dict) -> dict:
        edits.apply(d, [edits.RestoreTemplate(previous["metadata"]["name"], previous["spec"]["template"])])
        return d

    outcome = deployments.update_deployment("default", "web", undo, expect_template_hash=template_hash(current))
    assert outcome.status == "written"
    assert outcome.deployment is not None and template_hash(outcome.deployment) == template_hash(previous)
    assert "pod-template-hash" not in outcome.deployment["spec"]["template"]["metadata"]["labels"]
    assert outcome.deployment["metadata"]["annotations"]["canary.mop.dev/enabled"] == "true"
    assert image_of(sim) == "web:1"


def test_update_retries_injected_conflicts_and_writes_once(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    sim.fail_next(f"PATCH {DEPLOYMENT_PATH}", 409, times=2)
    sim.clear_requests()
    outcome = deployments.update_deployment("default", "web", set_image("web:2"),
                                            expect_template_hash=template_hash(created))
    assert outcome.status == "written" and outcome.conflicts == 2
    assert writes(sim) == 3
    assert image_of(sim) == "web:2"
    after = sim.get("apps/v1", "deployments", "default", "web")
    assert after is not None and after["metadata"]["generation"] == created["metadata"]["generation"] + 1


def test_update_gives_up_after_max_conflicts_without_writing(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    sim.fail_next(f"PATCH {DEPLOYMENT_PATH}", 409, times=3)
    outcome = deployments.update_deployment("default", "web", set_image("web:2"),
                                            expect_template_hash=template_hash(created), max_conflicts=2)
    assert outcome.status == "conflict" and outcome.conflicts == 3
    assert "409 Conflict after 2 retries" in outcome.reason
    assert image_of(sim) == "web:1"


def test_a_concurrent_writer_causes_a_real_conflict_that_is_merged_on_retry(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    calls = []

    def pause_and_race(d: dict) -> dict:
        calls.append(d["metadata"]["resourceVersion"])
        if len(calls) == 1:  # someone else writes between our read and our patch
            sim.patch("apps/v1", "deployments", "default", "web", {"metadata": {"labels": {"team": "shop"}}})
        d["spec"]["paused"] = True
        return d

    outcome = deployments.update_deployment("default", "web", pause_and_race, expect_template_hash=None)
    assert outcome.status == "written" and outcome.conflicts == 1
    assert len(calls) == 2 and calls[0] != calls[1], "the retry mutates a fresh read"
    after = sim.get("apps/v1", "deployments", "default", "web")
    assert after is not None and after["spec"]["paused"] is True
    assert after["metadata"]["labels"] == {"team": "shop"}, "the other writer's change survives"


def test_template_changed_since_the_verdict_drops_the_write(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    verdict_hash = template_hash(created)
    roll_out(sim, deployments, "web:2")  # a new revision lands after the verdict
    sim.clear_requests()
    called = []
    outcome = deployments.update_deployment(
        "default", "web", lambda d: called.append(1) or d, expect_template_hash=verdict_hash
    )
    assert outcome.status == "template-changed"
    assert verdict_hash in outcome.reason and "write dropped" in outcome.reason
    assert called == [] and writes(sim) == 0
    assert image_of(sim) == "web:2"


def test_template_changed_between_a_conflict_and_the_retry_drops_the_write(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    def racing_rollout(d: dict) -> dict:
        sim.patch("apps/v1", "deployments", "default", "web",
                  {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:9"}]}}}},
                  patch_type="application/strategic-merge-patch+json")
        d["spec"]["replicas"] = 0
        return d

    outcome = deployments.update_deployment("default", "web", racing_rollout,
                                            expect_template_hash=template_hash(created))
    assert outcome.status == "template-changed" and outcome.conflicts == 1
    after = sim.get("apps/v1", "deployments", "default", "web")
    assert after is not None and after["spec"]["replicas"] == 2 and image_of(sim) == "web:9"


def test_nothing_to_do_and_not_found_are_reported_without_writing(
    sim: KubeSim, deployments: Deployments, created: dict
) -> None:
    sim.clear_requests()
    assert deployments.update_deployment("default", "web", lambda d: None, expect_template_hash=None).status == (
        "unchanged"
    )
    same = deployments.update_deployment("default", "web", lambda d: d, expect_template_hash=None)
    assert same.status == "unchanged"
    missing = deployments.update_deployment("default", "absent", set_image("x"), expect_template_hash=None)
    assert missing.status == "not-found" and "default/absent" in missing.reason
    assert writes(sim) == 0


def test_rejected_write_is_an_error_naming_the_deployment(deployments: Deployments, created: dict) -> None:
    def break_it(d: dict) -> dict:
        d["spec"]["replicas"] = -1
        return d

    outcome = deployments.update_deployment("default", "web", break_it, expect_template_hash=None)
    assert outcome.status == "error"
    assert outcome.reason.startswith("write Deployment default/web: HTTP 422")


def test_backend_down_is_an_error_not_a_guess(sim: KubeSim, deployments: Deployments, created: dict) -> None:
    sim.fail_next(f"GET {DEPLOYMENT_PATH}", 500)
    outcome = deployments.update_deployment("default", "web", set_image("web:2"),
                                            expect_template_hash=template_hash(created))
    assert outcome.status == "error" and "HTTP 500" in outcome.reason
    assert image_of(sim) == "web:1"


def test_a_write_fence_that_says_no_refuses_every_write(sim: KubeSim, created: dict) -> None:
    """Leadership lost: the fence is asked right before the write, and nothing is sent."""
    leading = [False]
    fenced = Deployments(sim.api_client(install_controller_identity(sim).token), fence=lambda: leading[0])
    sim.clear_requests()
    outcome = fenced.update_deployment("default", "web", set_image("web:2"), expect_template_hash=None)
    scaled = fenced.scale_replicaset("default", "web-rejected", 0)
    assert (outcome.status, scaled.status) == ("fenced", "fenced")
    assert "no longer leads" in outcome.reason and "no longer leads" in scaled.reason
    assert writes(sim) == 0 and image_of(sim) == "web:1"
    assert not [r for r in sim.requests if r.method == "PATCH"], "a fenced replica sends no patch at all"
    leading[0] = True
    assert fenced.update_deployment("default", "web", set_image("web:2"), expect_template_hash=None).status == "written"
