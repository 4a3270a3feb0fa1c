"""A simulated Kubernetes API server that the real `kubernetes` client talks to over HTTP on 127.0.0.1.

from canary_testkit.kube import KubeSim
with KubeSim() as sim:
    apps = kubernetes.client.AppsV1Api(sim.api_client())
"""

from canary_testkit.kube.errors import StatusError
from canary_testkit.kube.faults import FaultRule
from canary_testkit.kube.rbac import ADMIN_TOKEN, UserInfo, service_account_user
from canary_testkit.kube.registry import ResourceType
from canary_testkit.kube.server import Denial, RequestRecord
from canary_testkit.kube.sim import DEFAULT_NAMESPACES, KubeSim
from canary_testkit.kube.store import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH
from canary_testkit.kube.workloads import HASH_LABEL, REVISION, pod_template_hash

__all__ = [
    "ADMIN_TOKEN",
    "APPLY_PATCH",
    "DEFAULT_NAMESPACES",
    "HASH_LABEL",
    "JSON_PATCH",
    "MERGE_PATCH",
    "REVISION",
    "STRATEGIC_PATCH",
    "Denial",
    "FaultRule",
    "KubeSim",
    "RequestRecord",
    "ResourceType",
    "StatusError",
    "UserInfo",
    "pod_template_hash",
    "service_account_user",
]
