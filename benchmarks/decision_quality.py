"""Decision quality: false rollbacks and time to detection of our judge, a Flagger-style rule and a
Kayenta-style Mann-Whitney judge, on the same Monte-Carlo request streams.

    .venv/bin/python benchmarks/decision_quality.py [--runs 200] [--healthy-runs 1000] [--seed 7]

Setup (printed with the table):
- Streams in 10 s bins for 30 minutes, canary and baseline at the same request rate (0.5, 5, 50 req/s):
  Poisson request counts, binomial errors, multinomial latency buckets (OBI's default
  `http_server_request_duration_seconds` buckets). Healthy: 0.2% errors, log-normal latency with
  median 50 ms and p99 300 ms, for both. Regressions (canary only, from the start): error rate x2,
  x5, x20 (0.4%, 1%, 4%), and every latency x2 (p99 600 ms).
- (a) ours: `canary.judge.judge` with availability 99.5%, latencyP99 500ms, comparison defaults
  (maxErrorRateRatio 2, maxLatencyRatio 1.5) and the default analysis (interval 30s, window 2m,
  minRequests 50); rollback after failedChecks=3 consecutive fails (a pass resets the count,
  an inconclusive look does not), promotion after successfulChecks=10 passes.
- (b) Flagger-style (Flagger docs' builtin checks and defaults: interval 1m, threshold 5,
  stepWeight 10, maxWeight 50): each minute, request-success-rate over the last 1m >= 99% and
  request-duration p99 over the last 1m <= 500 ms; a minute with no request fails ("no values");
  rollback when the failed-check counter (never reset within a revision) reaches 5, promotion after
  5 passed checks (weight 10 -> 50 -> promote).
- (c) Kayenta-style: every 5 minutes (lifetime 30m), per-minute error rate and p99 of the canary
  and the baseline since the start; a metric is High when a one-sided Mann-Whitney test says the
  canary is greater at 95% confidence (p < 0.025); any High metric puts the score (50) under the
  marginal threshold (75) and fails the canary at once; promotion at the end of the lifetime.
- Detection: the regressed canary is rolled back within the 30-minute horizon (before being
  promoted). Time to detection counts from the canary's start. The SPRT column is Wald's expected
  number of requests a sequential probability ratio test needs to tell the healthy rate from the
  regressed one with 1% false rollbacks and 1% misses (errors, or requests slower than 500 ms for
  latency): no test with those error rates needs fewer on average (Wald-Wolfowitz).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from canary.config.slo import ServiceSLOSpec
from canary.judge import judge
from canary.judge.model import Phase
from canary.samples import LatencyHistogram, Measurement, Pair, RedSample, Target, Workload

BIN = 10  # seconds per simulated bin
HORIZON = 30 * 60
BINS = HORIZON // BIN
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf)
HEALTHY_ERRORS = 0.002
MEDIAN, P99 = 0.05, 0.3
SIGMA = math.log(P99 / MEDIAN) / 2.3263478740408408
RATES = (0.5, 5.0, 50.0)

SLO = ServiceSLOSpec.model_validate(
    {"service": "checkout", "objectives": {"availability": 99.5, "latencyP99": "500ms"}}
)
TARGET = Target(
    key="shop/checkout",
    service="checkout",
    canary=Workload(namespace="shop", deployment="checkout-canary"),
    baseline=(Workload(namespace="shop", deployment="checkout"),),
    window=SLO.analysis.window,
)


@dataclass(frozen=True)
class Scenario:
    name: str
    error_factor: float = 1.0
    latency_factor: float = 1.0

    @property
    def healthy(self) -> bool:
        return self.error_factor == 1.0 and self.latency_factor == 1.0


SCENARIOS = (
    Scenario("healthy"),
    Scenario("errors x2", error_factor=2),
    Scenario("errors x5", error_factor=5),
    Scenario("errors x20", error_factor=20),
    Scenario("p99 latency x2", latency_factor=2),
)


def bucket_probabilities(latency_factor: float) -> np.ndarray:
    """P(latency in each bucket) for the log-normal latency scaled by `latency_factor`."""
    cdf = [
        1.0 if math.isinf(le) else 0.5 * (1 + math.erf(math.log(le / (MEDIAN * latency_factor)) / (SIGMA * 2**0.5)))
        for le in BOUNDS
    ]
    return np.diff(np.array([0.0, *cdf]))


def slower_than(limit: float, latency_factor: float) -> float:
    return 0.5 * math.erfc(math.log(limit / (MEDIAN * latency_factor)) / (SIGMA * 2**0.5))


@dataclass(frozen=True)
class Stream:
    """Cumulative counts per bin boundary: requests, errors, latency bucket counts (not cumulative in le)."""

    requests: np.ndarray
    errors: np.ndarray
    buckets: np.ndarray

    @classmethod
    def simulate(cls, rng: np.random.Generator, rate: float, error_rate: float, latency_factor: float) -> Stream:
        requests = rng.poisson(rate * BIN, size=BINS)
        errors = rng.binomial(requests, error_rate)
        buckets = rng.multinomial(requests, bucket_probabilities(latency_factor))
        zero = np.zeros((1, len(BOUNDS)), dtype=np.int64)
        return cls(
            np.concatenate(([0], np.cumsum(requests))),
            np.concatenate(([0], np.cumsum(errors))),
            np.concatenate((zero, np.cumsum(buckets, axis=0))),
        )

    def red(self, start: int, end: int) -> RedSample:
        counts = np.cumsum(self.buckets[end] - self.buckets[start])
        histogram = LatencyHistogram(buckets=tuple(zip(BOUNDS, counts.astype(float).tolist(), strict=True)))
        return RedSample(
            requests=float(self.requests[end] - self.requests[start]),
            errors=float(self.errors[end] - self.errors[start]),
            latency=histogram,
        )


@dataclass(frozen=True)
class Outcome:
    rolled_back_at: float | None = None
    """Seconds since the canary started."""
    promoted: bool = False


def ours(canary: Stream, baseline: Stream) -> Outcome:
    analysis = SLO.analysis
    step, window = int(analysis.interval) // BIN, int(analysis.window) // BIN
    fails = passes = 0
    for look in range(1, BINS // step + 1):
        end = look * step
        start = max(0, end - window)
        m = Measurement(
            target=TARGET, red=Pair[RedSample](canary=canary.red(start, end), baseline=baseline.red(start, end))
        )
        phase = judge(m, SLO, look=look).phase
        if phase is Phase.FAIL:
            fails += 1
            if fails >= analysis.failed_checks:
                return Outcome(rolled_back_at=end * BIN)
        elif phase is Phase.PASS:
            fails = 0
            passes += 1
            if passes >= analysis.successful_checks:
                return Outcome(promoted=True)
    return Outcome()


def flagger(canary: Stream, baseline: Stream) -> Outcome:
    interval, threshold, promote_after = 60 // BIN, 5, 5
    failed = passed = 0
    for check in range(1, BINS // interval + 1):
        end = check * interval
        sample = canary.red(end - interval, end)
        p99 = sample.p99
        ok = sample.requests > 0 and 1 - sample.errors / sample.requests >= 0.99 and p99 is not None and p99 <= 0.5
        if ok:
            passed += 1
            if passed >= promote_after:
                return Outcome(promoted=True)
        else:
            failed += 1
            if failed >= threshold:
                return Outcome(rolled_back_at=end * BIN)
    return Outcome()


def _per_minute(stream: Stream, minutes: int) -> tuple[list[float], list[float]]:
    rates, p99s = [], []
    for minute in range(minutes):
        sample = stream.red(minute * 6, (minute + 1) * 6)
        if sample.requests > 0:
            rates.append(sample.errors / sample.requests)
            p99s.append(sample.p99 or 0.0)
    return rates, p99s


def _high(canary: Sequence[float], baseline: Sequence[float]) -> bool:
    if not canary or not baseline or list(canary) == list(baseline):
        return False
    return bool(mannwhitneyu(canary, baseline, alternative="greater").pvalue < 0.025)


def kayenta(canary: Stream, baseline: Stream) -> Outcome:
    interval = 5
    for judgement in range(1, HORIZON // 60 // interval + 1):
        minutes = judgement * interval
        (c_rates, c_p99), (b_rates, b_p99) = _per_minute(canary, minutes), _per_minute(baseline, minutes)
        if _high(c_rates, b_rates) or _high(c_p99, b_p99):
            return Outcome(rolled_back_at=minutes * 60.0)
    return Outcome(promoted=True)


METHODS: dict[str, Callable[[Stream, Stream], Outcome]] = {"ours": ours, "flagger": flagger, "kayenta": kayenta}


def run_batch(args: tuple[float, Scenario, int, np.random.SeedSequence]) -> dict[str, list[Outcome]]:
    rate, scenario, runs, seed = args
    rng = np.random.default_rng(seed)
    results: dict[str, list[Outcome]] = {name: [] for name in METHODS}
    for _ in range(runs):
        canary = Stream.simulate(rng, rate, HEALTHY_ERRORS * scenario.error_factor, scenario.latency_factor)
        baseline = Stream.simulate(rng, rate, HEALTHY_ERRORS, 1.0)
        for name, method in METHODS.items():
            results[name].append(method(canary, baseline))
    return results


def sprt_requests(p0: float, p1: float, alpha: float = 0.01, beta: float = 0.01) -> float:
    """Wald's expected sample size under H1 of the SPRT of Bernoulli(p0) against Bernoulli(p1)."""
    kl = p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))
    return ((1 - beta) * math.log((1 - beta) / alpha) + beta * math.log(beta / (1 - alpha))) / kl


