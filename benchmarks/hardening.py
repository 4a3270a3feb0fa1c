"""Hardening counts (issue 10): fuzzed inputs, crashes and wrong pass/fail per input family, every
backend fault of the fault-injecting server with its verdict, time and memory, and the CPU cost of a
resync at 1k/2k/4k Deployments and of one tick over 500/1k/2k analysing canaries.

    .venv/bin/python benchmarks/hardening.py [--examples 2000] [--backend-examples 300] [--markdown]

Prints tables; asserts nothing. A crash is any exception escaping the product; a wrong answer is one
the oracles in tests/hardening/fuzz.py reject (e.g. a pass above the objective, an SLO of another
namespace accepted, an unreadable status without a reason).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from canary.analysis import Analyzer
from canary.controller.configure import Configurator
from canary.controller.metrics import ControllerMetrics
from canary.controller.runtime import Runtime
from canary.controller.slostore import SLOStore
from canary.controller.status import STATUS_ANNOTATION, CanaryStatus
from canary.kube.deployments import template_hash
from canary.vocabulary import CanaryPhase, Mode
from canary_testkit.faults import EXPECTED, FaultServer, check_once
from tests.hardening import fuzz


@dataclass
class Tally:
    family: str
    inputs: int = 0
    crashes: int = 0
    wrong: int = 0
    example: str = ""


def fuzz_family(name: str, strategy: st.SearchStrategy[Any], oracle: Callable[[Any], None], examples: int) -> Tally:
    tally = Tally(name)

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value: Any) -> None:
        tally.inputs += 1
        try:
            oracle(value)
        except fuzz.Wrong as exc:
            tally.wrong += 1
            tally.example = tally.example or str(exc)[:120]
        except Exception as exc:
            tally.crashes += 1
            tally.example = tally.example or f"{type(exc).__name__}: {exc}"[:120]

    run()
    return tally


def fuzz_all(examples: int, backend_examples: int) -> list[Tally]:
    with FaultServer() as server:
        return [
            fuzz_family("SLO documents", fuzz.slo_documents(), fuzz.check_slo_document, examples),
            fuzz_family("annotations", fuzz.annotations, fuzz.check_annotations, examples),
            fuzz_family("status annotations", fuzz.status_annotations(), fuzz.check_status, examples),
            fuzz_family("judge inputs", st.tuples(fuzz.red_pairs(), st.integers(1, 10_000)),
                        lambda v: fuzz.check_judge(*v[0], v[1]), examples),
            fuzz_family("Mimir answers", fuzz.prometheus_bodies(),
                        lambda b: fuzz.check_backend_answer(server, b, tempo=False), backend_examples),
            fuzz_family("Tempo answers", fuzz.tempo_bodies(),
                        lambda b: fuzz.check_backend_answer(server, b, tempo=True), backend_examples),
        ]


def faults() -> list[tuple[str, str, bool, float, float]]:
    """(fault, verdict, reason as expected, seconds, peak MiB allocated) with a 2 s query timeout."""
    rows = []
    with FaultServer() as server:
        for fault, phrase in EXPECTED.items():
            tracemalloc.start()
            started = time.monotonic()
            outcome = check_once(server, fault, timeout=2.0)
            seconds = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            verdict = outcome.verdict
            rows.append((fault.value, verdict.phase.value, phrase in verdict.message, seconds, peak))
    return rows


class _ListCache:
    """The Runtime's cache over lists (no informer)."""

    def __init__(self, deployments: list[dict], replicasets: list[dict] | None = None) -> None:
        self._deployments = deployments
        self._replicasets = replicasets or []

    def deployments(self, namespace: str | None = None) -> list[dict]:
        return self._deployments

    def deployment(self, namespace: str, name: str) -> dict | None:
        return None

    def replicasets_of(self, deployment: dict) -> list[dict]:
        return []

    def replicasets(self) -> list[dict]:
        return self._replicasets


def resync_cost(n: int) -> float:
    """CPU seconds for one resync of `n` Deployments, 10% of them guarded, through Runtime.on_deployment."""
    deployments = [
        {"metadata": {"namespace": f"ns-{i % 50}", "name": f"app-{i}", "resourceVersion": "1",
                      "annotations": {"canary.mop.dev/enabled": "true"} if i % 10 == 0 else {}}}
        for i in range(n)
    ]
    metrics = ControllerMetrics()
    slos = SLOStore()
    runtime = Runtime(Configurator(slos), None, None, Analyzer(lambda _: None), slos, metrics,  # type: ignore[arg-type]
                      _ListCache(deployments))
    started = time.process_time()
    for dep in deployments:
        runtime.on_deployment("RESYNC", dep)
    return time.process_time() - started


class _CountingAnalyzer:
    """Takes a tick's batch of checks and measures nothing (the tick's own cost is the point)."""

    def __init__(self) -> None:
        self.requests = 0

    def analyze(self, requests: list[object], now: datetime) -> dict[str, object]:
        self.requests += len(requests)
        return {}


