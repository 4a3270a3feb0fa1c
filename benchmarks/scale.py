"""Scale benchmark: one analysis tick for 100, 1,000 and 5,000 guarded canaries against a real
Prometheus holding their series, batched (one query per signal) versus one canary at a time; and the
Kubernetes API requests the controller makes per due canary per tick.

    .venv/bin/python benchmarks/scale.py [--sizes 100,1000,5000] [--interval 30]
    .venv/bin/python benchmarks/scale.py --api-requests [--canaries 20] [--ticks 3]

Prints, per size: backend queries per tick, controller CPU seconds per tick (process time of the
Analyzer: query, parse, split, judge), wall seconds, peak Python memory, and the share of one core
that the tick costs at the given analysis interval. The per-canary column measures a sample of
canaries queried separately and scales it to N (queries grow with N there, not here).

`--api-requests` runs the production controller (`ControllerApp`, as the controller tests do: its
ServiceAccount and RBAC from `manifests/`) against the simulated API server, generated traffic and a
real Prometheus, with `--canaries` guard-mode canaries analysing a healthy v2, and counts what the
simulated API server served to the controller's ServiceAccount, by verb and resource, per check:
  - steady analysing tick: every canary is due, each check passes, nothing else changes; counted from
    a quiet moment (no controller request for 0.5 s) until every canary has one more check and the
    controller is quiet again, `--ticks` times;
  - promote: `successfulChecks` is lowered so that the next passing check promotes; counted from a
    quiet moment until every canary is Succeeded and the controller is quiet again (the deciding tick,
    the rollout's resumption and the reconciles of the rollout it triggers).
Watches are long-lived and not counted; the informers' resync is set to an hour so that it does not
land in a window (a resync costs no request: it replays the informer cache).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from rich.console import Console
from rich.table import Table

from canary.analysis import AnalysisRequest, Analyzer
from canary.config.slo import ServiceSLOSpec
from canary.sources.mimir import MimirSettings, MimirSource
from canary_testkit.prometheus import PrometheusServer
from tests.promdata import DataRange, Scenario, Traffic, openmetrics

if TYPE_CHECKING:
    from canary_testkit.kube import RequestRecord
    from tests.controller.harness import Cluster

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


QUIET_SECONDS = 0.5
"""No request from the controller for this long: a tick and its follow-up reconciles are over."""


def verb_resource(request: RequestRecord) -> str:
    """`VERB resource[/subresource]` of one request, in kube-apiserver's vocabulary (get/list/watch/...)."""
    parts = [p for p in request.path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]  # after /api/v1 or /apis/GROUP/VERSION
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] if rest else "/".join(parts)
    named = len(rest) >= 2
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    if request.method == "GET":
        verb = "watch" if request.query.get("watch") in ("1", "true") else "get" if named else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(request.method,
                                                                                          request.method.lower())
    return f"{verb} {resource}"


