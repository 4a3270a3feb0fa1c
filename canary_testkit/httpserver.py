"""The lifecycle every test-kit server shares, and the HTTP plumbing of the in-process ones.

- `Service`: `start()` returns the running service, `stop()` is safe to call twice, `with` does both.
- `LocalHTTPServer`: a `Service` that listens on 127.0.0.1 only (port 0: a free one, kept across a
  restart), serves from a background thread, and stops in bounded time: `stopping` is set (handlers
  that wait wait on it), answers in flight get `drain_seconds` (2 s) to finish, connections still open
  are cut, then every thread it started is joined within `join_seconds` (10 s) or `stop()` says which
  did not end.
- `Answer` and `QuietHandler`: one whole answer written at once, no request logging (URLs may hold
  secrets); `get_handler` serves GET with a function of (path, headers).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final, Self
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict

HOST: Final = "127.0.0.1"
POLL_SECONDS: Final = 0.05
DRAIN_SECONDS: Final = 2.0
JOIN_SECONDS: Final = 10.0
TEXT: Final = "text/plain; charset=utf-8"


class Service(ABC):
    """Something a test or the demo starts and stops: use it as a context manager."""

    @abstractmethod
    def start(self) -> Self:
        """Start and return self, ready to be used."""

    @abstractmethod
    def stop(self) -> None:
        """Stop and release everything started; safe to call twice."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, body, Content-Type and any other headers."""

    status: int
    body: bytes
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, payload: Any, status: int = 200, content_type: str = "application/json") -> Answer:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode(), content_type)

    @classmethod
    def text(cls, message: str, status: int) -> Answer:
        return cls(status, message.encode(), TEXT)


class RecordedRequest(BaseModel):
    """A GET request as a server saw it: path, query parameters (first value, empty ones left out), headers
    (lower-case names)."""

    model_config = ConfigDict(frozen=True)

    path: str
    params: dict[str, str]
    headers: dict[str, str]

    @classmethod
    def parse(cls, raw_path: str, headers: dict[str, str]) -> RecordedRequest:
        parts = urlsplit(raw_path)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items() if v and v[0] != ""}
        return cls(path=parts.path, params=params, headers=headers)


class QuietHandler(BaseHTTPRequestHandler):
    """Logs nothing; `send()` writes one whole answer."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


def get_handler(handle: Callable[[str, dict[str, str]], Answer], server_version: str) -> type[QuietHandler]:
    """A handler answering GET with `handle(path with query, headers with lower-case names)`."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            answer = handle(self.path, {k.lower(): v for k, v in self.headers.items()})
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                self.send(answer)

    Handler.server_version = server_version
    return Handler


class TrackingHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections and request threads, so that a stop can let
    answers finish, cut what is left and join every thread within a bound (the standard library's
    `server_close()` joins without one)."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.name = name
        self._connections: set[socket.socket] = set()
        self._request_threads: list[threading.Thread] = []
        self._changed = threading.Condition()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), name=f"{self.name}-request", daemon=True
        )
        with self._changed:
            self._connections.add(request)
            self._request_threads = [t for t in self._request_threads if t.is_alive()]
            self._request_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._changed:
            self._connections.discard(request)
            self._changed.notify_all()
        super().shutdown_request(request)

    def drain(self, seconds: float) -> bool:
        """Wait up to `seconds` until no connection is open; True when none is."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._connections, seconds)

    def close_connections(self) -> None:
        """Cut every open connection: blocked reads and writes of its handler fail at once."""
        with self._changed:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def join(self, deadline: float) -> list[str]:
        """Join the request threads until the `time.monotonic()` deadline; the names of those still alive."""
        with self._changed:
            threads = list(self._request_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in threads if t.is_alive()]


class LocalHTTPServer(Service):
    """Base of the test kit's in-process HTTP servers (see the module docstring).

    A subclass names itself (`name`: threads, error messages) and gives its request handler class
    (`handler()`); it may override `url` (e.g. a path on the server) and extend `stop()` to release
    what its handlers wait on before calling `super().stop()`."""

    name: ClassVar[str] = "http-server"
    drain_seconds: ClassVar[float] = DRAIN_SECONDS
    join_seconds: ClassVar[float] = JOIN_SECONDS

    def __init__(self, *, port: int = 0) -> None:
        self.stopping = threading.Event()
        """Set while stopping or stopped: handlers that wait, wait on it."""
        self._port = port
        self._http: TrackingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    @abstractmethod
    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class; it reaches this server through a closure."""

    @property
    def port(self) -> int:
        """The port listened on (also after `stop()`: a restart listens on it again)."""
        if not self._port:
            raise RuntimeError(f"the {self.name} is not running: start() it first")
        return self._port

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url

    def start(self) -> Self:
        with self._lifecycle:
            if self._http is not None:
                raise RuntimeError(f"the {self.name} is already running")
            try:
                http = TrackingHTTPServer((HOST, self._port), self.handler(), self.name)
            except OSError as err:
                raise RuntimeError(f"the {self.name} cannot listen on {HOST}:{self._port}: {err}") from err
            self.stopping.clear()
            self._http, self._port = http, int(http.server_address[1])
            self._thread = threading.Thread(
                target=http.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, name=self.name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving within `drain_seconds` + `join_seconds` (see the module docstring). Safe to call twice."""
        self.stopping.set()
        with self._lifecycle:
            http, thread = self._http, self._thread
            self._http = self._thread = None
            if http is None or thread is None:
                return
            deadline = time.monotonic() + self.drain_seconds + self.join_seconds
            http.shutdown()  # returns once the serving loop has ended
            thread.join(self.join_seconds)
            if not http.drain(self.drain_seconds):
                http.close_connections()
            http.server_close()
            alive = http.join(deadline) + ([thread.name] if thread.is_alive() else [])
        if alive:
            raise RuntimeError(f"the {self.name} threads did not stop: {alive}")
