"""A simulated Kubernetes API server that the real `kubernetes` client talks to over HTTP on 127.0.0.1.

from canary_testkit.kube import KubeSim
with KubeSim() as sim:
    apps = kubernetes.client.AppsV1Api(sim.api_client())
"""

from canary_testkit.kube.errors import StatusError
from canary_testkit.kube.faults import FaultRule
from canary_testkit.kube.registry import ResourceType
from canary_testkit.kube.server import RequestRecord
from canary_testkit.kube.sim import DEFAULT_NAMESPACES, KubeSim
from canary_testkit.kube.store import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH
from canary_testkit.kube.workloads import HASH_LABEL, REVISION, pod_template_hash

__all__ = [
    "APPLY_PATCH",
    "DEFAULT_NAMESPACES",
    "HASH_LABEL",
    "JSON_PATCH",
    "MERGE_PATCH",
    "REVISION",
    "STRATEGIC_PATCH",
    "FaultRule",
    "KubeSim",
    "RequestRecord",
    "ResourceType",
    "StatusError",
    "pod_template_hash",
]
