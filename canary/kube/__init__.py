"""The controller's Kubernetes I/O: client loading, informers, leader election, Events and guarded
Deployment writes, all on plain JSON dicts through the official `kubernetes` client."""

from canary.kube.client import KubeConfigError, load_api_client
from canary.kube.configmaps import slo_configmap_informer
from canary.kube.deployments import (
    POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION,
    Deployments,
    WriteOutcome,
    WriteStatus,
    owned_replicasets,
    pod_template,
    replicaset_template_for_undo,
    revision,
    template_hash,
)
from canary.kube.events import EventRecorder, EventType
from canary.kube.informer import CONFIGMAPS, DEPLOYMENTS, REPLICASETS, EventKind, Handler, Informer, Resource
from canary.kube.leader import LeaderElector, default_identity
from canary.kube.wire import JsonObject, KubeApiError

__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "POD_TEMPLATE_HASH_LABEL",
    "REPLICASETS",
    "REVISION_ANNOTATION",
    "Deployments",
    "EventKind",
    "EventRecorder",
    "EventType",
    "Handler",
    "Informer",
    "JsonObject",
    "KubeApiError",
    "KubeConfigError",
    "LeaderElector",
    "Resource",
    "WriteOutcome",
    "WriteStatus",
    "default_identity",
    "load_api_client",
    "owned_replicasets",
    "pod_template",
    "replicaset_template_for_undo",
    "revision",
    "slo_configmap_informer",
    "template_hash",
]
