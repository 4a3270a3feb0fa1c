"""Thread counts stay flat (issue 10, defect 8): 200 distinct webhook URLs and 300 idle connections to
the health server never cost a thread each. Idle times are compressed (senders end after 0.3 s idle,
the health server's read timeout is 1 s instead of 5 s)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from canary.controller.http import HealthServer
from canary.notify.destinations import Destination, SinkKind
from canary.notify.notifier import Notifier
from canary.notify.settings import DeliveryPolicy
from canary_testkit.ledger import MemoryLedger
from canary_testkit.slack import SlackSim
from tests.notify.notify_fixtures import event

FAST = DeliveryPolicy(min_interval=0, timeout=5, backoff_base=0.02, backoff_cap=0.1, max_attempts=1, max_age=60)


def _wait(probe: object, timeout: float) -> bool:
    done = threading.Event()
    deadline = 0.0
    while deadline < timeout:
        if probe():  # type: ignore[operator]
            return True
        done.wait(0.05)
        deadline += 0.05
    return False


@pytest.fixture
def webhook() -> Iterator[SlackSim]:
    with SlackSim(slack=False) as sim:
        yield sim


def test_200_webhook_urls_never_cost_200_threads(webhook: SlackSim) -> None:
    def senders() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("notify-"))

    notifier = Notifier(MemoryLedger(), policy=FAST, registry=CollectorRegistry(), max_workers=8, worker_idle=0.3)
    notifier.start()
    peak = 0
    try:
        for i in range(200):
            url = SecretStr(f"{webhook.url}?tenant={i}")  # 200 distinct URLs (the sim answers them 404)
            notifier.publish(event(deployment=f"app-{i}"), [Destination(kind=SinkKind.WEBHOOK, url=url)])
            peak = max(peak, senders())
        assert notifier.wait_idle(60)
        peak = max(peak, senders())
        assert len(webhook.requests) == 200, "every message was tried"
        assert peak <= 1 + 8, f"{peak} notifier threads for 200 URLs"
        assert _wait(lambda: senders() == 1, 5), "idle senders end; the dispatcher stays"
    finally:
        notifier.close()


def test_300_idle_connections_never_cost_300_threads() -> None:
    baseline = threading.active_count()
    server = HealthServer("127.0.0.1", 0, CollectorRegistry(), lambda: (True, "ok"), lambda: (True, "ok"),
                          read_timeout=1.0)
    server.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.settimeout(2)
            try:
                sock.connect(("127.0.0.1", server.port))
            except OSError:
                sock.close()
                continue
            idle.append(sock)
        assert len(idle) >= 250, "the connections are accepted"
        response = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert response.status_code == 200 and response.text == "ok\n", "the probe is answered among them"
        assert threading.active_count() <= baseline + 1, "one server thread, whatever the clients"
        assert _wait(lambda: all(sock.recv(1) == b"" for sock in idle), 5), "idle clients are disconnected"
    finally:
        for sock in idle:
            sock.close()
        server.stop()
