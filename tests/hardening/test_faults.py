"""Every backend fault is an `error` verdict with a clear reason, through the production Mimir and Tempo
sources and the judge, against the fault-injecting server of canary_testkit (issue 10, defects 4-6, 11)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from canary.analysis import AnalysisRequest, Analyzer
from canary.judge.model import Phase
from canary.samples import Target, Workload
from canary.sources.mimir import MimirSettings, MimirSource
from canary.sources.tempo import TempoSettings, TempoSource
from canary_testkit.faults import EXPECTED, HEALTHY, SLO, TARGET, Fault, FaultConfig, FaultServer, check_once


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.mark.parametrize("fault", list(EXPECTED), ids=[f.value for f in EXPECTED])
def test_every_fault_is_an_error_verdict_with_a_clear_reason(server: FaultServer, fault: Fault) -> None:
    outcome = check_once(server, fault, timeout=1.0, huge_bytes=8 * 1024 * 1024)
    assert outcome.verdict.phase is Phase.ERROR, outcome.verdict.message
    assert EXPECTED[fault] in outcome.verdict.message


@pytest.mark.parametrize("fault", [Fault.NONE, Fault.DELAY], ids=["healthy", "slow-but-in-time"])
def test_healthy_answers_from_the_same_server_pass(server: FaultServer, fault: Fault) -> None:
    outcome = check_once(server, fault)
    assert outcome.verdict.phase is Phase.PASS, outcome.verdict.message
    assert {c.name for c in outcome.verdict.checks} >= {"availability", "trace-error-rate"}


def test_a_configured_trace_check_without_spans_is_inconclusive_never_absent(server: FaultServer) -> None:
    server.configure(FaultConfig(fault=Fault.NO_SERIES, workloads=HEALTHY, only_matching="kind = server"))
    mimir = MimirSource(MimirSettings(url=server.url, timeout_seconds=2))
    tempo = TempoSource(TempoSettings(url=server.url, timeout_seconds=2, end_cutoff_seconds=0))
    try:
        outcome = Analyzer(mimir, tempo).analyze([AnalysisRequest(target=TARGET, slo=SLO)], datetime.now(UTC))
    finally:
        mimir.close()
        tempo.close()
    verdict = outcome[TARGET.key].verdict
    traces = [c for c in verdict.checks if c.name == "trace-error-rate"]
    assert traces and traces[0].result is Phase.INCONCLUSIVE and "no data" in traces[0].reason
    assert verdict.phase is Phase.INCONCLUSIVE, "a configured check without data keeps the canary from passing"


def test_rate_limit_is_honoured_when_the_wait_fits_in_the_deadline(server: FaultServer) -> None:
    server.configure(FaultConfig(fault=Fault.RATE_LIMITED, workloads=HEALTHY, retry_after=1, rate_limited_times=1))
    before = len(server.requests)
    mimir = MimirSource(MimirSettings(url=server.url, timeout_seconds=5))
    try:
        result = mimir.fetch_red([TARGET], datetime.now(UTC))
    finally:
        mimir.close()
    assert result.error is None and result.values[TARGET.key].canary is not None
    assert len(server.requests) - before == 4  # the 429, then the three signals


def test_one_failing_window_group_spoils_only_its_own_targets(server: FaultServer) -> None:
    """A neighbour's window whose queries fail leaves the other window's canary its answer."""
    neighbour = Target(key="shop/neighbour", service="neighbour", window=300.0,
                       canary=Workload(namespace="shop", deployment="neighbour"), baseline=())
    server.configure(FaultConfig(fault=Fault.GARBAGE, workloads=HEALTHY, only_matching="[5m]"))
    mimir = MimirSource(MimirSettings(url=server.url, timeout_seconds=2))
    try:
        result = mimir.fetch_red([TARGET, neighbour], datetime.now(UTC))
    finally:
        mimir.close()
    assert result.error is None
    assert neighbour.key in result.target_errors and TARGET.key not in result.target_errors
    assert result.values[TARGET.key].canary is not None


def test_long_queries_are_sent_as_a_post_form(server: FaultServer) -> None:
    many = [
        Target(key=f"ns-{i}/svc-{i}", service=f"service-with-a-long-name-{i:04d}", window=120.0,
               canary=Workload(namespace=f"namespace-{i:04d}", deployment=f"svc-{i}", replicaset=f"svc-{i}-new"),
               baseline=())
        for i in range(120)
    ]
    server.configure(FaultConfig(workloads=HEALTHY))
    before = len(server.requests)
    mimir = MimirSource(MimirSettings(url=server.url, timeout_seconds=2))
    try:
        result = mimir.fetch_red(many, datetime.now(UTC))
    finally:
        mimir.close()
    assert result.error is None
    assert {method for method, _, _ in server.requests[before:]} == {"POST"}
