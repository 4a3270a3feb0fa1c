"""Tempo 3 runs as a cluster: microservices around Kafka, one partition per live-store and
block-builder, one backend-scheduler, memberlist joining every Tempo pod, retention per environment."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.stack.conftest import COMBINATIONS, find

Manifest = dict[str, Any]
TARGETS = {
    "distributor",
    "live-store",
    "block-builder",
    "metrics-generator",
    "query-frontend",
    "querier",
    "backend-scheduler",
    "backend-worker",
}
RETENTION_HOURS = {"dev": 336, "staging": 336, "production": 720}


def tempo_workloads(objects: list[Manifest]) -> dict[str, Manifest]:
    """Every workload running the Tempo image, by its -target."""
    out = {}
    for obj in objects:
        if obj["kind"] not in {"Deployment", "StatefulSet", "DaemonSet"}:
            continue
        for c in obj["spec"]["template"]["spec"]["containers"]:
            if "/grafana/tempo:" in c["image"]:
                (target,) = [a.removeprefix("-target=") for a in c["args"] if a.startswith("-target=")]
                out[target] = obj
    return out


def tempo_config(objects: list[Manifest]) -> dict[str, Any]:
    return dict(yaml.safe_load(find(objects, "ConfigMap", "tempo")["data"]["tempo.yaml"]))


def selects(selector: dict[str, str], obj: Manifest) -> bool:
    labels = obj["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_tempo_runs_the_microservices_topology_with_one_backend_scheduler(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    workloads = tempo_workloads(objects)
    assert set(workloads) == TARGETS, "no monolithic `-target=all` replica: it would not share data"
    assert workloads["backend-scheduler"]["spec"]["replicas"] == 1
    assert workloads["backend-scheduler"]["kind"] == "StatefulSet"  # never two during a rollout
    assert all(w["spec"]["replicas"] >= 2 for t, w in workloads.items() if t != "backend-scheduler")
    config = tempo_config(objects)
    assert "target" not in config
    assert "local_blocks" not in config["metrics_generator"]["processor"]


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_every_partition_has_a_live_store_a_block_builder_and_a_kafka_partition(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    workloads = tempo_workloads(objects)
    config = tempo_config(objects)
    live_stores = workloads["live-store"]["spec"]["replicas"]
    builder = workloads["block-builder"]
    assert builder["kind"] == "StatefulSet" and builder["spec"]["replicas"] == live_stores
    pods = {f"{builder['metadata']['name']}-{i}" for i in range(builder["spec"]["replicas"])}
    assigned = config["block_builder"]["assigned_partitions"]
    assert set(assigned) == pods
    assert sorted(p for parts in assigned.values() for p in parts) == list(range(live_stores))
    kafka = config["ingest"]["kafka"]
    assert kafka["address"] == "kafka.mop.svc.cluster.local:9093" and kafka["topic"]
    assert kafka["auto_create_topic_default_partitions"] == live_stores
    broker = find(objects, "StatefulSet", "kafka")
    env_vars = {e["name"]: e.get("value") for e in broker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env_vars["KAFKA_NUM_PARTITIONS"] == str(live_stores)


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_memberlist_joins_every_tempo_pod_and_clients_reach_real_services(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    workloads = tempo_workloads(objects)
    config = tempo_config(objects)
    assert config["memberlist"]["join_members"] == ["dns+tempo-gossip.mop.svc.cluster.local:7946"]
    gossip = find(objects, "Service", "tempo-gossip")
    assert all(selects(gossip["spec"]["selector"], w) for w in workloads.values())
    # the rings that need members: the live-stores' partition ring and the backend-workers' ring
    assert config["backend_worker"]["ring"]["kvstore"]["store"] == "memberlist"
    assert config["backend_worker"]["backend_scheduler_addr"] == "tempo-backend-scheduler.mop.svc.cluster.local:9095"
    scheduler = find(objects, "Service", "tempo-backend-scheduler")
    assert selects(scheduler["spec"]["selector"], workloads["backend-scheduler"])
    frontend = find(objects, "Service", "tempo")
    assert selects(frontend["spec"]["selector"], workloads["query-frontend"])
    assert config["querier"]["frontend_worker"]["frontend_address"] == "tempo.mop.svc.cluster.local:9095"
    distributor = find(objects, "Service", "tempo-distributor")
    assert selects(distributor["spec"]["selector"], workloads["distributor"])
    assert {p["port"] for p in distributor["spec"]["ports"]} == {4317, 4318}


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_trace_retention_follows_the_environment(stacks: dict[Any, list[Manifest]], env: str, profile: str) -> None:
    config = tempo_config(stacks[(env, profile)])
    assert config["overrides"]["defaults"]["compaction"]["block_retention"] == f"{RETENTION_HOURS[env]}h"
