"""Decision quality: false rollbacks, detection and promotion of our judge, a Flagger-style rule and
Kayenta's Mann-Whitney classifier, on the same Monte-Carlo request streams.

    .venv/bin/python benchmarks/decision_quality.py [--runs 200] [--healthy-runs 1000] [--seed 7]

Setup (printed with the table):
- Streams in 10 s bins for 60 minutes, canary and baseline at the same request rate (0.5, 5, 50 req/s):
  Poisson request counts, binomial errors, multinomial latency buckets (OBI's default
  `http_server_request_duration_seconds` buckets), log-normal latency with sigma 0.77.
  Healthy: 0.2% errors, median 50 ms, p99 300 ms, for both. Regressions (canary only, from the start):
  errors x2, x5, x20 (0.4%, 1%, 4%), every latency x2 (p99 600 ms). "at limits": the canary sits
  exactly on all four limits at once (0.5% errors = the 99.5% objective = 2x a 0.25% baseline; p99
  500 ms = the objective = 1.5x a 333 ms baseline p99); "0.9x limits": 0.45% errors, p99 450 ms,
  same baseline.
- (a) ours: the controller's loop with `canary.cumulative.accumulate` and `canary.judge.judge`
  (availability 99.5%, latencyP99 500ms, comparison defaults, analysis defaults: every 30 s the last
  2 minutes are measured and their new share added to the evidence; rollback at the first look that
  fails (failedChecks 1), promotion after successfulChecks 10 promotable looks). The judge runs with
  `explain=False` (no confidence bounds or times to a decision in the reasons: same results, faster).
- (b) Flagger-style (Flagger docs' builtin checks and defaults: interval 1m, threshold 5,
  stepWeight 10, maxWeight 50): each minute, request-success-rate over the last 1m >= 99% and
  request-duration p99 over the last 1m <= 500 ms; a minute with no request fails ("no values");
  rollback when the failed-check counter (never reset within a revision) reaches 5, promotion after
  5 passed checks (weight 10 -> 50 -> promote).
- (c) Kayenta (its MannWhitneyClassifier as configured by NetflixACAJudge: confidence 98%, effect
  fraction 0.25): every 5 minutes, the per-minute error rates and p99s of the canary and the baseline
  since the start; a metric is High when the lower end of the 98% confidence interval of the
  Hodges-Lehmann shift (canary - baseline) exceeds 0.25 x |the shift's estimate|; a High metric puts
  the score (50) under the marginal threshold (75) and fails the canary; promotion at the end of the
  60 minutes. The interval is the distribution-free one from the sorted pairwise differences, with
  the normal approximation of the Mann-Whitney U quantile.
- Detection: the regressed canary is rolled back within the 60-minute horizon (before being promoted).
  Times count from the canary's start. The SPRT columns are Wald's average sample number (a mean, not
  a median) of the sequential probability ratio test with 1% false rollbacks and 5% misses between
  the regressed rate and (i) the SLO limit it breaches (0.5% errors; 1% of requests slower than
  500 ms), the bound that matters for an SLO test, and (ii) the healthy rate (the older column).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from canary.config.slo import ServiceSLOSpec
from canary.cumulative import Cumulative, accumulate
from canary.judge import judge
from canary.judge.model import Phase
from canary.samples import LatencyHistogram, Measurement, Pair, RedSample, Target, Workload

BIN = 10  # seconds per simulated bin
HORIZON = 60 * 60
BINS = HORIZON // BIN
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf)
Z99 = 2.3263478740408408
HEALTHY_ERRORS = 0.002
HEALTHY_P99 = 0.3
SIGMA = math.log(HEALTHY_P99 / 0.05) / Z99
RATES = (0.5, 5.0, 50.0)
ALPHA, BETA = 0.01, 0.05

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
ERROR_LIMIT = 1 - SLO.objectives.availability / 100
LATENCY_LIMIT = SLO.objectives.latency_p99 or 0.5


@dataclass(frozen=True)
class Scenario:
    name: str
    canary_errors: float = HEALTHY_ERRORS
    canary_p99: float = HEALTHY_P99
    baseline_errors: float = HEALTHY_ERRORS
    baseline_p99: float = HEALTHY_P99
    kind: str = "regression"
    """healthy | limits (meets every limit: any rollback is false) | regression."""

    @property
    def meets_limits(self) -> bool:
        return self.kind != "regression"


SCENARIOS = (
    Scenario("healthy", kind="healthy"),
    Scenario("at limits", 0.005, 0.5, 0.0025, 0.5 / 1.5, kind="limits"),
    Scenario("0.9x limits", 0.0045, 0.45, 0.0025, 0.5 / 1.5, kind="limits"),
    Scenario("errors x2", canary_errors=2 * HEALTHY_ERRORS),
    Scenario("errors x5", canary_errors=5 * HEALTHY_ERRORS),
    Scenario("errors x20", canary_errors=20 * HEALTHY_ERRORS),
    Scenario("p99 latency x2", canary_p99=2 * HEALTHY_P99),
)


def _slower(threshold: float, p99: float) -> float:
    """Share of requests slower than `threshold` for the log-normal latency with this p99."""
    median = p99 / math.exp(Z99 * SIGMA)
    return 0.5 * math.erfc(math.log(threshold / median) / (SIGMA * 2**0.5))


def bucket_probabilities(p99: float) -> np.ndarray:
    cdf = [1.0 if math.isinf(le) else 1.0 - _slower(le, p99) for le in BOUNDS]
    return np.diff(np.array([0.0, *cdf]))


@dataclass(frozen=True)
class Stream:
    """Cumulative counts per bin boundary: requests, errors, latency bucket counts (not cumulative in le)."""

    requests: np.ndarray
    errors: np.ndarray
    buckets: np.ndarray

    @classmethod
    def simulate(cls, rng: np.random.Generator, rate: float, error_rate: float, p99: float) -> Stream:
        requests = rng.poisson(rate * BIN, size=BINS)
        errors = rng.binomial(requests, error_rate)
        buckets = rng.multinomial(requests, bucket_probabilities(p99))
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
    promoted_at: float | None = None


EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def ours(canary: Stream, baseline: Stream) -> Outcome:
    """The controller's loop: every interval, the last window measured and added to the evidence."""
    analysis = SLO.analysis
    step, window = int(analysis.interval) // BIN, int(analysis.window) // BIN
    evidence: Cumulative | None = None
    fails = passes = 0
    for look in range(1, BINS // step + 1):
        end = look * step
        start = max(0, end - window)
        increment = Measurement(
            target=TARGET.model_copy(update={"window": float((end - start) * BIN)}),
            red=Pair[RedSample](canary=canary.red(start, end), baseline=baseline.red(start, end)),
        )
        evidence = accumulate(evidence, increment, EPOCH + timedelta(seconds=end * BIN))
        verdict = judge(evidence.measurement(increment), SLO, look=look, alpha=ALPHA, beta=BETA, explain=False)
        phase = verdict.phase
        if phase is Phase.FAIL:
            fails += 1
            if fails >= analysis.failed_checks:
                return Outcome(rolled_back_at=end * BIN)
            continue
        fails = 0
        if phase is Phase.PASS:
            passes += 1
            if passes >= analysis.successful_checks:
                return Outcome(promoted_at=end * BIN)
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
                return Outcome(promoted_at=end * BIN)
        else:
            failed += 1
            if failed >= threshold:
                return Outcome(rolled_back_at=end * BIN)
    return Outcome()


def _per_minute(stream: Stream, minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute error rates and p99s (minutes without requests have no point, as in Kayenta)."""
    rates, p99s = [], []
    for minute in range(minutes):
        sample = stream.red(minute * 6, (minute + 1) * 6)
        if sample.requests > 0:
            rates.append(sample.errors / sample.requests)
            p99s.append(sample.p99 or 0.0)
    return np.array(rates), np.array(p99s)


def kayenta_high(canary: np.ndarray, baseline: np.ndarray, confidence: float = 0.98, fraction: float = 0.25) -> bool:
    """Kayenta's MannWhitneyClassifier, direction Increase: High when the lower confidence limit of
    the Hodges-Lehmann shift exceeds `fraction` x |estimate|; identical samples Pass."""
    m, n = len(canary), len(baseline)
    if m == 0 or n == 0 or (m == n and np.array_equal(canary, baseline)):
        return False
    differences = np.sort(np.subtract.outer(canary, baseline).ravel())
    estimate = float(np.median(differences))
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    k = math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))
    if k < 1:
        return False  # too few points for a 98% interval: it is unbounded
    lower = float(differences[k - 1])
    return lower > fraction * abs(estimate)


def kayenta(canary: Stream, baseline: Stream) -> Outcome:
    interval = 5
    for judgement in range(1, HORIZON // 60 // interval + 1):
        minutes = judgement * interval
        (c_rates, c_p99), (b_rates, b_p99) = _per_minute(canary, minutes), _per_minute(baseline, minutes)
        if kayenta_high(c_rates, b_rates) or kayenta_high(c_p99, b_p99):
            return Outcome(rolled_back_at=minutes * 60.0)
    return Outcome(promoted_at=float(HORIZON))


METHODS: dict[str, Callable[[Stream, Stream], Outcome]] = {"ours": ours, "flagger": flagger, "kayenta": kayenta}


def run_batch(args: tuple[float, Scenario, int, np.random.SeedSequence]) -> dict[str, list[Outcome]]:
    rate, scenario, runs, seed = args
    rng = np.random.default_rng(seed)
    results: dict[str, list[Outcome]] = {name: [] for name in METHODS}
    for _ in range(runs):
        canary = Stream.simulate(rng, rate, scenario.canary_errors, scenario.canary_p99)
        baseline = Stream.simulate(rng, rate, scenario.baseline_errors, scenario.baseline_p99)
        for name, method in METHODS.items():
            results[name].append(method(canary, baseline))
    return results


def sprt_requests(p0: float, p1: float, alpha: float = ALPHA, beta: float = BETA) -> float:
    """Wald's average sample number under H1 of the SPRT of Bernoulli(p0) against Bernoulli(p1)."""
    kl = p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))
    return ((1 - beta) * math.log((1 - beta) / alpha) + beta * math.log(beta / (1 - alpha))) / kl


