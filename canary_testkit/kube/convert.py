"""Conversion between a resource's served form and its stored form.

Only events differ: `events.k8s.io/v1` Events are stored as core `v1` Events (one storage, as in the
API server), so an Event written through either API is listed by both.
"""

from __future__ import annotations

import copy
from typing import Any

from canary_testkit.kube.registry import ResourceType

# events.k8s.io/v1 field -> core v1 field
_EVENT_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "reportingInstance": "reportingInstance",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_SHARED = ("metadata", "eventTime", "series", "action", "reason", "related", "type")


def is_events_v1(rt: ResourceType) -> bool:
    return rt.group == "events.k8s.io" and rt.plural == "events"


def to_storage(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an object sent to `rt` (a deep copy)."""
    if not is_events_v1(rt):
        stored = copy.deepcopy(obj)
        stored["apiVersion"], stored["kind"] = rt.api_version, rt.kind
        return stored
    stored = {"apiVersion": "v1", "kind": "Event"}
    for key in _SHARED:
        if key in obj:
            stored[key] = copy.deepcopy(obj[key])
    for new, old in _EVENT_FIELDS.items():
        if new in obj:
            stored[old] = copy.deepcopy(obj[new])
    return stored


def from_storage(rt: ResourceType, stored: dict[str, Any]) -> dict[str, Any]:
    """The served form of a stored object for `rt` (a deep copy)."""
    if not is_events_v1(rt):
        served = copy.deepcopy(stored)
        served["apiVersion"], served["kind"] = rt.api_version, rt.kind
        return served
    obj: dict[str, Any] = {"apiVersion": rt.api_version, "kind": "Event"}
    for key in _SHARED:
        if key in stored:
            obj[key] = copy.deepcopy(stored[key])
    for new, old in _EVENT_FIELDS.items():
        if old in stored:
            obj[new] = copy.deepcopy(stored[old])
    if "reportingController" not in obj and isinstance(stored.get("source"), dict):
        obj["reportingController"] = stored["source"].get("component", "")
    obj.setdefault("eventTime", stored.get("eventTime") or stored.get("firstTimestamp"))
    return obj
