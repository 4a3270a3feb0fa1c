"""The HTTP front of the simulated API server: routing, JSON bodies, `Status` errors and watch streams."""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from canary_testkit.httpserver import TrackingHTTPServer
from canary_testkit.kube.convert import from_storage
from canary_testkit.kube.errors import REASONS, StatusError, bad_request
from canary_testkit.kube.faults import Faults
from canary_testkit.kube.rbac import (
    ANONYMOUS,
    Attributes,
    Authenticator,
    Policy,
    UserInfo,
    field_selector_name,
    forbidden,
    resource_verb,
)
from canary_testkit.kube.registry import KUBE_VERSION, Registry, ResourceType
from canary_testkit.kube.selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from canary_testkit.kube.store import APPLY_PATCH, Change, Store

log = logging.getLogger(__name__)
_WAKE_SECONDS = 0.25
_MAX_BODY = 16 * 1024 * 1024


class RequestRecord(NamedTuple):
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    user: str = ""
    """The authenticated user name ("" when authentication failed)."""


class Denial(NamedTuple):
    """A request that RBAC refused (403), with kube-apiserver's message."""

    user: str
    method: str
    path: str
    message: str


class ServerState:
    """What the handlers share: store, registry, faults, request log, pause and watch bookkeeping."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        bookmark_interval: float,
        watch_timeout: float,
        request_log_size: int,
        authenticator: Authenticator,
        policy: Policy,
    ) -> None:
        self.store = store
        self.registry = registry
        self.authenticator = authenticator
        self.policy = policy
        self.denials: deque[Denial] = deque(maxlen=request_log_size)
        self.faults = Faults()
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.requests: deque[RequestRecord] = deque(maxlen=request_log_size)
        self.stopping = threading.Event()
        self.unavailable = threading.Event()
        self.watch_generation = 0
        self.lock = threading.Lock()

    def close_watches(self) -> None:
        with self.lock:
            self.watch_generation += 1
        self.store.notify()


class SimHTTPServer(TrackingHTTPServer):
    """The test kit's tracking server (open connections and request threads, to cut and join them) with the
    state the handlers share."""

    def __init__(self, address: tuple[str, int], state: ServerState) -> None:
        self.state = state
        super().__init__(address, Handler, "kube-sim")


def _status_error(code: int, message: str) -> StatusError:
    return StatusError(code, message, reason=REASONS.get(code, "Unknown"))


class Handler(BaseHTTPRequestHandler):
    """Serves one connection (HTTP/1.1 keep-alive) against the shared `ServerState`."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall
    server: SimHTTPServer
    server_version = "kube-sim"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- plumbing -------------------------------------------------------------------------------------

    @property
    def _host(self) -> str:
        host = self.server.server_address[0]
        return host.decode() if isinstance(host, bytes) else str(host)

    @property
    def state(self) -> ServerState:
        return self.server.state

    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code == 503:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise StatusError(413, f"request body of {length} bytes is larger than {_MAX_BODY}")
        return self.rfile.read(length) if length else b""

    def _json_body(self, raw: bytes) -> Any:
        try:
            return json.loads(raw) if raw else None
        except ValueError as err:
            raise bad_request(f"the request body is not valid JSON: {err}") from err

    def _manager(self, query: dict[str, str]) -> str:
        if query.get("fieldManager"):
            return query["fieldManager"]
        agent = self.headers.get("User-Agent") or "unknown"
        return agent.split("/", 1)[0]

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path.rstrip("/") or "/"
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        watch = query.get("watch", "").lower() in ("1", "true")
        self._user = ANONYMOUS
        try:
            self._user = self.state.authenticator.authenticate(self.headers.get("Authorization"))
        except StatusError as err:
            self.state.requests.append(RequestRecord(method, path, query, content_type))
            self._send_json(err.code, err.status())
            return
        self.state.requests.append(RequestRecord(method, path, query, content_type, self._user.name))
        try:
            raw = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
            if self.state.unavailable.is_set():
                raise _status_error(503, "the simulated API server is paused (unavailable)")
            rule = self.state.faults.take(method, path, watch)
            if rule is not None and rule.delay > 0:
                self.state.stopping.wait(rule.delay)
            if rule is not None and rule.status is not None:
                raise _status_error(rule.status, rule.message or f"injected fault for {method} {path}")
            self._route(method, path, query, content_type, raw)
        except StatusError as err:
            self._send_json(err.code, err.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # the server must answer, as the API server does, with a 500 Status
            log.exception("kube-sim: %s %s failed", method, self.path)
            self._send_json(500, _status_error(500, f"internal error in the simulated API server: {err!r}").status())

    # -- authorization --------------------------------------------------------------------------------

    def _authorize(self, attrs: Attributes) -> None:
        """Raise kube-apiserver's 403 unless RBAC allows the request; every refusal is remembered."""
        user: UserInfo = self._user
        if self.state.policy.allows(user, attrs):
            return
        err = forbidden(user, attrs)
        self.state.denials.append(Denial(user.name, self.command, self.path, err.message))
        raise err

    def _authorize_path(self, method: str, path: str) -> None:
        self._authorize(Attributes(verb=method.lower() if method != "HEAD" else "get", path=path))

    # -- routing --------------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, str], content_type: str, raw: bytes) -> None:
        registry = self.state.registry
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/readyz", "/livez", "/version") or len(parts) < 2 or (
            parts[0] == "apis" and len(parts) < 4
        ) or (parts[0] == "api" and len(parts) < 3):
            self._authorize_path(method, path)
        if path in ("/healthz", "/readyz", "/livez"):
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if path == "/version":
            return self._send_json(200, KUBE_VERSION)
        if not parts or parts[0] not in ("api", "apis"):
            raise _status_error(404, f"the server could not find the requested resource ({method} {path})")
        if parts[0] == "api":
            if len(parts) == 1:
                return self._send_json(200, registry.api_versions(f"{self._host}:{self.server.server_address[1]}"))
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 1:
                return self._send_json(200, registry.api_group_list())
            if len(parts) == 2:
                document = registry.api_group(parts[1])
                if document is None:
                    raise _status_error(404, f"the server could not find the requested resource (group {parts[1]})")
                return self._send_json(200, document)
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            listing = registry.resource_list(group, version)
            if listing is None or method != "GET":
                raise _status_error(404, f"the server could not find the requested resource ({path})")
            return self._send_json(200, listing)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = registry.get(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = registry.get(group, version, rest[0])
        if (
            rt is None
            or len(rest) > 3
            or (rt.namespaced and namespace is None and len(rest) > 1)
            or (not rt.namespaced and namespace is not None)
        ):
            raise _status_error(404, f"the server could not find the requested resource ({method} {path})")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and not (
            (subresource == "status" and rt.has_status) or (subresource == "scale" and rt.has_scale)
        ):
            raise _status_error(404, f"the server could not find the requested resource ({method} {path})")
        named = name or (field_selector_name(query.get("fieldSelector")) if method == "GET" else "")
        attrs = Attributes(
            verb=resource_verb(method, named=name is not None, watch=query.get("watch", "").lower() in ("1", "true")),
            group=rt.group,
            resource=rt.plural,
            subresource=subresource,
            namespace=namespace or "",
            name=named or "",
        )
        self._authorize(attrs)
        if (
            method == "PATCH"
            and content_type == APPLY_PATCH
            and name is not None
            and self.state.store.stored(rt, namespace, name) is None
        ):  # server-side apply that creates: kube-apiserver also checks `create`
            self._authorize(Attributes("create", rt.group, rt.plural, subresource, namespace or "", name))
        if name is None:
            return self._collection(method, rt, namespace, query, raw)
        return self._item(method, rt, namespace, name, subresource, query, content_type, raw)

    def _collection(
        self, method: str, rt: ResourceType, namespace: str | None, query: dict[str, str], raw: bytes
    ) -> None:
        store = self.state.store
        dry_run = query.get("dryRun") == "All"
        if method == "GET":
            if query.get("watch", "").lower() in ("1", "true"):
                return self._watch(rt, namespace, query, None)
            limit = int(query["limit"]) if query.get("limit", "").isdigit() else None
            listed = store.list_items(
                rt, namespace, query.get("labelSelector"), query.get("fieldSelector"), limit, query.get("continue")
            )
            return self._send_json(200, listed)
        if method == "POST":
            if rt.namespaced and namespace is None:
                raise _status_error(405, f"POST {rt.qualified} needs a namespace in the path")
            created = store.create(rt, namespace, self._json_body(raw), dry_run=dry_run, manager=self._manager(query))
            return self._send_json(201, created)
        if method == "DELETE":
            options = self._json_body(raw) or {}
            dry_run = dry_run or "All" in (options.get("dryRun") or [])
            listed = store.delete_collection(
                rt, namespace, query.get("labelSelector"), query.get("fieldSelector"), dry_run=dry_run
            )
            return self._send_json(200, listed)
        raise _status_error(405, f"{method} is not supported on the collection {rt.qualified}")

    def _item(
        self,
        method: str,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        subresource: str,
        query: dict[str, str],
        content_type: str,
        raw: bytes,
    ) -> None:
        store = self.state.store
        dry_run = query.get("dryRun") == "All"
        manager = self._manager(query)
        if method == "GET":
            if query.get("watch", "").lower() in ("1", "true") and not subresource:
                return self._watch(rt, namespace, query, name)
            if subresource == "scale":
                return self._send_json(200, store.scale(rt, namespace, name))
            return self._send_json(200, store.get(rt, namespace, name))
        if method == "PUT":
            updated = store.update(
                rt, namespace, name, self._json_body(raw), subresource=subresource, dry_run=dry_run, manager=manager
            )
            return self._send_json(200, updated)
        if method == "PATCH":
            if query.get("fieldManager") is None and content_type == "application/apply-patch+yaml":
                manager = ""
            patched, created = store.patch(
                rt,
                namespace,
                name,
                content_type,
                raw,
                subresource=subresource,
                dry_run=dry_run,
                manager=manager,
                force=query.get("force", "").lower() == "true",
            )
            return self._send_json(201 if created else 200, patched)
        if method == "DELETE" and not subresource:
            options = self._json_body(raw) or {}
            if not isinstance(options, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            propagation = query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
            deleted = store.delete(
                rt,
                namespace,
                name,
                dry_run=dry_run or "All" in (options.get("dryRun") or []),
                orphan=propagation == "Orphan" or options.get("orphanDependents") is True,
                precondition_rv=(options.get("preconditions") or {}).get("resourceVersion"),
            )
            return self._send_json(200, deleted)
        raise _status_error(405, f"{method} is not supported on {rt.qualified}/{subresource or name}")

    # -- watch ----------------------------------------------------------------------------------------

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _write_event(self, kind: str, obj: dict[str, Any]) -> None:
        self._write_chunk(json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n")

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _watch(self, rt: ResourceType, namespace: str | None, query: dict[str, str], name: str | None) -> None:
        state = self.state
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), rt.group, rt.plural)
        timeout = state.watch_timeout
        if query.get("timeoutSeconds"):
            try:
                timeout = float(query["timeoutSeconds"])
            except ValueError as err:
                raise bad_request(f"timeoutSeconds {query['timeoutSeconds']!r} is not a number") from err
        bookmarks = query.get("allowWatchBookmarks", "").lower() == "true"
        initial_events = query.get("sendInitialEvents", "").lower() == "true"
        resource_version = "" if initial_events else query.get("resourceVersion")
        deadline = time.monotonic() + timeout
        with state.lock:
            generation = state.watch_generation
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def wanted(obj: dict[str, Any] | None) -> dict[str, Any] | None:
            if obj is None:
                return None
            served = from_storage(rt, obj)
            meta = served.get("metadata") or {}
            if namespace and rt.namespaced and meta.get("namespace") != namespace:
                return None
            if name is not None and meta.get("name") != name:
                return None
            return served if labels_match(labels, served) and fields_match(fields, served) else None

        def emit(change: Change) -> bool:
            if change.storage != rt.storage:
                return False
            new, old = wanted(change.obj), wanted(change.old)
            if change.type == "DELETED":
                if new is not None:
                    self._write_event("DELETED", new)
                return new is not None
            if new is not None:
                self._write_event("ADDED" if change.type == "ADDED" or old is None else "MODIFIED", new)
            elif old is not None:  # no longer matches the selector: a DELETED event, as the API server sends
                self._write_event("DELETED", from_storage(rt, change.obj))
            return new is not None or old is not None

        try:
            self._stream(rt, resource_version, emit, deadline, generation, bookmarks, initial_events)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        finally:
            self.close_connection = True

    def _stream(
        self,
        rt: ResourceType,
        resource_version: str | None,
        emit: Any,
        deadline: float,
        generation: int,
        bookmarks: bool,
        initial_events: bool,
    ) -> None:
        """Write watch events until the deadline, a stop, `close_watches`, an expiry or the client leaving."""
        state = self.state
        try:
            cursor, initial = state.store.watch_start(rt, resource_version)
        except StatusError as err:
            self._write_event("ERROR", err.status())
            return
        for change in initial:
            emit(change)
        last_sent = time.monotonic()
        if initial_events and bookmarks:
            self._bookmark(rt, cursor, {"k8s.io/initial-events-end": "true"})
        while not state.stopping.is_set() and not state.unavailable.is_set():
            with state.lock:
                if state.watch_generation != generation:
                    break
            try:
                changes = state.store.changes_since(cursor)
            except StatusError as err:
                self._write_event("ERROR", err.status())
                break
            for change in changes:
                cursor = change.rv
                if emit(change):
                    last_sent = time.monotonic()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._client_gone():
                break
            if bookmarks and time.monotonic() - last_sent >= state.bookmark_interval:
                self._bookmark(rt, cursor, None)
                last_sent = time.monotonic()
            state.store.wait_for_change(cursor, min(_WAKE_SECONDS, remaining))

    def _bookmark(self, rt: ResourceType, cursor: int, annotations: dict[str, str] | None) -> None:
        metadata: dict[str, Any] = {"resourceVersion": str(cursor)}
        if annotations:
            metadata["annotations"] = annotations
        self._write_event("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata})
