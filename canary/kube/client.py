"""Build a Kubernetes `ApiClient` from a kubeconfig or the in-cluster service account.

Never touches the client library's global default configuration, so several clients (tests, two
controller replicas in one process) can point at different clusters.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes.client import ApiClient, Configuration
from kubernetes.config import ConfigException
from kubernetes.config.incluster_config import SERVICE_HOST_ENV_NAME, load_incluster_config
from kubernetes.config.kube_config import load_kube_config

DEFAULT_KUBECONFIG = "~/.kube/config"


class KubeConfigError(RuntimeError):
    """No usable cluster configuration; the message names the source that was tried."""


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> ApiClient:
    """An `ApiClient` for the first configuration found.

    Order: the `kubeconfig` argument, then `$KUBECONFIG` (`:`-separated files are merged), then the
    in-cluster service account (when `KUBERNETES_SERVICE_HOST` is set), then `~/.kube/config`.
    `context` selects a kubeconfig context (the file's current context when None).
    """
    configuration = Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path is None and SERVICE_HOST_ENV_NAME in os.environ:
        try:
            load_incluster_config(client_configuration=configuration)
        except ConfigException as e:
            raise KubeConfigError(f"in-cluster configuration: {e}") from e
        return ApiClient(configuration)
    parts = [str(Path(p).expanduser()) for p in (path or DEFAULT_KUBECONFIG).split(os.pathsep) if p]
    path = os.pathsep.join(parts)
    if not any(Path(p).is_file() for p in parts):
        raise KubeConfigError(f"kubeconfig {path}: file not found (and not running in a cluster)")
    try:
        load_kube_config(config_file=path, context=context, client_configuration=configuration, persist_config=False)
    except Exception as e:  # the loader fails in many ways on a malformed file (YAML, types, missing keys)
        where = f"kubeconfig {path}" + (f" context {context!r}" if context else "")
        raise KubeConfigError(f"{where}: {type(e).__name__}: {e}") from e
    return ApiClient(configuration)
