"""List + watch one resource kind into a thread-safe cache and call a handler for every change.

One reflector thread per namespace (or one for all namespaces) lists, then watches from the list's
resourceVersion and resumes each new watch from the last resourceVersion it saw (events and
BOOKMARKs). A 410 Gone (an ERROR event or an HTTP 410) re-lists; the re-list is diffed against the
cache so the handler sees only real changes (ADDED for new objects, MODIFIED for a new
resourceVersion, DELETED for objects that vanished). Connection errors reconnect with capped
exponential backoff and jitter. One dispatcher thread calls the handler in order and, every
`resync_seconds`, calls it with RESYNC for every cached object. Handler exceptions are logged and never
stop the informer.

Objects are plain JSON dicts (camelCase keys, `kind` and `apiVersion` always set) shared with the
cache: treat them as read-only and deep-copy before changing one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from canary.kube.backoff import Backoff
from canary.kube.wire import REQUEST_TIMEOUT, JsonObject, KubeResponseError, call_json, describe, status_of

log = logging.getLogger(__name__)

EventKind = Literal["ADDED", "MODIFIED", "DELETED", "RESYNC"]
Handler = Callable[[EventKind, JsonObject], None]
Objects = list[JsonObject]
Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped objects."""

LIST_PAGE_SIZE = 500


@dataclass(frozen=True)
class Resource:
    """A namespaced resource kind and the generated client methods that list and watch it:
    `list_namespaced_<method>` and `list_<method>_for_all_namespaces` of `api`."""

    kind: str
    api_version: str
    api: type[Any]
    method: str

    def lister(self, api_client: ApiClient, namespace: str | None) -> Callable[..., Any]:
        api = self.api(api_client)
        if namespace is None:
            return getattr(api, f"list_{self.method}_for_all_namespaces")
        return getattr(api, f"list_namespaced_{self.method}")


DEPLOYMENTS = Resource("Deployment", "apps/v1", AppsV1Api, "deployment")
REPLICASETS = Resource("ReplicaSet", "apps/v1", AppsV1Api, "replica_set")
CONFIGMAPS = Resource("ConfigMap", "v1", CoreV1Api, "config_map")


def object_key(obj: JsonObject) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def resource_version(obj: JsonObject) -> str | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return str(rv) if rv is not None else None


class _Relist(Exception):
    """The watch cannot resume (410 Gone or a garbled stream): list again."""


