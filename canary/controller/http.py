"""/metrics, /healthz and /readyz on one small HTTP server: one thread, whatever the clients do.

An asyncio loop in a single daemon thread serves every connection, so idle or slow clients cost no
thread; a client that sends no complete request head within `read_timeout` seconds is disconnected,
and beyond `max_connections` open connections new ones are closed at once. Each answer closes its
connection (`Connection: close`), as probes and scrapers expect nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

READ_TIMEOUT = 5.0
MAX_CONNECTIONS = 1000
MAX_HEAD_BYTES = 16 * 1024
TEXT = "text/plain; charset=utf-8"


class HealthServer:
    def __init__(
        self, host: str, port: int, registry: CollectorRegistry,
        healthy: Callable[[], tuple[bool, str]], ready: Callable[[], tuple[bool, str]],
        read_timeout: float = READ_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._registry = registry
        self._checks = {"/healthz": healthy, "/readyz": ready}
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._open = 0
        self._sock = socket.create_server((host, port), backlog=128)  # bound now: a taken port fails here
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._run, name="health-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._sock.close()

    # -- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, sock=self._sock, limit=MAX_HEAD_BYTES)
        )
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self.max_connections:
            writer.close()
            return
        self._open += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = [*request_line.split(" ", 2), "", ""][:3]
            status, ctype, body = self._answer(method, target.split("?", 1)[0])
            writer.write(
                f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
            await asyncio.wait_for(writer.drain(), self.read_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping: the connection is closed below
        finally:
            self._open -= 1
            writer.close()

    def _answer(self, method: str, path: str) -> tuple[HTTPStatus, str, bytes]:
        try:
            return self._route(method, path)
        except Exception as exc:
            return HTTPStatus.INTERNAL_SERVER_ERROR, TEXT, f"{type(exc).__name__}\n".encode()

    def _route(self, method: str, path: str) -> tuple[HTTPStatus, str, bytes]:
        if method != "GET":
            return HTTPStatus.METHOD_NOT_ALLOWED, TEXT, b"method not allowed\n"
        if path == "/metrics":
            return HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path in self._checks:
            ok, why = self._checks[path]()
            return (HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE), TEXT, (why + "\n").encode()
        return HTTPStatus.NOT_FOUND, TEXT, b"not found\n"
