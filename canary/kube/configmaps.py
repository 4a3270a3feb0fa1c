"""An informer on the ConfigMaps that hold ServiceSLOs (labelled `canary.mop.dev/slo-config`)."""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes.client import ApiClient

from canary.config.loader import SLO_CONFIGMAP_LABEL
from canary.kube.informer import CONFIGMAPS, Handler, Informer


def slo_configmap_informer(
    api_client: ApiClient,
    on_event: Handler,
    *,
    namespaces: Sequence[str] | None = None,
    resync_seconds: float | None = 300.0,
) -> Informer:
    """An (unstarted) Informer on every ConfigMap carrying the label, whatever its value; feed its events to
    `canary.config.loader.load_configmap`."""
    return Informer(
        api_client,
        CONFIGMAPS,
        on_event,
        namespaces=namespaces,
        label_selector=SLO_CONFIGMAP_LABEL,
        resync_seconds=resync_seconds,
    )
