"""`KubeSim`: a simulated Kubernetes API server on 127.0.0.1 for the real `kubernetes` client."""

from __future__ import annotations

import builtins
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from canary_testkit.httpserver import Service
from canary_testkit.kube.errors import StatusError
from canary_testkit.kube.faults import FaultRule, parse_pattern
from canary_testkit.kube.rbac import ADMIN_TOKEN, RBAC_GROUP, Authenticator, Policy
from canary_testkit.kube.registry import BUILTIN, Registry, ResourceType
from canary_testkit.kube.server import Denial, RequestRecord, ServerState, SimHTTPServer
from canary_testkit.kube.store import MERGE_PATCH, Store
from canary_testkit.kube.workloads import Controllers

log = logging.getLogger(__name__)
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_JOIN_SECONDS = 10.0


class KubeSim(Service):
    """A simulated cluster: start it, point a kubeconfig or `api_client()` at `url`, stop it.

    Requests are authenticated by bearer token and authorized by RBAC (see `canary_testkit.kube.rbac`):
    `api_client()` and `write_kubeconfig()` use the admin token (group system:masters) unless given the
    token of a ServiceAccount (`service_account_token`) or user (`user_token`).

    `rollout_step_seconds` is the period of the background tick that advances Deployment rollouts
    (None: only `step_rollouts()` advances them, for deterministic tests).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rollout_step_seconds: float | None = 1.0,
        history_size: int = 1000,
        bookmark_interval: float = 5.0,
        watch_timeout_seconds: float = 60.0,
        namespaces: Iterable[str] = DEFAULT_NAMESPACES,
        request_log_size: int = 10000,
    ) -> None:
        if rollout_step_seconds is not None and rollout_step_seconds <= 0:
            raise ValueError("rollout_step_seconds must be positive (or None for manual steps)")
        self.registry = Registry(BUILTIN)
        self.store = Store(self.registry, history_size=history_size)
        self.controllers = Controllers(self.store, self.registry)
        self.authenticator = Authenticator(self._service_account_exists)
        self._state = ServerState(
            self.store,
            self.registry,
            bookmark_interval=bookmark_interval,
            watch_timeout=watch_timeout_seconds,
            request_log_size=request_log_size,
            authenticator=self.authenticator,
            policy=Policy(self._rbac_objects),
        )
        self._host, self._port = host, port
        self._rollout_step = rollout_step_seconds
        self._server: SimHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._clients: list[k8s.ApiClient] = []
        self._lifecycle = threading.Lock()
        namespace_type = self.resource("v1", "namespaces")
        for name in namespaces:
            self.store.create(namespace_type, None, {"metadata": {"name": name}}, manager="kube-sim")

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> KubeSim:
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("KubeSim is already running")
            self._state.stopping.clear()
            self._listen()
            if self._rollout_step is not None:
                ticker = threading.Thread(target=self._tick, args=(self._rollout_step,), name="kube-sim-rollouts")
                ticker.start()
                self._threads.append(ticker)
        return self

    def _listen(self) -> None:
        try:
            server = SimHTTPServer((self._host, self._port), self._state)
        except OSError as err:
            raise RuntimeError(f"kube-sim cannot listen on {self._host}:{self._port}: {err}") from err
        self._server = server
        self._port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="kube-sim-http")
        thread.start()
        self._threads.append(thread)

    def _close_listener(self) -> list[str]:
        """Close the port, end every watch and connection; the names of connection threads still alive after
        `_JOIN_SECONDS`."""
        server, self._server = self._server, None
        if server is None:
            return []
        server.shutdown()
        self._state.close_watches()
        server.close_connections()
        server.server_close()
        return server.join(time.monotonic() + _JOIN_SECONDS)

    def _tick(self, period: float) -> None:
        while not self._state.stopping.wait(period):
            try:
                self.controllers.step()
            except Exception:  # keep ticking: one bad object must not stop every rollout
                log.exception("kube-sim: rollout step failed")

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread the simulator started."""
        with self._lifecycle:
            self._state.stopping.set()
            self.store.notify()
            alive = self._close_listener()
            for thread in self._threads:
                thread.join(_JOIN_SECONDS)
            alive += [t.name for t in self._threads if t.is_alive()]
            self._threads = []
            for api in self._clients:
                api.close()
            self._clients = []
        if alive:
            raise RuntimeError(f"kube-sim threads did not stop: {alive}")

    # -- connecting -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def _service_account_exists(self, namespace: str, name: str) -> bool:
        return self.store.stored(self.resource("v1", "serviceaccounts"), namespace, name) is not None

    def _rbac_objects(self, plural: str, namespace: str | None) -> builtins.list[dict[str, Any]]:
        return self.store.objects(self.resource(f"{RBAC_GROUP}/v1", plural), namespace)

    def service_account_token(self, namespace: str, name: str) -> str:
        """A new bearer token of the ServiceAccount NAMESPACE/NAME (valid while the ServiceAccount exists)."""
        token = f"sa.{namespace}.{name}.{secrets.token_hex(8)}"
        self.authenticator.add_service_account(token, namespace, name)
        return token

    def user_token(self, name: str, groups: Iterable[str] = ()) -> str:
        """A new bearer token of user NAME in GROUPS (and system:authenticated)."""
        token = f"user.{name}.{secrets.token_hex(8)}"
        self.authenticator.add_user(token, name, groups)
        return token

    def write_kubeconfig(self, path: str | Path, namespace: str = "default", token: str = ADMIN_TOKEN) -> Path:
        """A kubeconfig with one context `kube-sim` pointing at this server, as the admin unless `token`."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-sim", "cluster": {"server": self.url}}],
            "users": [{"name": "kube-sim", "user": {"token": token}}],
            "contexts": [
                {"name": "kube-sim", "context": {"cluster": "kube-sim", "user": "kube-sim", "namespace": namespace}}
            ],
            "current-context": "kube-sim",
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def api_client(self, token: str = ADMIN_TOKEN) -> k8s.ApiClient:
        """A `kubernetes.client.ApiClient` for this server (as the admin unless `token`); closed by `stop()`."""
        configuration = k8s.Configuration(host=self.url)
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        api = k8s.ApiClient(configuration)
        self._clients.append(api)
        return api

    # -- direct access (no HTTP) ------------------------------------------------------------------------

    def resource(self, api_version: str, plural: str) -> ResourceType:
        rt = self.registry.by_api_version(api_version, plural)
        if rt is None:
            raise KeyError(f"kube-sim serves no resource {plural!r} in {api_version!r}")
        return rt

    def _kind(self, obj: dict[str, Any]) -> ResourceType:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise KeyError(f"kube-sim serves no kind {kind!r} in {api_version!r}")
        return rt

    def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.store.get(self.resource(api_version, plural), namespace, name)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    def list(
        self,
        api_version: str,
        plural: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        rt = self.resource(api_version, plural)
        items = self.store.list_items(rt, namespace, label_selector, field_selector)["items"]
        return [{"apiVersion": rt.api_version, "kind": rt.kind, **item} for item in items]

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        rt = self._kind(obj)
        return self.store.create(rt, namespace or (obj.get("metadata") or {}).get("namespace"), obj, manager="kube-sim")

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        rt, meta = self._kind(obj), obj.get("metadata") or {}
        return self.store.update(rt, meta.get("namespace"), meta.get("name", ""), obj, manager="kube-sim")

    def patch(
        self,
        api_version: str,
        plural: str,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        rt = self.resource(api_version, plural)
        body = json.dumps(patch).encode()
        return self.store.patch(rt, namespace, name, patch_type, body, manager="kube-sim")[0]

    def apply(self, obj: dict[str, Any], manager: str = "kube-sim", force: bool = False) -> dict[str, Any]:
        rt, meta = self._kind(obj), obj.get("metadata") or {}
        body = json.dumps(obj).encode()
        return self.store.patch(
            rt,
            meta.get("namespace"),
            meta.get("name", ""),
            "application/apply-patch+yaml",
            body,
            manager=manager,
            force=force,
        )[0]

    def delete(self, api_version: str, plural: str, namespace: str | None, name: str) -> bool:
        """Delete an object (and its dependents); False when it did not exist."""
        try:
            self.store.delete(self.resource(api_version, plural), namespace, name)
        except StatusError as err:
            if err.code == 404:
                return False
            raise
        return True

    @property
    def resource_version(self) -> int:
        return self.store.resource_version

    def step_rollouts(self) -> int:
        """Advance every unpaused Deployment rollout by one step; returns how many moved."""
        return self.controllers.step()

    # -- faults ----------------------------------------------------------------------------------------

    def fail_next(self, pattern: str, status: int = 500, times: int = 1, message: str | None = None) -> FaultRule:
        """The next `times` requests matching `[METHOD] /path/glob` get a `Status` error with this code.

        METHOD is an HTTP method, `WATCH` (watch requests only) or `*`; the path is matched with `fnmatch`.
        """
        method, path = parse_pattern(pattern)
        return self._state.faults.add(FaultRule(method, path, status, times, message))

    def delay_next(self, pattern: str, seconds: float, times: int = 1) -> FaultRule:
        """The next `times` matching requests are answered only after `seconds`."""
        method, path = parse_pattern(pattern)
        return self._state.faults.add(FaultRule(method, path, None, times, delay=seconds))

    def clear_faults(self) -> None:
        self._state.faults.clear()

    def expire_watch_history(self) -> None:
        """Forget the watch history: a watch from any older resourceVersion gets a 410 Expired ERROR event."""
        self.store.expire_history()

    def close_watches(self) -> None:
        """End every open watch stream cleanly (clients then re-watch from their last resourceVersion)."""
        self._state.close_watches()

    def pause(self, refuse_connections: bool = False) -> None:
        """Take the API server down: every request gets 503, or with `refuse_connections` the port is closed."""
        with self._lifecycle:
            if not refuse_connections:
                self._state.unavailable.set()
                self._state.close_watches()
            elif alive := self._close_listener():
                raise RuntimeError(f"kube-sim connection threads did not stop: {alive}")

    def resume(self) -> None:
        """Serve again (on the same port) after `pause()`."""
        with self._lifecycle:
            self._state.unavailable.clear()
            if self._server is None and not self._state.stopping.is_set():
                self._threads = [t for t in self._threads if t.is_alive()]
                self._listen()

    # -- request log -----------------------------------------------------------------------------------

    @property
    def requests(self) -> builtins.list[RequestRecord]:
        """Requests served so far (oldest first): (method, path, query, content_type)."""
        return list(self._state.requests)

    def clear_requests(self) -> None:
        self._state.requests.clear()
        self._state.denials.clear()

    @property
    def denials(self) -> builtins.list[Denial]:
        """Requests RBAC refused so far (oldest first): user, method, path and the 403 message."""
        return list(self._state.denials)

    def denials_for(self, user: str) -> builtins.list[Denial]:
        return [d for d in self._state.denials if d.user == user]
