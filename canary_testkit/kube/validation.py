"""Defaulting and validation the API server applies before storing an object (the parts tests rely on)."""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from typing import Any

from canary_testkit.kube.errors import invalid
from canary_testkit.kube.registry import ResourceType
from canary_testkit.kube.selectors import LABEL_KEY, LABEL_VALUE, labels_match, selector_from_label_selector

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_WORKLOADS = {("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets")}
_SERVICE_IPS = itertools.count(1)

Causes = list[tuple[str, str]]


def apply_defaults(rt: ResourceType, obj: dict[str, Any], creating: bool) -> None:
    """Fill the defaults the API server stores (replicas, strategy, Service clusterIP, Secret stringData)."""
    key = (rt.group, rt.plural)
    spec = obj.get("spec")
    if key in _WORKLOADS and isinstance(spec, dict):
        if key != ("apps", "daemonsets"):
            spec.setdefault("replicas", 1)
        if key == ("apps", "deployments"):
            spec.setdefault("strategy", {"type": "RollingUpdate"})
            if spec["strategy"].get("type", "RollingUpdate") == "RollingUpdate":
                spec["strategy"].setdefault("type", "RollingUpdate")
                rolling = spec["strategy"].setdefault("rollingUpdate", {})
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
    if key == ("", "secrets"):
        string_data = obj.pop("stringData", None) or {}
        data: dict[str, Any] = obj.setdefault("data", {}) if string_data else {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj.setdefault("type", "Opaque")
    if key == ("", "services") and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        if creating and "clusterIP" not in spec:
            n = next(_SERVICE_IPS) % 65534 + 1
            spec["clusterIP"] = f"10.96.{n >> 8}.{n & 255}"
            spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
    if key == ("", "namespaces"):
        obj.setdefault("status", {})["phase"] = "Active"
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raise a 422 `Invalid` Status naming every bad field, as the API server does."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    causes: Causes = []
    if rt.plural == "namespaces" and not rt.group:
        if not _LABEL.match(name) or len(name) > 63:
            causes.append(
                (
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of '
                    "lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
                    "character",
                )
            )
    elif not _SUBDOMAIN.match(name) or len(name) > 253:
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of '
                "lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                "character",
            )
        )
    causes += _labels("metadata.labels", meta.get("labels"))
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and (not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())):
            causes.append((f"metadata.{field}", "Invalid value: must be a map of strings to strings"))
    key = (rt.group, rt.plural)
    if key in _WORKLOADS:
        causes += _workload(obj, old)
    if key == ("", "configmaps"):
        for k, v in (obj.get("data") or {}).items():
            if not isinstance(v, str):
                causes.append((f"data[{k}]", "Invalid value: must be a string"))
    if key == ("", "secrets"):
        for k, v in (obj.get("data") or {}).items():
            try:
                base64.b64decode(str(v), validate=True)
            except (binascii.Error, ValueError):
                causes.append((f"data[{k}]", "Invalid value: must be base64-encoded bytes"))
    if key == ("events.k8s.io", "events") and old is None:
        causes += _event_v1(obj)
    if key == ("coordination.k8s.io", "leases"):
        duration = (obj.get("spec") or {}).get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            causes.append(("spec.leaseDurationSeconds", f"Invalid value: {duration}: must be greater than 0"))
    if causes:
        raise invalid(rt.kind, rt.group, name, causes)


def _labels(field: str, labels: Any) -> Causes:
    causes: Causes = []
    if not isinstance(labels, dict):
        return causes
    for k, v in labels.items():
        if not LABEL_KEY.match(str(k)) or len(str(k).rpartition("/")[2]) > 63:
            causes.append(
                (
                    field,
                    f'Invalid value: "{k}": name part must consist of alphanumeric characters, '
                    "'-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
        if not isinstance(v, str) or not LABEL_VALUE.match(v) or len(v) > 63:
            causes.append(
                (
                    field,
                    f'Invalid value: "{v}": a valid label must be an empty string or consist of '
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character (at most 63 characters)",
                )
            )
    return causes


def _workload(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    causes: Causes = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("spec.selector", "Required value"))
    else:
        try:
            ok = labels_match(selector_from_label_selector(selector), {"metadata": {"labels": template_labels}})
        except Exception as err:  # a malformed expression
            causes.append(("spec.selector", f"Invalid value: {err}"))
        else:
            if not ok:
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        f"Invalid value: {template_labels}: `selector` does not match template `labels`",
                    )
                )
    if old is not None and selector != (old.get("spec") or {}).get("selector"):
        causes.append(("spec.selector", f"Invalid value: {selector}: field is immutable"))
    causes += _labels("spec.template.metadata.labels", template_labels)
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    containers = (template.get("spec") or {}).get("containers")
    if not containers:
        causes.append(("spec.template.spec.containers", "Required value"))
    for n, container in enumerate(containers or []):
        if not isinstance(container, dict) or not container.get("name"):
            causes.append((f"spec.template.spec.containers[{n}].name", "Required value"))
        elif not container.get("image"):
            causes.append((f"spec.template.spec.containers[{n}].image", "Required value"))
    return causes


def _event_v1(obj: dict[str, Any]) -> Causes:
    causes: Causes = []
    # `obj` is in stored (core v1) form: see canary_testkit.kube.convert
    stored_names = {
        "eventTime": "eventTime",
        "reportingController": "reportingComponent",
        "reportingInstance": "reportingInstance",
        "action": "action",
        "reason": "reason",
    }
    for field, stored in stored_names.items():
        if not obj.get(stored):
            causes.append((field, "Required value"))
    if obj.get("type") not in ("Normal", "Warning"):
        causes.append(("type", f'Unsupported value: "{obj.get("type")}": supported values: "Normal", "Warning"'))
    if len(str(obj.get("message") or "")) > 1024:
        causes.append(("note", "Too long: may not be more than 1024 bytes"))
    return causes
