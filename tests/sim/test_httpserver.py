"""The lifecycle every in-process test-kit server shares (canary_testkit/httpserver.py): loopback only, a
clear error when it cannot run, a restart on the same port, and a stop that is bounded, lets answers in
flight finish and leaves no thread behind. Bounds are compressed for the test (drain 0.5 s, join 0.5 s
instead of 2 s and 10 s)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from canary_testkit.httpserver import Answer, LocalHTTPServer, QuietHandler


class Echo(LocalHTTPServer):
    """Answers GET /ok at once, GET /wait once `stopping` is set (or after 5 s), GET /stuck only when the test
    lets it go (`stuck`); HTTP/1.1, so a client may keep its connection open."""

    name = "echo-test"
    drain_seconds = 0.5
    join_seconds = 0.5

    def __init__(self, port: int = 0) -> None:
        super().__init__(port=port)
        self.stuck = threading.Event()
        self.waiting = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/wait":
                    server.waiting.set()
                    released = server.stopping.wait(5)
                    self.send(Answer.text("released" if released else "timed out", 200))
                elif self.path == "/stuck":
                    server.waiting.set()
                    server.stuck.wait(5)
                else:
                    self.send(Answer.text("ok", 200))

        return Handler


@pytest.fixture
def threads_before() -> Iterator[set[threading.Thread]]:
    yield set(threading.enumerate())


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def test_listens_on_loopback_127_0_0_1_only_and_serves_at_url() -> None:
    with Echo() as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{server.url}/ok", timeout=5).text == "ok"
        assert not _accepts("127.0.0.2", server.port), "bound to more than 127.0.0.1"


def test_misuse_is_a_clear_error() -> None:
    server = Echo()
    with pytest.raises(RuntimeError, match="echo-test is not running: start"):
        _ = server.url
    server.stop()  # stopping what never ran is harmless
    with server:
        with pytest.raises(RuntimeError, match="echo-test is already running"):
            server.start()
        with pytest.raises(RuntimeError, match=f"echo-test cannot listen on 127.0.0.1:{server.port}"):
            Echo(port=server.port).start()
    server.stop()  # twice is harmless too


def test_a_restart_listens_on_the_same_port() -> None:
    server = Echo().start()
    port = server.port
    server.stop()
    assert not _accepts("127.0.0.1", port)
    with server:
        assert server.port == port
        assert httpx.get(f"{server.url}/ok", timeout=5).status_code == 200


def test_stop_releases_waiting_handlers_and_delivers_their_answers(threads_before: set[threading.Thread]) -> None:
    server = Echo().start()
    answers: list[str] = []
    client = threading.Thread(target=lambda: answers.append(httpx.get(f"{server.url}/wait", timeout=10).text))
    client.start()
    assert server.waiting.wait(5)
    started = time.monotonic()
    server.stop()
    client.join(10)
    assert answers == ["released"], "a request in flight gets its answer, not a cut connection"
    assert time.monotonic() - started < 2
    assert set(threading.enumerate()) - threads_before == set(), "threads left running after stop()"


def test_an_idle_keep_alive_connection_is_cut_and_never_holds_stop(threads_before: set[threading.Thread]) -> None:
    server = Echo().start()
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        idle.request("GET", "/ok")
        assert idle.getresponse().read() == b"ok"  # the connection stays open, its handler waits for more
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < server.drain_seconds + 1
        assert set(threading.enumerate()) - threads_before == set(), "the idle connection's thread survived"
    finally:
        idle.close()


def test_a_handler_that_will_not_end_is_named_by_stop_within_the_bound() -> None:
    server = Echo().start()
    cut: list[httpx.HTTPError] = []

    def ask() -> None:
        try:
            httpx.get(f"{server.url}/stuck", timeout=10)
        except httpx.HTTPError as err:
            cut.append(err)

    client = threading.Thread(target=ask, daemon=True)
    client.start()
    try:
        assert server.waiting.wait(5)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=r"echo-test threads did not stop: \['echo-test-request'\]"):
            server.stop()
        assert time.monotonic() - started < server.drain_seconds + server.join_seconds + 1
        client.join(5)
        assert [type(e) for e in cut] == [httpx.RemoteProtocolError], "its connection was cut"
    finally:
        server.stuck.set()
        client.join(10)