def sprt_bounds(scenario: Scenario) -> tuple[float, float] | None:
    """(vs the SLO limit, vs the healthy rate) in requests, for regressions that breach an objective."""
    if scenario.meets_limits:
        return None
    if scenario.canary_errors != HEALTHY_ERRORS:
        p1 = scenario.canary_errors
        if p1 <= ERROR_LIMIT:
            return None
        return sprt_requests(ERROR_LIMIT, p1), sprt_requests(HEALTHY_ERRORS, p1)
    p1 = _slower(LATENCY_LIMIT, scenario.canary_p99)
    return sprt_requests(0.01, p1), sprt_requests(_slower(LATENCY_LIMIT, HEALTHY_P99), p1)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def upper_95(hits: int, runs: int) -> float:
    """Clopper-Pearson 95% upper confidence bound of a rate from hits/runs (bisection on the binomial cdf)."""
    if hits >= runs:
        return 1.0
    lo, hi = hits / runs, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        cdf = sum(math.comb(runs, i) * mid**i * (1 - mid) ** (runs - i) for i in range(hits + 1))
        lo, hi = (mid, hi) if cdf > 0.05 else (lo, mid)
    return hi


@dataclass
class Cell:
    outcomes: list[Outcome] = field(default_factory=list)

    def describe(self, scenario: Scenario) -> str:
        runs = len(self.outcomes)
        rolled = [o.rolled_back_at for o in self.outcomes if o.rolled_back_at is not None]
        promoted = [o.promoted_at for o in self.outcomes if o.promoted_at is not None]
        share = f"{100 * len(rolled) / runs:.1f}%"
        if scenario.meets_limits:
            share += f" (95% UB {100 * upper_95(len(rolled), runs):.1f}%)"
        elif rolled:
            share += f" in {_duration(statistics.median(rolled))}"
        text = f"{share}, {100 * len(promoted) / runs:.0f}% promoted"
        if promoted and scenario.kind == "healthy":
            text += f" in {_duration(statistics.median(promoted))}"
            within = sum(t <= 30 * 60 for t in promoted) / runs
            text += f" ({100 * within:.0f}% within 30m)"
        return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200, help="runs per regression scenario and traffic level")
    parser.add_argument("--healthy-runs", type=int, default=1000, help="runs per scenario that meets every limit")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES), help="req/s, comma-separated")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for benchmarks/README.md)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    rates = [float(r) for r in args.rates.split(",")]
    cells = [(rate, scenario) for rate in rates for scenario in SCENARIOS]
    chunks = 8
    seeds = np.random.SeedSequence(args.seed).spawn(len(cells) * chunks)
    tasks = []
    for i, (rate, scenario) in enumerate(cells):
        runs = args.healthy_runs if scenario.meets_limits else args.runs
        share = [runs // chunks + (j < runs % chunks) for j in range(chunks)]
        tasks += [(rate, scenario, share[j], seeds[i * chunks + j]) for j in range(chunks)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        batches = list(pool.map(run_batch, tasks))

    rows = []
    for i, (rate, scenario) in enumerate(cells):
        merged: dict[str, Cell] = {name: Cell() for name in METHODS}
        for batch in batches[i * chunks : (i + 1) * chunks]:
            for name in METHODS:
                merged[name].outcomes += batch[name]
        bounds = sprt_bounds(scenario)
        sprt = ["-", "-"] if bounds is None else [f"{b:,.0f} req = {_duration(b / rate)}" for b in bounds]
        what = "false rollbacks" if scenario.meets_limits else "detected"
        runs = len(merged["ours"].outcomes)
        rows.append(
            [f"{rate:g} req/s", f"{scenario.name} ({runs})", what]
            + [merged[name].describe(scenario) for name in METHODS]
            + sprt
        )
    if args.markdown:
        print_markdown(rows)
    else:
        print_table(rows)
    print(f"\n{time.monotonic() - started:.0f}s, seed {args.seed}; setup: see the module docstring.")


HEADERS = [
    "traffic", "scenario (runs)", "measure", "ours", "Flagger-style", "Kayenta", "SPRT vs SLO limit", "SPRT vs healthy",
]


def print_markdown(rows: list[list[str]]) -> None:
    print("| " + " | ".join(HEADERS) + " |")
    print("|" + "---|" * len(HEADERS))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
    for row in [HEADERS, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
