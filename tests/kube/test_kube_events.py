"""EventRecorder against the simulated API server: creation, aggregation, truncation, never raising."""

from __future__ import annotations

import logging
import time

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from canary.kube import EventRecorder
from canary.kube.wire import parse_time
from canary_testkit.kube import KubeSim


@pytest.fixture
def web(sim: KubeSim) -> dict:
    return sim.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
            },
        }
    )


def events(api: ApiClient) -> list[dict]:
    """Our Events as `kubectl get events -o json` shows them, read through the typed client."""
    listed = CoreV1Api(api).list_namespaced_event("default")
    found = [api.sanitize_for_serialization(e) for e in listed.items]
    return [e for e in found if (e.get("source") or {}).get("component") == "mop-canary"]


def test_records_an_event_on_the_deployment(api: ApiClient, web: dict) -> None:
    EventRecorder(api, host="controller-0").record(web, "Warning", "RolledBack", "p99 latency 950ms > 500ms")
    [event] = events(api)
    assert event["type"] == "Warning" and event["reason"] == "RolledBack"
    assert event["message"] == "p99 latency 950ms > 500ms"
    assert event["involvedObject"] == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "namespace": "default",
        "name": "web",
        "uid": web["metadata"]["uid"],
        "resourceVersion": web["metadata"]["resourceVersion"],
    }
    assert event["source"] == {"component": "mop-canary", "host": "controller-0"}
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"]
    assert event["metadata"]["name"].startswith("web.")


def test_identical_events_are_aggregated_and_different_ones_are_not(api: ApiClient, web: dict) -> None:
    recorder = EventRecorder(api)
    for _ in range(3):
        recorder.record(web, "Normal", "Analysing", "check 1 of 3 passed")
    recorder.record(web, "Normal", "Analysing", "check 2 of 3 passed")
    recorder.record(web, "Warning", "Analysing", "check 2 of 3 passed")
    by_message = sorted((e["type"], e["message"], e["count"]) for e in events(api))
    assert by_message == [
        ("Normal", "check 1 of 3 passed", 3),
        ("Normal", "check 2 of 3 passed", 1),
        ("Warning", "check 2 of 3 passed", 1),
    ]
    aggregated = next(e for e in events(api) if e["count"] == 3)
    assert parse_time(aggregated["lastTimestamp"]) >= parse_time(aggregated["firstTimestamp"])


def test_outside_the_dedupe_window_a_new_event_is_created(api: ApiClient, web: dict) -> None:
    recorder = EventRecorder(api, dedupe_window_seconds=0.05)
    recorder.record(web, "Normal", "Promoted", "all checks passed")
    time.sleep(0.1)
    recorder.record(web, "Normal", "Promoted", "all checks passed")
    assert sorted(e["count"] for e in events(api)) == [1, 1]


def test_an_aggregated_event_deleted_meanwhile_is_created_again(sim: KubeSim, api: ApiClient, web: dict) -> None:
    recorder = EventRecorder(api)
    recorder.record(web, "Normal", "Frozen", "template rejected before")
    [first] = events(api)
    sim.delete("v1", "events", "default", first["metadata"]["name"])
    recorder.record(web, "Normal", "Frozen", "template rejected before")
    [again] = events(api)
    assert again["count"] == 1 and again["metadata"]["name"] != first["metadata"]["name"]


def test_long_messages_are_truncated_to_1024_characters(api: ApiClient, web: dict) -> None:
    EventRecorder(api).record(web, "Warning", "RolledBack", "x" * 5000)
    [event] = events(api)
    assert len(event["message"]) == 1024 and event["message"].endswith("...")


def test_recording_never_raises_and_logs_the_failure(
    sim: KubeSim, api: ApiClient, web: dict, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = EventRecorder(api)
    sim.fail_next("POST /api/v1/namespaces/default/events", 500)
    with caplog.at_level(logging.WARNING, logger="canary.kube.events"):
        recorder.record(web, "Warning", "RolledBack", "first try fails")
        recorder.record({"kind": "Deployment", "metadata": {}}, "Normal", "X", "no name")
        recorder.record(web, "Urgent", "X", "bad type")  # type: ignore[arg-type]
    assert "could not record Warning event RolledBack on Deployment default/web: HTTP 500" in caplog.text
    assert "no metadata.name" in caplog.text
    assert "must be Normal or Warning, not 'Urgent'" in caplog.text
    assert events(api) == []
    recorder.record(web, "Warning", "RolledBack", "first try fails")
    assert [e["count"] for e in events(api)] == [1], "a failed create is not counted as recorded"
