"""Informer against the simulated API server with the real client: events, cache, resume, 410, reconnect, resync."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from kube_testkit import Recorder, wait_until
from kubernetes.client import ApiClient

from canary.kube import CONFIGMAPS, DEPLOYMENTS, Informer, slo_configmap_informer
from canary_testkit.kube import KubeSim

LABEL = "canary.mop.dev/slo-config"


def configmap(name: str, ns: str = "default", labelled: bool = True, value: str = "1") -> dict:
    labels = {LABEL: "true"} if labelled else {"other": "x"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "data": {"slo.yaml": value}}


def set_value(sim: KubeSim, name: str, value: str, ns: str = "default") -> None:
    sim.patch("v1", "configmaps", ns, name, {"data": {"slo.yaml": value}})


def watch_requests(sim: KubeSim) -> list[dict[str, str]]:
    return [r.query for r in sim.requests if r.path.endswith("/configmaps") and r.query.get("watch") == "true"]


def list_requests(sim: KubeSim) -> list[dict[str, str]]:
    return [r.query for r in sim.requests if r.path.endswith("/configmaps") and r.query.get("watch") != "true"]


def start(api: ApiClient, handler: Recorder, **kwargs: object) -> Informer:
    options: dict = {"namespaces": ["default"], "resync_seconds": None, "backoff_initial": 0.05, "backoff_max": 0.4}
    options.update(kwargs)
    informer = Informer(api, CONFIGMAPS, handler, label_selector=LABEL, **options).start()
    assert informer.wait_for_sync(5), "informer never synced"
    return informer


def test_informer_delivers_adds_updates_deletes_and_keeps_the_cache(sim: KubeSim, api: ApiClient) -> None:
    sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    sim.create(configmap("before"))
    sim.create(configmap("unlabelled", labelled=False))
    sim.create(configmap("elsewhere", ns="shop"))
    rec = Recorder()
    informer = start(api, rec)
    try:
        assert wait_until(lambda: rec.has("ADDED", "before"))
        sim.create(configmap("new"))
        assert wait_until(lambda: rec.has("ADDED", "new"))
        set_value(sim, "new", "2")
        assert wait_until(lambda: rec.has("MODIFIED", "new"))
        assert informer.get("default", "new")["data"] == {"slo.yaml": "2"}
        sim.delete("v1", "configmaps", "default", "before")
        assert wait_until(lambda: rec.has("DELETED", "before"))

        assert informer.get("default", "before") is None
        assert [o["metadata"]["name"] for o in informer.list()] == ["new"]
        cached = informer.get("default", "new")
        assert cached["kind"] == "ConfigMap" and cached["apiVersion"] == "v1"
        assert cached["metadata"]["creationTimestamp"].endswith("Z")
        seen = {name for _, _, name, _ in rec.snapshot()}
        assert seen == {"before", "new"}, "the label selector and the namespace list must filter"
    finally:
        informer.stop()


def test_informer_over_all_namespaces_and_several_namespaces(sim: KubeSim, api: ApiClient) -> None:
    for ns in ("shop", "pay"):
        sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        sim.create(configmap(f"slo-{ns}", ns=ns))
    sim.create(configmap("slo-default"))
    everywhere, some = Recorder(), Recorder()
    all_ns = slo_configmap_informer(api, everywhere, resync_seconds=None).start()
    two_ns = start(api, some, namespaces=["shop", "pay"])
    try:
        assert all_ns.wait_for_sync(5)
        assert wait_until(lambda: len(everywhere.of("ADDED")) == 3 and len(some.of("ADDED")) == 2)
        assert sorted(everywhere.of("ADDED")) == ["slo-default", "slo-pay", "slo-shop"]
        assert sorted(some.of("ADDED")) == ["slo-pay", "slo-shop"]
        assert [o["metadata"]["name"] for o in two_ns.list("pay")] == ["slo-pay"]
        sim.create(configmap("late", ns="pay"))
        assert wait_until(lambda: some.has("ADDED", "late") and everywhere.has("ADDED", "late"))
    finally:
        all_ns.stop()
        two_ns.stop()


def test_watch_closed_by_the_server_resumes_from_the_last_resource_version(sim: KubeSim, api: ApiClient) -> None:
    for name in ("a", "b"):
        sim.create(configmap(name))
    rec = Recorder()
    informer = start(api, rec)
    try:
        assert wait_until(lambda: len(rec.of("ADDED")) == 2)
        set_value(sim, "a", "2")
        assert wait_until(lambda: rec.has("MODIFIED", "a"))
        last_rv = informer.get("default", "a")["metadata"]["resourceVersion"]
        watches_before = len(watch_requests(sim))

        sim.close_watches()
        assert wait_until(lambda: len(watch_requests(sim)) > watches_before), "no new watch after the close"
        resumed = watch_requests(sim)[watches_before]
        assert int(resumed["resourceVersion"]) >= int(last_rv)
        sim.create(configmap("c"))
        assert wait_until(lambda: rec.has("ADDED", "c"))

        assert len(list_requests(sim)) == 1, "a closed watch must not cause a re-list"
        assert informer.relists == 0
        assert rec.of("ADDED") == ["a", "b", "c"], "no duplicate ADDED events"
        assert rec.of("MODIFIED") == ["a"]
    finally:
        informer.stop()


def test_expired_watch_relists_and_reports_only_real_differences(sim: KubeSim, api: ApiClient) -> None:
    for name in ("keep", "change", "gone"):
        sim.create(configmap(name))
    rec = Recorder()
    informer = start(api, rec)
    try:
        assert wait_until(lambda: len(rec.of("ADDED")) == 3)
        rec.clear()
        sim.pause()  # watches closed, every request 503: what follows is missed by the watch
        set_value(sim, "change", "2")
        sim.delete("v1", "configmaps", "default", "gone")
        sim.create(configmap("born"))
        sim.expire_watch_history()
        sim.resume()

        assert wait_until(lambda: informer.relists == 1 and rec.has("DELETED", "gone") and rec.has("ADDED", "born"))
        assert wait_until(lambda: rec.has("MODIFIED", "change"))
        reported = sorted((kind, name) for kind, _, name, _ in rec.snapshot())
        assert reported == [("ADDED", "born"), ("DELETED", "gone"), ("MODIFIED", "change")], (
            "exactly the differences; the unchanged object is not reported again"
        )
        assert [o["metadata"]["name"] for o in informer.list()] == ["born", "change", "keep"]
        assert informer.get("default", "change")["data"] == {"slo.yaml": "2"}
        sim.create(configmap("after"))
        assert wait_until(lambda: rec.has("ADDED", "after")), "watching resumes after the re-list"
    finally:
        informer.stop()


def test_failing_watches_are_retried_with_growing_backoff(sim: KubeSim, api: ApiClient) -> None:
    sim.create(configmap("a"))
    rec = Recorder()
    informer = start(api, rec, backoff_initial=0.05, backoff_max=5.0)
    try:
        assert wait_until(lambda: rec.has("ADDED", "a"))
        sim.fail_next("WATCH /api/v1/namespaces/default/configmaps", 500, times=5)
        started = time.monotonic()
        sim.close_watches()
        sim.create(configmap("during"))
        assert wait_until(lambda: rec.has("ADDED", "during"), timeout=10)
        elapsed = time.monotonic() - started

        assert informer.reconnects == 5
        # Waits of 0.05, 0.1, 0.2, 0.4, 0.8 s, each at least 80 % of that: 1.24 s at least in all.
        assert elapsed >= 1.24, f"retried too fast ({elapsed:.2f}s for 5 failures)"
        assert informer.relists == 0 and len(list_requests(sim)) == 1, "a failed watch resumes, no re-list"
        assert rec.of("ADDED") == ["a", "during"]
    finally:
        informer.stop()


def test_reconnects_after_the_server_was_unavailable(sim: KubeSim, api: ApiClient) -> None:
    rec = Recorder()
    informer = start(api, rec)
    try:
        sim.pause()  # every request 503 (with Retry-After, which the client library honours)
        sim.create(configmap("while-down"))
        threading.Event().wait(0.5)
        assert not rec.has("ADDED", "while-down")
        sim.resume()
        assert wait_until(lambda: rec.has("ADDED", "while-down"), timeout=10)
        assert rec.of("ADDED") == ["while-down"] and informer.relists == 0
    finally:
        informer.stop()


def test_reconnects_when_the_port_refuses_connections(sim: KubeSim, api: ApiClient) -> None:
    rec = Recorder()
    informer = start(api, rec)
    try:
        sim.pause(refuse_connections=True)
        sim.create(configmap("while-refused"))
        assert wait_until(lambda: informer.reconnects >= 1)
        sim.resume()
        assert wait_until(lambda: rec.has("ADDED", "while-refused"))
        assert rec.of("ADDED") == ["while-refused"]
    finally:
        informer.stop()


def test_not_synced_until_the_first_list_succeeds(sim: KubeSim, api: ApiClient) -> None:
    sim.create(configmap("a"))
    sim.pause()
    rec = Recorder()
    informer = Informer(api, CONFIGMAPS, rec, namespaces=["default"], resync_seconds=None, backoff_initial=0.05,
                        backoff_max=0.2).start()
    try:
        assert not informer.wait_for_sync(0.5)
        assert not informer.has_synced and informer.list() == []
        sim.resume()
        assert informer.wait_for_sync(5)
        assert wait_until(lambda: rec.has("ADDED", "a"))
    finally:
        informer.stop()


def test_resync_redelivers_every_cached_object_periodically(sim: KubeSim, api: ApiClient) -> None:
    for name in ("a", "b"):
        sim.create(configmap(name))
    rec = Recorder()
    informer = start(api, rec, resync_seconds=0.2)
    try:
        assert wait_until(lambda: rec.of("RESYNC").count("a") >= 2 and rec.of("RESYNC").count("b") >= 2)
        assert rec.of("ADDED") == ["a", "b"]
    finally:
        informer.stop()


def test_handler_exceptions_are_logged_and_do_not_stop_delivery(
    sim: KubeSim, api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(fail_on="bad")
    informer = start(api, rec)
    try:
        with caplog.at_level(logging.ERROR, logger="canary.kube.informer"):
            sim.create(configmap("bad"))
            sim.create(configmap("good"))
            assert wait_until(lambda: rec.has("ADDED", "good"))
        assert "ADDED handler failed on ConfigMap default/bad" in caplog.text
    finally:
        informer.stop()


def test_stop_joins_the_threads_and_delivers_nothing_more(sim: KubeSim, api: ApiClient) -> None:
    rec = Recorder()
    informer = Informer(api, DEPLOYMENTS, rec, resync_seconds=0.1).start()
    assert informer.wait_for_sync(5)
    before = {t.name for t in threading.enumerate() if t.name.startswith("informer-deployment")}
    assert before, "the informer runs in named threads"
    informer.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("informer-deployment")]
    calls = len(rec.snapshot())
    sim.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}})
    threading.Event().wait(0.3)
    assert len(rec.snapshot()) == calls