class Informer:
    """Cache and change feed of one resource kind; see the module docstring.

    `namespaces=None` watches all namespaces with one watch; a list watches each namespace separately.
    """

    def __init__(
        self,
        api_client: ApiClient,
        resource: Resource,
        on_event: Handler,
        *,
        namespaces: Sequence[str] | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_seconds: float | None = 300.0,
        watch_timeout_seconds: int = 300,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        if namespaces is not None and not namespaces:
            raise ValueError("Informer: namespaces must be None (all) or a non-empty list")
        if resync_seconds is not None and resync_seconds <= 0:
            raise ValueError(f"Informer: resync_seconds must be positive or None, got {resync_seconds}")
        self._api_client = api_client
        self.resource = resource
        self._on_event = on_event
        self._scopes: list[str | None] = list(dict.fromkeys(namespaces)) if namespaces is not None else [None]
        selectors = {"label_selector": label_selector, "field_selector": field_selector}
        self._selectors = {k: v for k, v in selectors.items() if v}
        self._resync_seconds = resync_seconds
        self._watch_timeout = watch_timeout_seconds
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self._request_timeout = request_timeout

        self._lock = threading.Lock()
        self._cache: dict[Key, JsonObject] = {}
        self._by_namespace: dict[str, dict[str, JsonObject]] = {}
        """The same objects by namespace, so listing one namespace costs its size, not the cache's."""
        self._synced_scopes: set[str | None] = set()
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._queue: queue.Queue[tuple[EventKind, JsonObject] | None] = queue.Queue()
        self._watches: dict[str | None, Any] = {}
        self._rv: dict[str | None, str | None] = {}
        """Per scope: the resourceVersion to resume watching from; None means list first."""
        self._threads: list[threading.Thread] = []
        self.relists = 0
        """Lists done after the first one of each scope (410 Gone or a garbled stream)."""
        self.reconnects = 0
        """Connection attempts that failed and were retried after a backoff."""

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Informer:
        if self._threads:
            raise RuntimeError(f"Informer for {self.resource.kind}: already started")
        name = f"informer-{self.resource.kind.lower()}"
        self._threads.append(threading.Thread(target=self._dispatch, name=f"{name}-dispatch", daemon=True))
        for scope in self._scopes:
            thread = threading.Thread(target=self._reflect, args=(scope,), name=f"{name}-{scope or 'all'}", daemon=True)
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching and dispatching and join the threads. An in-flight list request can keep its
        thread up to the request timeout; the thread is a daemon and delivers nothing more."""
        self._stopping.set()
        with self._lock:
            watches = list(self._watches.values())
        for resp in watches:
            _shutdown(resp)
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("informer thread %s still busy after stop (in-flight request)", thread.name)

    def __enter__(self) -> Informer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- cache -------------------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once every namespace has been listed (stays true through re-lists)."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def get(self, namespace: str, name: str) -> JsonObject | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def list(self, namespace: str | None = None) -> Objects:
        """Cached objects sorted by namespace and name, optionally of one namespace (then O(its size))."""
        with self._lock:
            if namespace is not None:
                return [obj for _, obj in sorted((self._by_namespace.get(namespace) or {}).items())]
            items = list(self._cache.items())
        items.sort(key=lambda item: item[0])
        return [obj for _, obj in items]

    def _put(self, key: Key, obj: JsonObject) -> None:
        """Store under the lock."""
        self._cache[key] = obj
        self._by_namespace.setdefault(key[0], {})[key[1]] = obj

    def _drop(self, key: Key) -> None:
        """Remove under the lock."""
        self._cache.pop(key, None)
        names = self._by_namespace.get(key[0])
        if names is not None:
            names.pop(key[1], None)
            if not names:
                del self._by_namespace[key[0]]

    # -- reflector ---------------------------------------------------------------------------------

    def _reflect(self, scope: str | None) -> None:
        where = f"{self.resource.kind} in {scope or 'all namespaces'}"
        backoff = Backoff(self._backoff_initial, self._backoff_max)
        while not self._stopping.is_set():
            watch_started: float | None = None
            try:
                if self._rv.get(scope) is None:
                    self._rv[scope] = self._list(scope)
                    backoff.reset()
                watch_started = time.monotonic()
                events = self._watch(scope)
                if events == 0 and time.monotonic() - watch_started < 1.0 and not self._stopping.is_set():
                    # A server that closes watches at once would otherwise make us spin.
                    self._stopping.wait(backoff.next())
                else:
                    backoff.reset()
            except _Relist as e:
                log.info("re-listing %s: %s", where, e)
                self._rv[scope] = None
            except Exception as e:
                if self._stopping.is_set():
                    break
                if status_of(e) == 410:
                    log.info("re-listing %s: %s", where, describe(e))
                    self._rv[scope] = None
                    continue
                if watch_started is not None and time.monotonic() - watch_started >= 1.0:
                    backoff.reset()  # a watch that ran for a while and then broke: reconnect promptly
                delay = backoff.next()
                self.reconnects += 1
                log.warning("watching %s failed (%s); retrying in %.1fs", where, describe(e), delay)
                self._stopping.wait(delay)

    def _list(self, scope: str | None) -> str:
        lister = self.resource.lister(self._api_client, scope)
        args = (scope,) if scope is not None else ()
        items: Objects = []
        list_rv: str | None = None
        token: str | None = None
        while True:
            page_args: dict[str, Any] = {"limit": LIST_PAGE_SIZE, **self._selectors}
            if token:
                page_args["_continue"] = token
            page = call_json(lister, *args, timeout=self._request_timeout, **page_args)
            meta = page.get("metadata") or {}
            list_rv = list_rv or meta.get("resourceVersion")
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    items.append(self._complete(item))
            token = meta.get("continue")
            if not token:
                break
        if not list_rv:
            raise KubeResponseError(f"list of {self.resource.kind} has no metadata.resourceVersion")
        self._replace(scope, items)
        return str(list_rv)

    def _replace(self, scope: str | None, items: Objects) -> None:
        fresh = {object_key(obj): obj for obj in items}
        with self._lock:
            if scope is None:
                old = dict(self._cache)
            else:
                old = {(scope, name): obj for name, obj in (self._by_namespace.get(scope) or {}).items()}
            for key in old.keys() - fresh.keys():
                self._drop(key)
                self._queue.put(("DELETED", old[key]))
            for key, obj in fresh.items():
                prev = old.get(key)
                self._put(key, obj)
                if prev is None:
                    self._queue.put(("ADDED", obj))
                elif resource_version(prev) != resource_version(obj):
                    self._queue.put(("MODIFIED", obj))
            if scope in self._synced_scopes:
                self.relists += 1
            self._synced_scopes.add(scope)
            if len(self._synced_scopes) == len(self._scopes):
                self._synced.set()

    def _watch(self, scope: str | None) -> int:
        """Watch from the scope's last resourceVersion until the server ends the stream, keeping that
        resourceVersion current event by event (so a broken stream resumes where it broke); return how
        many events arrived."""
        lister = self.resource.lister(self._api_client, scope)
        args = (scope,) if scope is not None else ()
        timeout_seconds = int(self._watch_timeout * (1 + random.random()))
        resp = lister(
            *args,
            watch=True,
            resource_version=self._rv[scope],
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _preload_content=False,
            _request_timeout=(self._request_timeout[0], timeout_seconds + 30),
            **self._selectors,
        )
        with self._lock:
            self._watches[scope] = resp
        events = 0
        try:
            if self._stopping.is_set():
                return events
            for line in iter_resp_lines(resp):
                if self._stopping.is_set():
                    break
                if not line.strip():
                    continue
                self._rv[scope] = self._apply(line, self._rv[scope] or "")
                events += 1
        finally:
            with self._lock:
                self._watches.pop(scope, None)
            resp.close()
            resp.release_conn()
        return events

    def _apply(self, line: str, rv: str) -> str:
        """Apply one watch event line to the cache; return the resourceVersion to resume from."""
        try:
            event = json.loads(line)
            kind, obj = event["type"], event["object"]
        except (ValueError, KeyError, TypeError) as e:
            raise _Relist(f"garbled watch event {line[:200]!r}") from e
        if not isinstance(obj, dict):
            raise _Relist(f"watch event without an object: {line[:200]!r}")
        if kind == "ERROR":
            code, message = obj.get("code"), obj.get("message", "")
            if code == 410:
                raise _Relist(f"watch expired (410 Gone: {message})")
            raise ApiException(status=code if isinstance(code, int) else 0, reason=f"watch ERROR event: {message}")
        new_rv = resource_version(obj)
        if kind == "BOOKMARK":
            return new_rv or rv
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            raise _Relist(f"unknown watch event type {kind!r}")
        obj = self._complete(obj)
        key = object_key(obj)
        with self._lock:
            if kind == "DELETED":
                self._drop(key)
            else:
                self._put(key, obj)
            self._queue.put((kind, obj))
        return new_rv or rv

    def _complete(self, obj: JsonObject) -> JsonObject:
        """List items come without kind/apiVersion; set them so every object is self-describing."""
        obj.setdefault("kind", self.resource.kind)
        obj.setdefault("apiVersion", self.resource.api_version)
        return obj

    # -- dispatcher --------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        period = self._resync_seconds
        next_resync = time.monotonic() + period if period else None
        while not self._stopping.is_set():
            try:
                wait = None if next_resync is None else max(0.0, next_resync - time.monotonic())
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                next_resync = time.monotonic() + period if period else None
                if self.has_synced:
                    self._resync()
                continue
            if item is not None:
                self._deliver(*item)

    def _resync(self) -> None:
        for obj in self.list():
            if self._stopping.is_set():
                return
            self._deliver("RESYNC", obj)

    def _deliver(self, kind: EventKind, obj: JsonObject) -> None:
        try:
            self._on_event(kind, obj)
        except Exception:
            ns, name = object_key(obj)
            log.exception("%s handler failed on %s %s/%s", kind, self.resource.kind, ns, name)


def _shutdown(resp: Any) -> None:
    """Unblock a thread reading a watch stream by shutting its socket down."""
    with contextlib.suppress(Exception):
        resp.shutdown()