def tick_cost(n: int) -> tuple[float, int]:
    """CPU seconds for one tick over `n` analysing canaries in one namespace (one ReplicaSet each, 9 other
    Deployments per canary): each Deployment's Snapshot from the cache, and the due checks batched."""
    deployments, replicasets = [], []
    status = CanaryStatus(phase=CanaryPhase.ANALYSING, mode=Mode.GUARD)
    for i in range(n * 10):
        spec = {"replicas": 2, "template": {"metadata": {"labels": {"app": f"app-{i}"}},
                                            "spec": {"containers": [{"name": "app", "image": f"app:{i}"}]}}}
        dep = {"metadata": {"namespace": "shop", "name": f"app-{i}", "uid": f"uid-{i}", "annotations": {}},
               "spec": spec}
        if i % 10 == 0:
            current = status.model_copy(update={"template_hash": template_hash(dep)})
            dep["metadata"]["annotations"] = {"canary.mop.dev/enabled": "true",
                                              STATUS_ANNOTATION: current.to_annotation()}
        deployments.append(dep)
        replicasets.append({"metadata": {"namespace": "shop", "name": f"app-{i}-1", "ownerReferences": [
            {"uid": f"uid-{i}"}], "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": spec, "status": {"readyReplicas": 2}})
    slos = SLOStore()
    analyzer = _CountingAnalyzer()
    runtime = Runtime(Configurator(slos), None, None, analyzer, slos, ControllerMetrics(),  # type: ignore[arg-type]
                      _ListCache(deployments, replicasets))
    started = time.process_time()
    runtime.run_checks(30.0)
    seconds = time.process_time() - started
    return seconds, analyzer.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--backend-examples", type=int, default=300)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the product logs every refused input; the counts are the point here
    console = Console()
    began = datetime.now(UTC)

    tallies = fuzz_all(args.examples, args.backend_examples)
    fault_rows = faults()
    resync = [(n, resync_cost(n)) for n in (1000, 2000, 4000)]
    ticks = [(n, *tick_cost(n)) for n in (500, 1000, 2000)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if args.markdown:
        print("| input family | inputs | crashes | wrong pass/fail or acceptance |")
        print("|---|---|---|---|")
        for t in tallies:
            print(f"| {t.family} | {t.inputs:,} | {t.crashes} | {t.wrong} |")
        print(f"| **total** | {sum(t.inputs for t in tallies):,} | {sum(t.crashes for t in tallies)} | "
              f"{sum(t.wrong for t in tallies)} |")
        print()
        print("| backend fault | verdict | reason as expected | seconds | peak MiB |")
        print("|---|---|---|---|---|")
        for name, phase, ok, seconds, peak in fault_rows:
            print(f"| {name} | {phase} | {'yes' if ok else 'NO'} | {seconds:.2f} | {peak:.1f} |")
        print()
        print("| Deployments | resync CPU seconds |")
        print("|---|---|")
        for n, seconds in resync:
            print(f"| {n:,} | {seconds:.3f} |")
        print()
        print("| analysing canaries (Deployments in the namespace) | checks batched | tick CPU seconds |")
        print("|---|---|---|")
        for n, seconds, checks in ticks:
            print(f"| {n:,} ({n * 10:,}) | {checks:,} | {seconds:.3f} |")
        print(f"\nmax RSS {rss:.0f} MiB; {(datetime.now(UTC) - began).total_seconds():.0f} s in all")
        return

    table = Table(title="Fuzzed inputs")
    for column in ("input family", "inputs", "crashes", "wrong", "first problem"):
        table.add_column(column)
    for t in tallies:
        table.add_row(t.family, f"{t.inputs:,}", str(t.crashes), str(t.wrong), t.example)
    console.print(table)
    table = Table(title="Backend faults (query timeout 2 s)")
    for column in ("fault", "verdict", "reason as expected", "seconds", "peak MiB"):
        table.add_column(column)
    for name, phase, ok, seconds, peak in fault_rows:
        table.add_row(name, phase, "yes" if ok else "NO", f"{seconds:.2f}", f"{peak:.1f}")
    console.print(table)
    table = Table(title="Resync through the runtime")
    table.add_column("Deployments")
    table.add_column("CPU seconds")
    for n, seconds in resync:
        table.add_row(f"{n:,}", f"{seconds:.3f}")
    console.print(table)
    table = Table(title="One tick through the runtime (Snapshots from the cache, checks batched)")
    for column in ("analysing canaries", "Deployments in the namespace", "checks batched", "CPU seconds"):
        table.add_column(column)
    for n, seconds, checks in ticks:
        table.add_row(f"{n:,}", f"{n * 10:,}", f"{checks:,}", f"{seconds:.3f}")
    console.print(table)
    console.print(f"max RSS {rss:.0f} MiB; {(datetime.now(UTC) - began).total_seconds():.0f} s in all")


if __name__ == "__main__":
    main()
