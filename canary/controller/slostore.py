"""ServiceSLOs from ConfigMaps labelled `canary.mop.dev/slo-config`, kept current by an informer."""

from __future__ import annotations

import logging
import threading

from canary.config.loader import ConfigError, LoadResult, load_configmap
from canary.config.slo import ServiceSLO
from canary.kube.bodies import Body
from canary.kube.wire import JsonObject

log = logging.getLogger(__name__)


class SLOStore:
    """Thread-safe index (namespace, name) -> ServiceSLO; one bad document never hides the good ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_configmap: dict[tuple[str, str], list[ServiceSLO]] = {}
        self._errors: dict[tuple[str, str], list[ConfigError]] = {}

    def get(self, namespace: str, name: str) -> ServiceSLO | None:
        """The SLO `name` from the ConfigMaps of `namespace` only (never another namespace's); when two
        ConfigMaps define it, the one whose ConfigMap name sorts first (the other is in `errors()`)."""
        with self._lock:
            for key in sorted(k for k in self._by_configmap if k[0] == namespace):
                for slo in self._by_configmap[key]:
                    if slo.metadata.namespace == namespace and slo.metadata.name == name:
                        return slo
        return None

    def problem(self, namespace: str, name: str) -> ConfigError | None:
        """Why the ServiceSLO `name` of `namespace` was refused, when a ConfigMap holds it but it is invalid."""
        ref = f"{namespace}/{name}"
        with self._lock:
            for key in sorted(k for k in self._errors if k[0] == namespace):
                for error in self._errors[key]:
                    if error.object == ref:
                        return error
        return None

    def errors(self) -> list[ConfigError]:
        """Every invalid document, and every SLO defined again in another ConfigMap of its namespace."""
        with self._lock:
            errors = [e for errs in self._errors.values() for e in errs]
            first: dict[tuple[str, str], str] = {}
            for (ns, cm) in sorted(self._by_configmap):
                for slo in self._by_configmap[(ns, cm)]:
                    at = first.setdefault((ns, slo.metadata.name), cm)
                    if at != cm:
                        errors.append(ConfigError(
                            source=f"ConfigMap {ns}/{cm}", object=slo.ref, field="metadata.name",
                            reason=f"ServiceSLO {slo.ref} is also defined in ConfigMap {ns}/{at}, which is used",
                        ))
            return errors

    def on_configmap(self, kind: str, configmap: JsonObject) -> set[str]:
        """Informer handler; returns the namespaces whose SLOs may have changed."""
        key = (Body(configmap).namespace, Body(configmap).name)
        if kind == "DELETED":
            with self._lock:
                self._by_configmap.pop(key, None)
                self._errors.pop(key, None)
            return {key[0]}
        try:
            result = load_configmap(configmap)
        except Exception as exc:  # a ConfigMap never stops the informer; it is reported instead
            error = ConfigError(source=f"ConfigMap {key[0]}/{key[1]}", reason=f"cannot be read: {type(exc).__name__}")
            result = LoadResult(errors=[error])
        for error in result.errors:
            log.warning("invalid ServiceSLO: %s", error)
        with self._lock:
            changed = self._by_configmap.get(key) != result.slos
            self._by_configmap[key] = result.slos
            self._errors[key] = result.errors
        return {key[0]} if changed else set()
