"""ServiceSLOs from ConfigMaps labelled `canary.mop.dev/slo-config`, kept current by an informer."""

from __future__ import annotations

import logging
import threading

from canary.config.loader import ConfigError, load_configmap
from canary.config.slo import ServiceSLO
from canary.controller.observe import Obj, meta

log = logging.getLogger(__name__)


class SLOStore:
    """Thread-safe index (namespace, name) -> ServiceSLO; one bad document never hides the good ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_configmap: dict[tuple[str, str], list[ServiceSLO]] = {}
        self._errors: dict[tuple[str, str], list[ConfigError]] = {}

    def get(self, namespace: str, name: str) -> ServiceSLO | None:
        with self._lock:
            for slos in self._by_configmap.values():
                for slo in slos:
                    if slo.metadata.namespace == namespace and slo.metadata.name == name:
                        return slo
        return None

    def errors(self) -> list[ConfigError]:
        with self._lock:
            return [e for errs in self._errors.values() for e in errs]

    def on_configmap(self, kind: str, configmap: Obj) -> set[str]:
        """Informer handler; returns the namespaces whose SLOs may have changed."""
        key = (meta(configmap).get("namespace", ""), meta(configmap).get("name", ""))
        if kind == "DELETED":
            with self._lock:
                self._by_configmap.pop(key, None)
                self._errors.pop(key, None)
            return {key[0]}
        result = load_configmap(configmap)
        for error in result.errors:
            log.warning("invalid ServiceSLO: %s", error)
        with self._lock:
            changed = self._by_configmap.get(key) != result.slos
            self._by_configmap[key] = result.slos
            self._errors[key] = result.errors
        return {key[0]} if changed else set()
