"""AnalysedTraceSource: the workloads under analysis are published for 100% trace sampling, and the
trace error rate covers only time in which every trace of the canary and its baseline was kept.

Real HTTP on both sides: the `kubernetes` client against the simulated API server, TempoSource
against the Tempo simulator. Time is a shared fake clock (minutes pass in microseconds)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from canary.samples import Pair, Target, TraceSample, Workload
from canary.sources.sampling import AnalysedTraceSource, SamplingPublisher
from canary.sources.tempo import TempoSettings, TempoSource
from canary_testkit.kube import KubeSim
from canary_testkit.tempo import Span, SpanStatus, TempoServer

T0 = 1_800_000_000
CUTOFF = 30  # Tempo's query_end_cutoff: TempoSource measures up to 30 s before `end`
SETTLE = 30


def target(namespace: str, service: str) -> Target:
    return Target(
        key=f"{namespace}/{service}-canary",
        service=service,
        canary=Workload(namespace=namespace, deployment=f"{service}-canary"),
        baseline=(Workload(namespace=namespace, deployment=service),),
        window=300,
    )


CHECKOUT, LEDGER = target("shop", "checkout"), target("pay", "ledger")


def spans() -> Iterator[Span]:
    """One server span a second per workload from T0-600 to T0+1200, every 10th canary span failing."""
    index = 0
    for t in (CHECKOUT, LEDGER):
        for workload in (t.canary, *t.baseline):
            for second in range(-600, 1200):
                index += 1
                start = (T0 + second) * 10**9 + 5 * 10**8  # mid-second: no window edge falls on a span
                canary = workload == t.canary
                yield Span(
                    trace_id=f"{index:032x}",
                    span_id=f"{index:016x}",
                    start_ns=start,
                    end_ns=start + 10**6,
                    service=t.service,
                    namespace=workload.namespace,
                    deployment=workload.deployment,
                    status=SpanStatus.ERROR if canary and second % 10 == 0 else SpanStatus.OK,
                )


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> Iterator[tuple[Clock, KubeSim, AnalysedTraceSource]]:
    clock = Clock()
    with KubeSim() as sim, TempoServer(clock=clock) as tempo:
        sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mop"}})
        sim.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mop-canary-sampling", "namespace": "mop"}}
        )
        tempo.add_spans(spans())
        source = AnalysedTraceSource(
            TempoSource(TempoSettings(url=tempo.url, end_cutoff_seconds=CUTOFF), clock=clock),
            SamplingPublisher(sim.api_client(), "mop", "mop-canary-sampling"),
            settle_seconds=SETTLE,
            retain_seconds=600,
            clock=clock,
        )
        yield clock, sim, source


def published(sim: KubeSim) -> str | None:
    configmap = sim.get("v1", "configmaps", "mop", "mop-canary-sampling")
    assert configmap is not None
    return (configmap.get("data") or {}).get("workloads")


def at(clock: Clock, offset: float) -> datetime:
    clock.now = T0 + offset
    return datetime.fromtimestamp(clock.now, UTC)


def test_traces_are_measured_only_once_full_sampling_is_in_force(
    world: tuple[Clock, KubeSim, AnalysedTraceSource],
) -> None:
    clock, sim, source = world
    first = source.fetch_trace_errors([CHECKOUT], at(clock, 0))
    assert first.values == {} and first.error is None  # nothing was fully sampled yet: no trace value
    assert published(sim) == "shop/checkout,shop/checkout-canary"
    assert source.full_sampling_since("shop/checkout-canary") == T0 + SETTLE
    # 130 s later Tempo answers up to T0+100: only the 70 s since T0+30 count
    cut = source.fetch_trace_errors([CHECKOUT], at(clock, 130)).values[CHECKOUT.key]
    assert cut == Pair(canary=TraceSample(spans=70, error_spans=7), baseline=TraceSample(spans=70, error_spans=0))
    # once the whole window is past the settle time, the whole window counts
    full = source.fetch_trace_errors([CHECKOUT], at(clock, 400)).values[CHECKOUT.key]
    assert full.canary == TraceSample(spans=300, error_spans=30)


def test_a_failed_publication_never_counts_as_full_sampling_and_is_retried(
    world: tuple[Clock, KubeSim, AnalysedTraceSource],
) -> None:
    clock, sim, source = world
    source.fetch_trace_errors([CHECKOUT], at(clock, 0))
    sim.fail_next("PATCH /api/v1/namespaces/mop/configmaps/mop-canary-sampling", status=500, message="etcd timeout")
    failed = source.fetch_trace_errors([CHECKOUT, LEDGER], at(clock, 400))
    assert set(failed.values) == {CHECKOUT.key}  # the ledger's traces may still be sampled: not measured
    assert source.full_sampling_since("pay/ledger-canary") is None
    assert published(sim) == "shop/checkout,shop/checkout-canary"
    source.fetch_trace_errors([CHECKOUT, LEDGER], at(clock, 410))
    assert published(sim) == "pay/ledger,pay/ledger-canary,shop/checkout,shop/checkout-canary"
    assert source.full_sampling_since("pay/ledger-canary") == T0 + 410 + SETTLE


def test_workloads_leave_the_set_after_their_analysis_ends(world: tuple[Clock, KubeSim, AnalysedTraceSource]) -> None:
    clock, sim, source = world
    source.fetch_trace_errors([CHECKOUT, LEDGER], at(clock, 0))
    source.fetch_trace_errors([LEDGER], at(clock, 300))  # another canary's tick: checkout is kept
    assert "shop/checkout-canary" in (published(sim) or "")
    source.fetch_trace_errors([LEDGER], at(clock, 700))  # checkout not analysed for over 600 s
    assert published(sim) == "pay/ledger,pay/ledger-canary"
    assert source.full_sampling_since("shop/checkout-canary") is None
