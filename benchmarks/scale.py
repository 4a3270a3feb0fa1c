"""Scale benchmark: one analysis tick for 100, 1,000 and 5,000 guarded canaries against a real
Prometheus holding their series, batched (one query per signal) versus one canary at a time.

    .venv/bin/python benchmarks/scale.py [--sizes 100,1000,5000] [--interval 30]

Prints, per size: backend queries per tick, controller CPU seconds per tick (process time of the
Analyzer: query, parse, split, judge), wall seconds, peak Python memory, and the share of one core
that the tick costs at the given analysis interval. The per-canary column measures a sample of
canaries queried separately and scales it to N (queries grow with N there, not here).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from canary.analysis import AnalysisRequest, Analyzer
from canary.config.slo import ServiceSLOSpec
from canary.sources.mimir import MimirSettings, MimirSource
from canary_testkit.prometheus import PrometheusServer
from tests.promdata import DataRange, Scenario, Traffic, openmetrics

NAMESPACES = 50
PER_CANARY_SAMPLE = 50


def scenarios(n: int) -> list[Scenario]:
    out = []
    for i in range(n):
        ns, name = f"team-{i % NAMESPACES}", f"svc-{i}"
        common = {"namespace": ns, "deployment": name, "service": name}
        out.append(Scenario(
            name=name,
            canary=Traffic(replicaset=f"{name}-new", rps=2.0, error_ratio=0.01, age=240, **common),  # type: ignore[arg-type]
            baseline=(Traffic(replicaset=f"{name}-old", rps=8.0, error_ratio=0.01, **common),),  # type: ignore[arg-type]
        ))
    return out


def tick(
    analyzer: Analyzer, requests: list[AnalysisRequest], end: datetime, measure_memory: bool = False
) -> tuple[int, float, float, float]:
    """(backend queries, CPU seconds, wall seconds, peak MiB) of one analysis call. Memory is traced in
    a separate call (`measure_memory`) because tracing slows the CPU measurement down."""
    if measure_memory:
        tracemalloc.start()
    cpu, wall = time.process_time(), time.perf_counter()
    outcomes = analyzer.analyze(requests, end)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if measure_memory else 0.0
    tracemalloc.stop()
    queries = len(next(iter(outcomes.values())).measurement.queries) if outcomes else 0
    phases = {o.verdict.phase.value for o in outcomes.values()}
    assert len(outcomes) == len(requests) and "error" not in phases, phases
    return queries, cpu, wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--interval", type=float, default=30.0, help="analysis interval, seconds")
    args = parser.parse_args()
    console = Console(width=110)
    table = Table(title=f"one analysis tick (interval {args.interval:g}s, window 2m)")
    for column in ("canaries", "mode", "queries/tick", "CPU s/tick", "wall s/tick", "peak MiB", "core share"):
        table.add_column(column, justify="right")
    spec = ServiceSLOSpec(service="svc", analysis={"window": "2m", "minRequests": 50})
    for n in (int(s) for s in args.sizes.split(",")):
        rng = DataRange.ending_now(minutes=4, lag=30)
        cases = scenarios(n)
        text = openmetrics([t for c in cases for t in c.traffic], rng, step=60.0)
        console.log(f"{n} canaries: backfilling {len(text) / 2**20:.0f} MiB of OpenMetrics")
        with PrometheusServer(openmetrics=text, startup_timeout=600) as prom:
            source = MimirSource(MimirSettings(url=prom.url, timeout_seconds=120))
            source.detect(rng.end_time)
            analyzer = Analyzer(source)
            requests = [AnalysisRequest(target=c.target(window=120), slo=spec.model_copy(update={"service": c.name}))
                        for c in cases]
            tick(analyzer, requests[:10], rng.end_time)  # warm-up
            queries, cpu, wall, _ = tick(analyzer, requests, rng.end_time)
            peak = tick(analyzer, requests, rng.end_time, measure_memory=True)[3]
            table.add_row(str(n), "batched", str(queries), f"{cpu:.2f}", f"{wall:.2f}", f"{peak:.0f}",
                          f"{cpu / args.interval:.1%}")
            sample = requests[:PER_CANARY_SAMPLE]
            q = c_sum = w_sum = 0.0
            for request in sample:
                qq, cc, ww, _ = tick(analyzer, [request], rng.end_time)
                q, c_sum, w_sum = q + qq, c_sum + cc, w_sum + ww
            scale = n / len(sample)
            table.add_row(str(n), "per canary", f"{q * scale:.0f}", f"{c_sum * scale:.2f}", f"{w_sum * scale:.2f}",
                          "-", f"{c_sum * scale / args.interval:.1%}")
            source.close()
    console.print(table)


if __name__ == "__main__":
    main()
