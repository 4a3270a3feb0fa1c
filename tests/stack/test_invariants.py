"""Invariants of the rendered stack: capacity plan, pinned images, hardening, wiring between components."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.stack.conftest import COMBINATIONS, containers, find

Manifest = dict[str, Any]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}

# The capacity plan, profile small (millicores, MiB); medium x3, large x10.
PLAN = {
    "obi": (200, 256),
    "alloy": (1000, 2048),
    "tempo-distributor": (500, 1024),
    "tempo-live-store": (1000, 4096),
    "tempo-block-builder": (1000, 2048),
    "tempo-metrics-generator": (500, 2048),
    "tempo-query-frontend": (500, 1024),
    "tempo-querier": (1000, 2048),
    "tempo-backend-scheduler": (100, 256),
    "tempo-backend-worker": (500, 1024),
    "kafka": (1000, 2048),
    "mimir": (2000, 4096),
    "loki": (2000, 4096),
    "grafana": (500, 1024),
}
FACTOR = {"small": 1, "medium": 3, "large": 10}
REPLICAS = {
    "alloy": 3,
    "tempo-distributor": 3,
    "tempo-live-store": 3,
    "tempo-block-builder": 3,
    "tempo-metrics-generator": 3,
    "tempo-query-frontend": 2,
    "tempo-querier": 3,
    "tempo-backend-scheduler": 1,
    "tempo-backend-worker": 3,
    "kafka": 3,
    "mimir": 3,
    "loki": 3,
    "grafana": 2,
}


def cpu_millicores(q: str) -> int:
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def memory_mib(q: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(q[:-2]) * units[q[-2:]]


def workloads(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["kind"] in WORKLOADS]


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_replicas_and_resources_follow_the_capacity_plan(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    for name, (cpu, mem) in PLAN.items():
        workload = next(o for o in workloads(objects) if o["metadata"]["name"] == name)
        main = workload["spec"]["template"]["spec"]["containers"][0]
        requests = main["resources"]["requests"]
        assert cpu_millicores(requests["cpu"]) == cpu * FACTOR[profile], (env, profile, name, requests)
        assert memory_mib(requests["memory"]) == mem * FACTOR[profile], (env, profile, name, requests)
        assert memory_mib(main["resources"]["limits"]["memory"]) == mem * FACTOR[profile]
        if name == "obi":
            assert workload["kind"] == "DaemonSet"
        else:
            assert workload["spec"]["replicas"] == REPLICAS[name], (name, workload["spec"]["replicas"])
    assert find(objects, "StatefulSet", "alloy")["kind"] == "StatefulSet"


def test_the_profile_defaults_are_per_environment(stacks: dict[Any, list[Manifest]]) -> None:
    from canary.stack import render

    for env, profile in [("dev", "small"), ("staging", "medium"), ("production", "large")]:
        assert render(env) == stacks[(env, profile)]


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_every_container_is_pinned_limited_probed_and_hardened(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    for workload in workloads(objects):
        where = f"{env}/{profile} {workload['kind']} {workload['metadata']['name']}"
        pod = workload["spec"]["template"]["spec"]
        assert pod.get("securityContext", {}).get("seccompProfile") == {"type": "RuntimeDefault"}, where
        for c in containers(workload):
            image = c["image"]
            assert re.fullmatch(r"[a-z0-9.\-/]+:[A-Za-z0-9_.\-]+", image), f"{where}: image {image} has no explicit tag"
            assert not image.endswith((":latest", ":main")), f"{where}: {image}"
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], where
            assert c["resources"]["limits"]["memory"], where
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert sc.get("privileged") in (None, False), where
            if c in pod["containers"]:
                assert c.get("readinessProbe") and c.get("livenessProbe"), f"{where} container {c['name']}: probes"
        run_as_root = [c["name"] for c in containers(workload) if c["securityContext"].get("runAsUser") == 0]
        assert run_as_root in ([], ["obi"]), f"{where}: only OBI may run as root, got {run_as_root}"


def test_obi_gets_the_ebpf_capabilities_and_nothing_more(dev: list[Manifest]) -> None:
    obi = find(dev, "DaemonSet", "obi")
    sc = obi["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert set(sc["capabilities"]["add"]) == {
        "BPF",
        "PERFMON",
        "SYS_PTRACE",
        "DAC_READ_SEARCH",
        "CHECKPOINT_RESTORE",
        "NET_RAW",
        "SYS_RESOURCE",
    }
    assert "SYS_ADMIN" not in sc["capabilities"]["add"]
    assert obi["spec"]["template"]["spec"]["hostPID"] is True
    assert not obi["spec"]["template"]["spec"].get("hostNetwork")
    role = find(dev, "ClusterRole", "mop-obi")
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert granted == {
        (g, r, v)
        for g, r in [("", "pods"), ("", "nodes"), ("", "services"), ("apps", "replicasets")]
        for v in ("get", "list", "watch")
    }


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_every_workload_has_a_pdb_and_every_service_selects_a_workload(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    pod_labels = [(w["metadata"]["namespace"], w["spec"]["template"]["metadata"]["labels"]) for w in workloads(objects)]

    def selects(ns: str, selector: dict[str, str]) -> bool:
        return any(wns == ns and all(labels.get(k) == v for k, v in selector.items()) for wns, labels in pod_labels)

    for svc in (o for o in objects if o["kind"] == "Service"):
        ns = svc["metadata"]["namespace"]
        assert selects(ns, svc["spec"]["selector"]), f"Service {svc['metadata']['name']} selects no workload"
        # every Service port targets a named container port of the workloads it selects
        for port in svc["spec"]["ports"]:
            names = {
                p["name"]
                for w in workloads(objects)
                if all(
                    w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in svc["spec"]["selector"].items()
                )
                for c in w["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
            }
            assert port["targetPort"] in names, f"Service {svc['metadata']['name']} port {port['name']}"
    pdbs = [p["spec"]["selector"]["matchLabels"] for p in objects if p["kind"] == "PodDisruptionBudget"]
    for w in workloads(objects):
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert any(all(labels.get(k) == v for k, v in sel.items()) for sel in pdbs), w["metadata"]["name"]


ADDRESS = re.compile(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local(?::(\d+))?")


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _service_ports(objects: list[Manifest]) -> dict[tuple[str, str], set[int]]:
    return {
        (o["metadata"]["namespace"], o["metadata"]["name"]): {p["port"] for p in o["spec"]["ports"]}
        for o in objects
        if o["kind"] == "Service"
    }


def _dangling(
    objects: list[Manifest], services: dict[tuple[str, str], set[int]], namespaces: frozenset[str] = frozenset({"mop"})
) -> list[str]:
    """Addresses in `namespaces` that are not a Service of `services` with that port."""
    problems = []
    for obj in objects:
        for text in _strings(obj):
            for service, ns, port in ADDRESS.findall(text):
                if ns not in namespaces:
                    continue
                if (ns, service) not in services:
                    problems.append(f"{obj['kind']} {obj['metadata']['name']} names {service}.{ns}: no such Service")
                elif port and int(port) not in services[(ns, service)]:
                    problems.append(
                        f"{obj['kind']} {obj['metadata']['name']} names {service}.{ns}:{port}: no such port"
                    )
    return problems


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_every_endpoint_a_config_names_is_a_service_with_that_port(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    services = _service_ports(objects)
    problems = _dangling(objects, services)
    assert not problems, "\n".join(problems)
    named = {m for o in objects for t in _strings(o) for m in ADDRESS.findall(t)}
    # The only address outside the stack: production's extra trace destination (its long-term archive).
    outside = {(s, ns) for s, ns, _ in named if ns != "mop"}
    assert outside == ({("traces-archive", "observability")} if env == "production" else set())
    for needed in [
        ("tempo-distributor", "mop", "4317"),
        ("kafka", "mop", "9093"),
        ("mimir", "mop", "8080"),
        ("loki", "mop", "3100"),
        ("alloy", "mop", "4317"),
    ]:
        assert needed in named, f"nothing sends to {needed}"


def test_the_endpoint_check_catches_a_wrong_port(dev: list[Manifest]) -> None:
    services = _service_ports(dev)
    broken = {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "http://tempo.mop.svc.cluster.local:9999"}}
    missing = {"kind": "ConfigMap", "metadata": {"name": "y"}, "data": {"a": "nope.mop.svc.cluster.local:80"}}
    assert len(_dangling([broken, missing], services)) == 2


def test_controller_urls_point_at_the_stack(dev: list[Manifest], controller: list[Manifest]) -> None:
    settings = find(controller, "ConfigMap", "mop-canary-settings")["data"]
    problems = _dangling([find(controller, "ConfigMap", "mop-canary-settings")], _service_ports(dev))
    assert not problems, problems
    assert settings["CANARY_MIMIR_URL"].endswith(":8080/prometheus")
    assert settings["CANARY_TEMPO_URL"].startswith("https://tempo.mop.svc.cluster.local:3200")


def test_tempo_generates_span_metrics_by_deployment_and_replicaset_without_local_blocks(dev: list[Manifest]) -> None:
    import yaml

    text = find(dev, "ConfigMap", "tempo")["data"]["tempo.yaml"]
    config = yaml.safe_load(text)
    dims = config["metrics_generator"]["processor"]["span_metrics"]["dimensions"]
    assert {"k8s.deployment.name", "k8s.replicaset.name"} <= set(dims)
    assert config["overrides"]["defaults"]["metrics_generator"]["processors"] == ["service-graphs", "span-metrics"]
    assert "local_blocks" not in config["metrics_generator"]["processor"]
    assert "local-blocks" not in text
    assert config["query_frontend"]["metrics"]["max_duration"] == "24h"
    assert config["memberlist"]["join_members"] == ["dns+tempo-gossip.mop.svc.cluster.local:7946"]
