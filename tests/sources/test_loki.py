"""LokiSource over real HTTP, and the Loki test server against the answers recorded from a real Loki 3.8
(tests/fixtures/loki/): the server, loaded with the recorded lines, answers the recorded requests with
the recorded bodies (statistics aside); the source reads them and turns every failure into data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from canary.samples import Backend, BackendErrorKind, Workload
from canary.sources import logql
from canary.sources.loki import LokiSettings, LokiSource
from canary_testkit.loki import Fault, LogLine, LokiServer, parse, recorded_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "loki"
START, END = 1796005500, 1796005860
FAILING = "c204ed7b2857fbc0c66cd5b356750c85"
CANARY = Workload(namespace="shop", deployment="checkout", replicaset="checkout-7f8e9a1b2")


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def at(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


@pytest.fixture(scope="module")
def loki() -> Iterator[LokiServer]:
    with LokiServer(clock=lambda: END + 51.0) as server:
        server.add_lines(recorded_lines(fixture("ingested_log_lines.json")))
        yield server


def without_stats(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = {**body, "data": {k: v for k, v in body["data"].items() if k != "stats"}}
    return body


@pytest.mark.parametrize(
    "name",
    [
        "query_range_line_filter_trace_id.json",
        "query_range_structured_metadata_trace_id.json",
        "query_range_line_filter_trace_id_categorize_labels.json",
        "query_range_detected_level_error.json",
        "query_range_canary_error_lines_logfmt.json",
        "query_range_stable_error_lines_logfmt.json",
        "error_query_instant_log_query.json",
        "error_query_range_parse_missing_brace.json",
        "error_query_range_limit_over_max.json",
        "error_query_range_empty_selector.json",
        "labels.json",
    ],
)
def test_server_answers_the_recorded_requests_as_loki_did(loki: LokiServer, name: str) -> None:
    recorded = fixture(name)
    request = recorded["request"]
    answer = httpx.get(loki.url + request["path"], params=request["params"], headers=request.get("headers", {}))
    assert answer.status_code == recorded["status"]
    assert answer.headers["content-type"] == recorded["response_content_type"]
    if isinstance(recorded["body"], str):
        assert answer.text == recorded["body"]
    else:
        body = without_stats(answer.json())
        expected = without_stats(recorded["body"])
        if isinstance(body["data"], dict) and body["data"].get("resultType") == "streams":
            # Loki orders streams by label set; with one stream per line the order is Loki's, compare as sets
            key = lambda s: json.dumps(s, sort_keys=True)  # noqa: E731
            assert sorted(map(key, body["data"]["result"])) == sorted(map(key, expected["data"]["result"]))
            body["data"]["result"] = expected["data"]["result"] = []
        assert body == expected


def source(loki: LokiServer, **settings: Any) -> LokiSource:
    return LokiSource(LokiSettings(url=loki.url, **settings))


def test_lines_by_trace_id_in_the_line_and_in_structured_metadata(loki: LokiServer) -> None:
    with source(loki) as src:
        inline, metadata = logql.lines_with_trace_ids, logql.lines_with_trace_id_metadata
        for query in (inline(CANARY, [FAILING]), metadata(CANARY, [FAILING])):
            lines, record = src.lines(query, at(START), at(END))
            assert record.error is None and record.backend is Backend.LOKI and record.query == query
            [line] = lines
            assert line.trace_id == FAILING and line.pod == "checkout-7f8e9a1b2-p8lp8" and line.level == "error"
            assert "deadlock detected" in line.line and line.at == at(1796005724.889967)


def test_error_lines_of_the_canary_pods_newest_first(loki: LokiServer) -> None:
    with source(loki) as src:
        lines, record = src.lines(logql.error_lines(CANARY), at(START), at(END), limit=100)
    assert record.error is None
    assert len(lines) == 18, "the canary logged 18 errors (README ground truth)"
    assert all(line.pod == "checkout-7f8e9a1b2-p8lp8" and "deadlock detected" in line.line for line in lines)
    assert [line.at for line in lines] == sorted((line.at for line in lines), reverse=True)


def test_hostile_names_cannot_widen_the_selector(loki: LokiServer) -> None:
    hostile = Workload(namespace='shop", pod=~".+', deployment="checkout", replicaset='x"} |= "')
    query = logql.error_lines(hostile)
    parse(query)  # still one valid selector
    with source(loki) as src:
        lines, record = src.lines(query, at(START), at(END))
    assert record.error is None and lines == []


def test_tenant_header_and_bearer_token_are_sent() -> None:
    with LokiServer(tenant="team-a", clock=lambda: END + 51.0) as server:
        pod = {"namespace": "shop", "pod": "checkout-7f8e9a1b2-aaaaa"}
        server.add_lines([LogLine(labels=pod, ts_ns=(END - 10) * 10**9, line="level=error msg=boom")])
        query = logql.error_lines(CANARY)
        with source(server) as anonymous:
            _, record = anonymous.lines(query, at(START), at(END))
        assert record.error is not None and record.error.kind is BackendErrorKind.HTTP and "401" in record.error.reason
        with source(server, tenant="team-a", bearer_token="s3cret") as tenant:
            lines, record = tenant.lines(query, at(START), at(END))
        assert record.error is None and [line.line for line in lines] == ["level=error msg=boom"]
        sent = server.requests()[-1].headers
        assert sent["x-scope-orgid"] == "team-a" and sent["authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(
    ("fault", "kind", "reason"),
    [
        (Fault.HTTP_500, BackendErrorKind.HTTP, "HTTP 500: rpc error: code = Internal desc = simulated failure"),
        (Fault.GARBAGE, BackendErrorKind.MALFORMED, "answer is not JSON"),
        (Fault.HANG, BackendErrorKind.TIMEOUT, "no answer within 0.3s"),
    ],
)
def test_failures_are_errors_as_data(fault: Fault, kind: BackendErrorKind, reason: str) -> None:
    with LokiServer(hang_seconds=5) as server:
        server.inject(fault)
        with source(server, timeout_seconds=0.3) as src:
            lines, record = src.lines(logql.error_lines(CANARY), at(START), at(END))
        server.inject(None)
    assert lines == [] and record.error is not None
    assert record.error.backend is Backend.LOKI and record.error.kind is kind and reason in record.error.reason
    assert record.error.query == logql.error_lines(CANARY)


def test_a_refused_query_quotes_loki() -> None:
    with LokiServer() as server, source(server) as src:
        _, record = src.lines("{}", at(START), at(END))
    assert record.error is not None and record.error.kind is BackendErrorKind.HTTP
    assert "HTTP 400: parse error : queries require at least one regexp or equality matcher" in record.error.reason


def test_nothing_listening_is_a_connection_error() -> None:
    with LokiServer() as server:
        url = server.url
    with LokiSource(LokiSettings(url=url, timeout_seconds=1)) as src:
        _, record = src.lines(logql.error_lines(CANARY), at(START), at(END))
    assert record.error is not None and record.error.kind is BackendErrorKind.CONNECTION


def test_long_lines_are_cut_visibly(loki: LokiServer) -> None:
    with LokiServer(clock=lambda: END + 51.0) as server:
        server.add_lines(
            [
                LogLine(
                    labels={"namespace": "shop", "pod": "checkout-7f8e9a1b2-aaaaa"},
                    ts_ns=(END - 10) * 10**9,
                    line="level=error " + "x" * 5000,
                )
            ]
        )
        with source(server, max_line_chars=100) as src:
            [line], _ = src.lines(logql.error_lines(CANARY), at(START), at(END))
    assert len(line.line) < 130 and line.line.endswith("more chars)")