def _wait(what: str, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def _quiet(env: Cluster, user: str, timeout: float = 60.0) -> int:
    """Wait until the controller has sent nothing for QUIET_SECONDS; the request log's length then."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = sum(1 for r in env.sim.requests if r.user == user)
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since >= QUIET_SECONDS:
            return len(env.sim.requests)
        time.sleep(0.05)
    raise SystemExit(f"the controller was not quiet for {QUIET_SECONDS}s within {timeout:g}s")


def _counted(env: Cluster, user: str, start: int, end: int) -> Counter[str]:
    return Counter(
        verb_resource(r) for r in env.sim.requests[start:end]
        if r.user == user and r.query.get("watch") not in ("1", "true")
    )


def api_requests(n: int, ticks: int, interval: float) -> list[tuple[str, int, int, Counter[str]]]:
    """(scenario, canaries, checks, requests by verb and resource) for the steady ticks and a promotion."""
    from canary.controller.status import CanaryPhase, CanaryStatus
    from tests.controller.harness import SLO_TEMPLATE, cluster

    template = cast(dict[str, Any], SLO_TEMPLATE["spec"])
    analysis = {**template["analysis"], "interval": f"{interval:g}s", "successfulChecks": 1_000_000}
    results = []
    with tempfile.TemporaryDirectory() as tmp, cluster(Path(tmp)) as env:
        ns = env.namespace("bench")
        names = [f"svc-{i}" for i in range(n)]
        user = env.identity.user
        for name in names:
            env.slo(ns, name, service=name, analysis=analysis)
            env.deployment(ns, name, "v1", replicas=2,
                           annotations={"canary.mop.dev/enabled": "true", "canary.mop.dev/slo": name})

        def statuses() -> list[CanaryStatus | None]:
            return [env.status(ns, name) for name in names]

        def looks() -> int:
            return sum(s.looks for s in statuses() if s is not None)

        with env.controller(resync_seconds=3600.0):
            _wait("every Deployment Succeeded", lambda: all(
                s is not None and s.phase is CanaryPhase.SUCCEEDED for s in statuses()), 120)
            for name in names:
                env.set_image(ns, name, "v2")
            _wait("every canary analysing with a check", lambda: all(
                s is not None and s.phase is CanaryPhase.ANALYSING and s.looks >= 1 for s in statuses()), 120)
            for _ in range(ticks):
                start, before = _quiet(env, user), looks()
                _wait("one more check of every canary", lambda: looks() >= before + n, interval * 4 + 30)  # noqa: B023 (called at once)
                end = _quiet(env, user)
                counts = _counted(env, user, start, end)
                results.append(("steady analysing tick, per check", n, looks() - before, counts))
            passed = min(s.checks_passed for s in statuses() if s is not None)
            for name in names:  # the next passing check promotes
                spec = {**template, "service": name, "analysis": {**analysis, "successfulChecks": passed + 1}}
                doc = {**SLO_TEMPLATE, "metadata": {"name": name}, "spec": spec}
                env.sim.patch("v1", "configmaps", ns, f"slo-{name}", {"data": {"slo.yaml": yaml.safe_dump(doc)}})
            _quiet(env, user)
            start, before = _quiet(env, user), looks()
            _wait("every canary promoted and Succeeded", lambda: all(
                s is not None and s.phase is CanaryPhase.SUCCEEDED for s in statuses()), interval * 10 + 60)
            end = _quiet(env, user)
            results.append(("promote, per canary (deciding tick until Succeeded)", n, looks() - before,
                            _counted(env, user, start, end)))
    return results


def api_table(results: list[tuple[str, int, int, Counter[str]]], markdown: bool) -> None:
    """Requests by verb and resource, one column per scenario (its windows summed): the steady ticks per check
    (one check = one due canary in one tick), the promotion per canary (every check and reconcile it took)."""
    merged: dict[str, tuple[int, int, Counter[str]]] = {}
    for scenario, canaries, checks, counts in results:
        n, c, total = merged.get(scenario, (0, 0, Counter()))
        merged[scenario] = (n + canaries, c + checks, total + counts)
    per = {s: checks if "per check" in s else n for s, (n, checks, _) in merged.items()}
    kinds = sorted({k for _, _, counts in merged.values() for k in counts}, key=lambda k: (k.split()[1], k))
    header = ["request (verb resource)", *merged]
    rows = [[kind, *(f"{counts[kind] / per[s]:.2f}" for s, (_, _, counts) in merged.items())] for kind in kinds]
    rows.append(["**all requests**" if markdown else "all requests",
                 *(f"{sum(counts.values()) / per[s]:.2f}" for s, (_, _, counts) in merged.items())])
    rows.append(["(canaries, checks counted)", *(f"{n}, {checks}" for n, checks, _ in merged.values())])
    title = "Kubernetes API requests of the controller (its ServiceAccount; watches excluded)"
    if markdown:
        print(f"{title}\n")
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    table = Table(title=title)
    for column in header:
        table.add_column(column, justify="left" if column == header[0] else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=130).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--interval", type=float, default=30.0, help="analysis interval, seconds")
    parser.add_argument("--api-requests", action="store_true",
                        help="only count the Kubernetes API requests per due canary per tick")
    parser.add_argument("--canaries", type=int, default=20, help="--api-requests: guarded canaries")
    parser.add_argument("--ticks", type=int, default=3, help="--api-requests: steady ticks counted")
    parser.add_argument("--tick-interval", type=float, default=4.0, help="--api-requests: analysis interval, s")
    parser.add_argument("--markdown", action="store_true", help="--api-requests: print a Markdown table")
    args = parser.parse_args()
    if args.api_requests:
        api_table(api_requests(args.canaries, args.ticks, args.tick_interval), args.markdown)
        return
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
