"""Fault injection, pausing the server, the request log and clean shutdown."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from canary_testkit.kube import KubeSim

from .manifests import deployment


def _without_retries(sim: KubeSim) -> client.CoreV1Api:
    configuration = client.Configuration(host=sim.url)
    configuration.retries = 0
    return client.CoreV1Api(client.ApiClient(configuration))


def test_fail_next_answers_matching_requests_with_the_status(apps: client.AppsV1Api, sim: KubeSim) -> None:
    apps.create_namespaced_deployment("default", deployment())
    rule = sim.fail_next("PUT /apis/apps/v1/namespaces/*/deployments/web", status=409, times=2)
    current = apps.read_namespaced_deployment("web", "default")
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            apps.replace_namespaced_deployment("web", "default", current)
        assert err.value.status == 409
    assert rule.hits == 2 and rule.remaining == 0
    current.spec.replicas = 1
    assert apps.replace_namespaced_deployment("web", "default", current).spec.replicas == 1
    # other verbs and paths were never affected
    sim.fail_next("GET /api/v1/namespaces/default/configmaps", status=500, message="etcd is sad")
    core = client.CoreV1Api(sim.api_client())
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("default")
    assert err.value.status == 500 and "etcd is sad" in err.value.body
    assert core.list_namespaced_config_map("default").items == []


def test_fail_next_on_watch_only(core: client.CoreV1Api, sim: KubeSim) -> None:
    sim.fail_next("WATCH /api/v1/namespaces/default/configmaps", status=500)
    assert core.list_namespaced_config_map("default").items == []
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1))
    assert err.value.status == 500


def test_bad_fault_patterns_are_refused(sim: KubeSim) -> None:
    with pytest.raises(ValueError, match="must be"):
        sim.fail_next("FETCH something")
    with pytest.raises(ValueError, match="times"):
        sim.fail_next("GET /api", times=0)


def test_delay_next_slows_one_answer(core: client.CoreV1Api, sim: KubeSim) -> None:
    sim.delay_next("GET /api/v1/namespaces/default/configmaps", seconds=0.5)
    started = time.monotonic()
    core.list_namespaced_config_map("default")
    slow = time.monotonic() - started
    assert slow >= 0.5
    impatient = _without_retries(sim)
    sim.delay_next("GET /api/v1/namespaces/default/configmaps", seconds=2)
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="Read timed out"):
        impatient.list_namespaced_config_map("default", _request_timeout=0.3)


def test_pause_answers_503_and_resume_serves_again(core: client.CoreV1Api, sim: KubeSim) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "kept"}})
    sim.pause()
    unretried = _without_retries(sim)
    with pytest.raises(ApiException) as err:
        unretried.list_namespaced_config_map("default", _request_timeout=5)
    assert err.value.status == 503
    sim.resume()
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["kept"]


def test_pause_refusing_connections_closes_the_port(core: client.CoreV1Api, sim: KubeSim) -> None:
    sim.pause(refuse_connections=True)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", sim.port), timeout=2):
        pass
    sim.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "while-down", "namespace": "default"}})
    sim.resume()
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["while-down"]


def test_request_log_counts_verbs_and_content_types(apps: client.AppsV1Api, sim: KubeSim) -> None:
    sim.clear_requests()
    apps.create_namespaced_deployment("default", deployment())
    apps.patch_namespaced_deployment("web", "default", {"spec": {"paused": True}})
    apps.read_namespaced_deployment("web", "default")
    methods = [(r.method, r.path, r.content_type) for r in sim.requests]
    assert methods == [
        ("POST", "/apis/apps/v1/namespaces/default/deployments", ""),  # the client sends no Content-Type here
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", "application/strategic-merge-patch+json"),
        ("GET", "/apis/apps/v1/namespaces/default/deployments/web", ""),
    ]


def test_stop_closes_watches_and_joins_every_thread() -> None:
    before = set(threading.enumerate())
    sim = KubeSim(rollout_step_seconds=0.05).start()
    core = client.CoreV1Api(sim.api_client())
    failures: list[BaseException] = []

    def consume() -> None:
        try:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=30):
                pass
        except Exception as err:  # the connection ends under it: either way the loop must end
            failures.append(err)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.2)
    started = time.monotonic()
    sim.stop()
    consumer.join(10)
    assert not consumer.is_alive()
    assert time.monotonic() - started < 5
    assert set(threading.enumerate()) <= before
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", sim.port), timeout=2):
        pass