def sprt_bound(scenario: Scenario) -> float | None:
    if scenario.healthy:
        return None
    if scenario.error_factor != 1.0:
        return sprt_requests(HEALTHY_ERRORS, HEALTHY_ERRORS * scenario.error_factor)
    return sprt_requests(slower_than(0.5, 1.0), slower_than(0.5, scenario.latency_factor))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _cell(outcomes: list[Outcome], healthy: bool) -> str:
    hits = [o.rolled_back_at for o in outcomes if o.rolled_back_at is not None]
    promoted = sum(o.promoted for o in outcomes) / len(outcomes)
    share = f"{100 * len(hits) / len(outcomes):.1f}%"
    if hits and not healthy:
        share += f" in {_duration(statistics.median(hits))}"
    return f"{share}, {100 * promoted:.0f}% promoted"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200, help="runs per regression scenario and traffic level")
    parser.add_argument("--healthy-runs", type=int, default=1000, help="runs per healthy scenario and traffic level")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for benchmarks/README.md)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    cells = [(rate, scenario) for rate in RATES for scenario in SCENARIOS]
    chunks = 4
    seeds = np.random.SeedSequence(args.seed).spawn(len(cells) * chunks)
    tasks = []
    for i, (rate, scenario) in enumerate(cells):
        runs = args.healthy_runs if scenario.healthy else args.runs
        share = [runs // chunks + (j < runs % chunks) for j in range(chunks)]
        tasks += [(rate, scenario, share[j], seeds[i * chunks + j]) for j in range(chunks)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        batches = list(pool.map(run_batch, tasks))

    rows = []
    for i, (rate, scenario) in enumerate(cells):
        merged: dict[str, list[Outcome]] = {name: [] for name in METHODS}
        for batch in batches[i * chunks : (i + 1) * chunks]:
            for name in METHODS:
                merged[name] += batch[name]
        bound = sprt_bound(scenario)
        sprt = "-" if bound is None else f"{bound:,.0f} req = {_duration(bound / rate)}"
        what = "false rollbacks" if scenario.healthy else "detected"
        runs = len(merged["ours"])
        rows.append(
            [f"{rate:g} req/s", f"{scenario.name} ({runs})", what]
            + [_cell(merged[name], scenario.healthy) for name in METHODS]
            + [sprt]
        )
    if args.markdown:
        print_markdown(rows)
    else:
        print_table(rows)
    print(f"\n{time.monotonic() - started:.0f}s, seed {args.seed}; setup: see the module docstring.")


HEADERS = ["traffic", "scenario (runs)", "measure", "ours", "Flagger-style", "Kayenta-style", "SPRT lower bound"]


def print_markdown(rows: list[list[str]]) -> None:
    print("| " + " | ".join(HEADERS) + " |")
    print("|" + "---|" * len(HEADERS))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def print_table(rows: list[list[str]]) -> None:
    headers = HEADERS
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain table
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        return
    table = Table(title="Decision quality: rolled back within 30 minutes (median time to rollback), promoted")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
