"""NetworkPolicies: default deny for every MOP pod (stack and controller), and exactly the flows of
the data-flow diagram allowed between them, evaluated with Kubernetes' NetworkPolicy semantics."""

from __future__ import annotations

from typing import Any

import pytest

from tests.stack.conftest import COMBINATIONS

Manifest = dict[str, Any]
Pod = tuple[str, str, dict[str, str], set[int]]  # (group, namespace, labels, container ports)
OUTSIDE = "outside"  # a client with no pod in the cluster (a user's browser)

# The diagram: (from, to, port), Tempo's components as one group.
FLOWS = {
    ("obi", "alloy", 4317),
    ("alloy", "alloy", 4319),
    ("alloy", "alloy", 12345),
    ("alloy", "tempo", 4317),
    ("alloy", "mimir", 8080),
    ("alloy", "loki", 3100),
    *{("tempo", "tempo", p) for p in (3200, 9095, 7946)},
    ("tempo", "kafka", 9093),
    ("kafka", "kafka", 9093),
    ("kafka", "kafka", 9094),
    ("tempo", "mimir", 8080),
    *{("mimir", "mimir", p) for p in (8080, 9095, 7946)},
    ("mimir", "memcached", 11211),
    *{("loki", "loki", p) for p in (3100, 9095, 7946)},
    ("grafana", "mimir", 8080),
    ("grafana", "tempo", 3200),
    ("grafana", "loki", 3100),
    ("mop-canary", "mimir", 8080),
    ("mop-canary", "tempo", 3200),
    ("mop-canary", "loki", 3100),
    (OUTSIDE, "grafana", 3000),
    # Alloy scrapes the components' /metrics
    *{("alloy", g, p) for g, p in [("tempo", 3200), ("grafana", 3000), ("mop-canary", 8080)]},
}
DEV_ONLY = {("tempo", "minio", 9000), ("mimir", "minio", 9000), ("loki", "minio", 9000), ("alloy", "minio", 9000)}


def group(name: str) -> str:
    return "tempo" if name.startswith("tempo-") else name


def pods(objects: list[Manifest]) -> list[Pod]:
    out: list[Pod] = []
    for w in objects:
        if w["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}:
            ports = {
                p["containerPort"] for c in w["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])
            }
            labels = w["spec"]["template"]["metadata"]["labels"]
            out.append((group(w["metadata"]["name"]), w["metadata"]["namespace"], labels, ports))
    return out


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(peer: dict[str, Any], policy_ns: str, pod: Pod | None) -> bool:
    if pod is None:  # outside the cluster: only ipBlocks match it
        return "ipBlock" in peer
    if "ipBlock" in peer:
        return False
    _, ns, labels, _ = pod
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns}):
            return False
    elif ns != policy_ns:
        return False
    return _selects(peer.get("podSelector", {}), labels)


def _rule_allows(rule: dict[str, Any], key: str, policy_ns: str, peer: Pod | None, port: int) -> bool:
    peers = rule.get(key)
    ports = rule.get("ports")
    if ports is not None and not any(p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in ports):
        return False
    return peers is None or any(_peer_matches(p, policy_ns, peer) for p in peers)


def _policies_of(policies: list[Manifest], pod: Pod, kind: str) -> list[Manifest]:
    _, ns, labels, _ = pod
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == ns
        and _selects(p["spec"]["podSelector"], labels)
        and kind in p["spec"]["policyTypes"]
    ]


def allowed(policies: list[Manifest], src: Pod | None, dst: Pod, port: int) -> bool:
    if src is not None:
        egress = _policies_of(policies, src, "Egress")
        assert egress, f"{src[0]} has no egress policy: everything would be allowed"
        if not any(
            _rule_allows(r, "to", p["metadata"]["namespace"], dst, port) for p in egress for r in p["spec"]["egress"]
        ):
            return False
    ingress = _policies_of(policies, dst, "Ingress")
    assert ingress, f"{dst[0]} has no ingress policy: everything would be allowed"
    return any(
        _rule_allows(r, "from", p["metadata"]["namespace"], src, port) for p in ingress for r in p["spec"]["ingress"]
    )


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_exactly_the_diagrams_flows_are_allowed(
    stacks: dict[Any, list[Manifest]], controller: list[Manifest], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)] + controller
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    everyone = pods(objects)
    flows = {
        (src[0] if src else OUTSIDE, dst[0], port)
        for dst in everyone
        for port in dst[3]
        for src in [*everyone, None]
        if allowed(policies, src, dst, port)
    }
    expected = FLOWS | (DEV_ONLY if env == "dev" else set())
    assert flows - expected == set(), "flows outside the diagram"
    assert expected - flows == set(), "flows of the diagram that are blocked"


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_only_the_components_that_must_leave_the_cluster_may(
    stacks: dict[Any, list[Manifest]], controller: list[Manifest], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)] + controller
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    external = {
        (pod[0], port)
        for pod in pods(objects)
        for p in _policies_of(policies, pod, "Egress")
        for r in p["spec"]["egress"]
        if any("ipBlock" in peer for peer in r.get("to", []))
        for port in (x["port"] for x in r["ports"])
    }
    # API server (OBI, Alloy, controller), alert receivers (Mimir), Slack (controller), cloud storage.
    expected = {("obi", 443), ("obi", 6443), ("alloy", 443), ("alloy", 6443), ("mimir", 443)}
    expected |= {("mop-canary", 443), ("mop-canary", 6443)}
    if env != "dev":
        expected |= {("tempo", 443), ("loki", 443)}
    assert external == expected
    # every egress rule list ends with DNS to kube-dns only
    for p in policies:
        if "Egress" in p["spec"]["policyTypes"]:
            dns = p["spec"]["egress"][-1]
            assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
