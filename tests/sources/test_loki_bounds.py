"""The Loki source is bounded like the Tempo one (they share `canary.sources.http`): a backend that
drips, never ends, answers deeply nested JSON or rate-limits gives an error record naming the
reason within the query's deadline and the body cap, never an exception."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from canary.samples import BackendErrorKind, QueryRecord
from canary.sources.loki import LokiSettings, LokiSource
from canary_testkit.faults import Fault, FaultConfig, FaultServer

QUERY = '{namespace="shop", pod=~"checkout-abc-.*"} |= "trace_id=4bf92f3577b34da6a3ce929d0e0e4736"'


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def _lines(server: FaultServer, config: FaultConfig, max_body_bytes: int = 1024 * 1024) -> QueryRecord:
    server.configure(config)
    end = datetime.now(UTC)
    with LokiSource(LokiSettings(url=server.url, timeout_seconds=1.0), max_body_bytes=max_body_bytes) as loki:
        entries, record = loki.lines(QUERY, end - timedelta(minutes=5), end)
        assert entries == []
        return record


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (Fault.SLOW, BackendErrorKind.TIMEOUT, "not complete within the deadline"),
        (Fault.ENDLESS, BackendErrorKind.LIMIT, "larger than 1048576 bytes"),
        (Fault.DEEP, BackendErrorKind.MALFORMED, "nested too deeply"),
        (Fault.DEEP_ERROR, BackendErrorKind.HTTP, "HTTP 500"),
    ],
)
def test_a_faulty_loki_is_an_error_record_within_the_deadline(
    server: FaultServer, fault: Fault, kind: BackendErrorKind, words: str
) -> None:
    error = _lines(server, FaultConfig(fault=fault, drip=0.05)).error
    assert error is not None and error.kind is kind and words in error.reason
    assert error.backend == "loki" and error.query == QUERY


def test_a_rate_limited_loki_is_waited_out_once_then_reported_as_rate_limited(server: FaultServer) -> None:
    error = _lines(server, FaultConfig(fault=Fault.RATE_LIMITED, rate_limited_times=5, retry_after=30)).error
    assert error is not None and error.kind is BackendErrorKind.LIMIT and "rate limited: HTTP 429" in error.reason
