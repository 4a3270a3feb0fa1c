"""Record core/v1 Events on the objects the controller acts on (what `kubectl describe` shows).

Like client-go's recorder, an identical event (same object, type, reason and message) repeated within
the dedupe window is not created again: the existing Event's `count` and `lastTimestamp` are patched.
Recording never raises: a failure is logged and the caller carries on (an Event is never worth
failing a rollback for).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from kubernetes.client import ApiClient, CoreV1Api

from canary.kube.wire import JsonObject, call_json, describe, format_time, now, send_json, status_of
from canary.vocabulary import EventType

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/namespaces/{namespace}/events"
MAX_MESSAGE = 1024
EVENT_TIMEOUT = (3.0, 5.0)
"""(connect, read) seconds: an unreachable API server delays a caller by seconds, not minutes."""


@dataclass
class _Recorded:
    namespace: str
    name: str
    count: int
    at: float
    """Monotonic time of the last create or patch."""


class EventRecorder:
    """Create or aggregate Events; `host` goes to `source.host` and `reportingInstance`."""

    def __init__(
        self,
        api_client: ApiClient,
        component: str = "mop-canary",
        host: str | None = None,
        *,
        dedupe_window_seconds: float = 600.0,
        max_tracked: int = 4096,
    ) -> None:
        self._api_client = api_client
        self._api = CoreV1Api(api_client)
        self.component, self.host = component, host
        self._window = dedupe_window_seconds
        self._max_tracked = max_tracked
        self._recent: OrderedDict[tuple[str, ...], _Recorded] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, obj: JsonObject, type: EventType, reason: str, message: str) -> None:
        """Record an Event about `obj` (a Deployment, ReplicaSet, ... as a JSON dict); never raises."""
        try:
            self._record(obj, type, reason, message)
        except Exception as e:
            meta = (obj.get("metadata") or {}) if isinstance(obj, dict) else {}
            log.warning("could not record %s event %s on %s %s/%s: %s", type, reason, _get(obj, "kind"),
                        meta.get("namespace"), meta.get("name"), describe(e))

    def _record(self, obj: JsonObject, type: EventType, reason: str, message: str) -> None:
        if type not in ("Normal", "Warning"):
            raise ValueError(f"event type must be Normal or Warning, not {type!r}")
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ValueError("the object has no metadata.name")
        namespace = meta.get("namespace") or "default"
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        involved = {
            "kind": _get(obj, "kind"),
            "apiVersion": _get(obj, "apiVersion"),
            "namespace": meta.get("namespace"),
            "name": name,
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        involved = {k: v for k, v in involved.items() if v}
        key = (namespace, str(involved.get("kind")), name, str(involved.get("uid")), type, reason, message)
        stamp = format_time(now())
        with self._lock:
            previous = self._recent.get(key)
            fresh = previous is not None and time.monotonic() - previous.at < self._window
            if previous is not None and fresh and self._aggregate(previous, stamp):
                self._recent.move_to_end(key)
                return
            event_name = f"{name}.{time.time_ns():x}"
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": event_name, "namespace": namespace},
                "involvedObject": involved,
                "type": type,
                "reason": reason,
                "message": message,
                "source": {k: v for k, v in (("component", self.component), ("host", self.host)) if v},
                "reportingComponent": self.component,
                "reportingInstance": self.host or self.component,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
            created = send_json(self._api_client, "POST", EVENTS_PATH, event, path_params={"namespace": namespace},
                                timeout=EVENT_TIMEOUT)
            created_name = (created.get("metadata") or {}).get("name") or event_name
            self._recent[key] = _Recorded(namespace, str(created_name), 1, time.monotonic())
            self._recent.move_to_end(key)
            while len(self._recent) > self._max_tracked:
                self._recent.popitem(last=False)

    def _aggregate(self, previous: _Recorded, stamp: str) -> bool:
        """Bump the existing Event; False when it is gone (expired or deleted) and a new one is needed."""
        try:
            call_json(
                self._api.patch_namespaced_event,
                previous.name,
                previous.namespace,
                {"count": previous.count + 1, "lastTimestamp": stamp},
                _content_type="application/merge-patch+json",
                timeout=EVENT_TIMEOUT,
            )
        except Exception as e:
            if status_of(e) == 404:
                return False
            raise
        previous.count += 1
        previous.at = time.monotonic()
        return True


def _get(obj: object, field: str) -> str | None:
    value = obj.get(field) if isinstance(obj, dict) else None
    return str(value) if value else None
