"""The controller's Kubernetes I/O: client loading, informers, leader election, Events and guarded
Deployment writes, all on plain JSON dicts through the official `kubernetes` client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canary import lazy

if TYPE_CHECKING:
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
        revision,
        template_hash,
    )
    from canary.kube.events import EventRecorder
    from canary.kube.informer import CONFIGMAPS, DEPLOYMENTS, REPLICASETS, EventKind, Handler, Informer, Resource
    from canary.kube.leader import LeaderElector, default_identity
    from canary.kube.wire import JsonObject, KubeApiError
    from canary.vocabulary import EventType

_EXPORTS = {
    "KubeConfigError": "canary.kube.client",
    "load_api_client": "canary.kube.client",
    "slo_configmap_informer": "canary.kube.configmaps",
    "POD_TEMPLATE_HASH_LABEL": "canary.kube.deployments",
    "REVISION_ANNOTATION": "canary.kube.deployments",
    "Deployments": "canary.kube.deployments",
    "WriteOutcome": "canary.kube.deployments",
    "WriteStatus": "canary.kube.deployments",
    "owned_replicasets": "canary.kube.deployments",
    "pod_template": "canary.kube.deployments",
    "revision": "canary.kube.deployments",
    "template_hash": "canary.kube.deployments",
    "EventRecorder": "canary.kube.events",
    "EventType": "canary.vocabulary",
    "CONFIGMAPS": "canary.kube.informer",
    "DEPLOYMENTS": "canary.kube.informer",
    "REPLICASETS": "canary.kube.informer",
    "EventKind": "canary.kube.informer",
    "Handler": "canary.kube.informer",
    "Informer": "canary.kube.informer",
    "Resource": "canary.kube.informer",
    "LeaderElector": "canary.kube.leader",
    "default_identity": "canary.kube.leader",
    "JsonObject": "canary.kube.wire",
    "KubeApiError": "canary.kube.wire",
}
"""Public name -> the submodule that defines it, imported on first use (importing the package imports no
submodule, so `import canary.X.y` costs only what `y` needs)."""

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
    "revision",
    "slo_configmap_informer",
    "template_hash",
]


__getattr__ = lazy.exports(__name__, _EXPORTS)
