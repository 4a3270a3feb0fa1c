"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it.

A candidate takes the Lease when it is absent, released (empty `holderIdentity`) or expired: its
record has not changed for `leaseDurationSeconds` as observed on this process's monotonic clock (no
trust in other machines' clocks). Every write is a PUT guarded by `metadata.resourceVersion`, so of
two candidates racing for the same record one gets 409 and stays a follower. The leader renews every
`retry_period_seconds`; if it cannot renew for `renew_deadline_seconds` it stops leading, before any
other candidate can see the Lease as expired (`renew_deadline < lease_duration`), so there are never
two leaders. A graceful `stop()` releases the Lease so another candidate takes over at its next retry.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes.client import ApiClient, CoordinationV1Api

from canary.kube.wire import JsonObject, call_json, describe, format_micro_time, now, send_json, status_of

log = logging.getLogger(__name__)

LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
LEASE_PATH = LEASES_PATH + "/{name}"

Callback = Callable[[], None]


def default_identity() -> str:
    """`hostname_random`: unique per process, readable in `kubectl get lease -o yaml`."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    """Campaign for one Lease in a daemon thread; see the module docstring.

    Callbacks run on the elector thread (or the thread calling `stop`) and must return quickly; their
    exceptions are logged. Check `is_leader` right before every write: it turns False by itself once the
    last successful renewal is older than the renew deadline, even if the elector thread is stuck.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration_seconds: int = 15,
        renew_deadline_seconds: float = 10.0,
        retry_period_seconds: float = 2.0,
        on_started_leading: Callback | None = None,
        on_stopped_leading: Callback | None = None,
    ) -> None:
        if not identity:
            raise ValueError("LeaderElector: identity must not be empty")
        if not isinstance(lease_duration_seconds, int) or lease_duration_seconds < 1:
            raise ValueError(f"LeaderElector: lease_duration_seconds must be an int >= 1: {lease_duration_seconds!r}")
        if not 0 < retry_period_seconds < renew_deadline_seconds < lease_duration_seconds:
            raise ValueError(
                "LeaderElector: need 0 < retry_period_seconds < renew_deadline_seconds < lease_duration_seconds, "
                f"got {retry_period_seconds} / {renew_deadline_seconds} / {lease_duration_seconds}"
            )
        self._api = CoordinationV1Api(api_client)
        self._api_client = api_client
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration = lease_duration_seconds
        self.renew_deadline = renew_deadline_seconds
        self.retry_period = retry_period_seconds
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._timeout = renew_deadline_seconds / 2

        self._state_lock = threading.Lock()
        self._leading = False
        self._last_renew = 0.0
        self._observed: str | None = None
        self._observed_at = 0.0
        self._holder: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        with self._state_lock:
            return self._leading and time.monotonic() - self._last_renew < self.renew_deadline

    @property
    def holder(self) -> str | None:
        """The holder identity last read from the Lease ("" when released, None before the first read)."""
        return self._holder

    def start(self) -> LeaderElector:
        if self._thread is not None:
            raise RuntimeError(f"LeaderElector {self.identity}: already started")
        self._thread = threading.Thread(target=self._run, name=f"leader-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, release: bool = True, timeout: float = 10.0) -> None:
        """Stop campaigning; when leading and `release`, give the Lease up so another replica takes over
        at once. `release=False` behaves like a crashed process (others wait for the lease to expire)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("lease %s/%s: %s elector still busy after %.0fs; not releasing", self.namespace,
                            self.name, self.identity, timeout)
                release = False
        if self._leading and release:
            self._release()
        self._set_leading(False)

    # -- campaign ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            attempt_at = time.monotonic()
            try:
                held = self._try_acquire_or_renew()
            except Exception as e:
                log.warning("lease %s/%s: %s could not acquire or renew: %s", self.namespace, self.name,
                            self.identity, describe(e))
                held = False
            if held:
                with self._state_lock:
                    self._last_renew = attempt_at
                self._set_leading(True)
            elif self._leading and (
                self._holder not in (None, self.identity) or time.monotonic() - self._last_renew >= self.renew_deadline
            ):
                log.warning("lease %s/%s: %s lost the lease (holder now %r)", self.namespace, self.name,
                            self.identity, self._holder)
                self._set_leading(False)
            delay = self.retry_period if self._leading else self.retry_period * (1 + 0.2 * random.random())
            self._stopping.wait(delay)

    def _try_acquire_or_renew(self) -> bool:
        """One attempt; True when this process holds the Lease afterwards."""
        try:
            lease = call_json(self._api.read_namespaced_lease, self.name, self.namespace, timeout=self._timeout)
        except Exception as e:
            if status_of(e) != 404:
                raise
            return self._create()
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        holder = str(spec.get("holderIdentity") or "")
        self._holder = holder
        record = json.dumps(spec, sort_keys=True)
        read_at = time.monotonic()
        if record != self._observed:  # timed from after the read, so never before the record was written
            self._observed, self._observed_at = record, read_at
        duration = spec.get("leaseDurationSeconds")
        duration = duration if isinstance(duration, int) and duration > 0 else self.lease_duration
        if holder and holder != self.identity and read_at < self._observed_at + duration:
            return False

        stamp = format_micro_time(now())
        if holder != self.identity:
            transitions = spec.get("leaseTransitions")
            spec["leaseTransitions"] = (transitions if isinstance(transitions, int) else 0) + 1
            spec["acquireTime"] = stamp
            spec["holderIdentity"] = self.identity
        spec["renewTime"] = stamp
        spec["leaseDurationSeconds"] = self.lease_duration
        return self._replace(lease, spec, "renew" if holder == self.identity else "acquire")

    def _create(self) -> bool:
        stamp = format_micro_time(now())
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_duration,
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        try:
            created = send_json(self._api_client, "POST", LEASES_PATH, body, path_params={"namespace": self.namespace},
                                timeout=self._timeout)
        except Exception as e:
            if status_of(e) == 409:
                return False  # another candidate created it first
            raise
        self._remember(created)
        return True

    def _replace(self, lease: JsonObject, spec: JsonObject, action: str) -> bool:
        body = {**lease, "spec": spec}
        try:
            written = send_json(self._api_client, "PUT", LEASE_PATH, body, timeout=self._timeout,
                                path_params={"namespace": self.namespace, "name": self.name})
        except Exception as e:
            if status_of(e) == 409:
                log.info("lease %s/%s: %s lost the race to %s", self.namespace, self.name, self.identity, action)
                return False
            raise
        self._remember(written)
        return True

    def _remember(self, lease: JsonObject) -> None:
        spec = lease.get("spec") or {}
        self._holder = str(spec.get("holderIdentity") or "")
        self._observed, self._observed_at = json.dumps(spec, sort_keys=True), time.monotonic()

    def _release(self) -> None:
        try:
            lease = call_json(self._api.read_namespaced_lease, self.name, self.namespace, timeout=self._timeout)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != self.identity:
                return
            stamp = format_micro_time(now())
            spec.update(holderIdentity="", leaseDurationSeconds=1, acquireTime=stamp, renewTime=stamp)
            self._replace(lease, spec, "release")
        except Exception as e:
            log.warning("lease %s/%s: %s could not release: %s", self.namespace, self.name, self.identity, describe(e))

    def _set_leading(self, leading: bool) -> None:
        with self._state_lock:
            if self._leading == leading:
                return
            self._leading = leading
        log.info("lease %s/%s: %s %s leading", self.namespace, self.name, self.identity,
                 "started" if leading else "stopped")
        callback = self._on_started if leading else self._on_stopped
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("lease %s/%s: %s callback failed", self.namespace, self.name,
                          "on_started_leading" if leading else "on_stopped_leading")
