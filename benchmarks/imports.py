"""Import benchmark: what each `canary` command imports before it does anything, and what that costs.

    .venv/bin/python benchmarks/imports.py [--runs 5] [--top 12] [--markdown]

Runs each command in a fresh process, as a user would (the `canary` console script of this virtualenv),
`--runs` times with `PYTHONPROFILEIMPORTTIME=1` (what `python -X importtime` does) and `--runs` times without,
and prints medians: modules imported (lines of the import-time profile, interpreter start-up included), import
ms (sum of the profile's self times), process CPU ms (user + system of the child) and wall ms, and which heavy
modules the command loaded. `canary status` runs against a simulated API server on 127.0.0.1 holding one
guarded Deployment. `--top` prints the costliest imports (cumulative) of `import canary.cli`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

HEAVY = (
    "kubernetes", "kubernetes.dynamic", "httpx", "pydantic", "yaml", "apscheduler", "numpy", "matplotlib",
    "canary_testkit", "canary.kube.informer", "canary.controller.runtime", "canary.controller.reconciler",
)
"""Modules whose presence the table reports (third-party and the controller's own machinery)."""


@dataclass(frozen=True)
class Profile:
    """One `-X importtime` profile: (module, self µs, cumulative µs) per import, in the order printed."""

    rows: tuple[tuple[str, int, int], ...]

    @classmethod
    def parse(cls, stderr: str) -> Profile:
        rows = []
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cumulative, name = line[len("import time:"):].split("|", 2)
            rows.append((name.strip(), int(own), int(cumulative)))
        return cls(tuple(rows))

    @property
    def modules(self) -> set[str]:
        return {name for name, _, _ in self.rows}

    @property
    def total_us(self) -> int:
        return sum(own for _, own, _ in self.rows)

    def cumulative_us(self, module: str) -> int | None:
        return next((c for name, _, c in self.rows if name == module), None)


@dataclass(frozen=True)
class Run:
    profile: Profile | None
    cpu_ms: float
    wall_ms: float


def run(argv: list[str], env: dict[str, str], profile: bool) -> Run:
    """Run `argv` once; CPU is the child's user + system time (getrusage of reaped children)."""
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"} if profile else env
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(Profile.parse(done.stderr) if profile else None, cpu * 1000, wall * 1000)


def measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[list[Run], list[Run]]:
    profiled = [run(argv, env, profile=True) for _ in range(runs)]
    plain = [run(argv, env, profile=False) for _ in range(runs)]
    return profiled, plain


def guarded_cluster(tmp: Path) -> tuple[object, Path]:
    """A started simulated API server with one guarded Deployment, and an admin kubeconfig for it."""
    from canary_testkit.kube import KubeSim

    sim = KubeSim().start()
    labels = {"app": "checkout"}
    sim.create({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "default", "annotations": {"canary.mop.dev/enabled": "true"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": "shop/checkout:v1"}]}}},
    })
    return sim, sim.write_kubeconfig(tmp / "kubeconfig")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per command and mode (medians are printed)")
    parser.add_argument("--top", type=int, default=12, help="costliest imports of `import canary.cli` to list")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables (for benchmarks/README.md)")
    args = parser.parse_args()
    canary = str(Path(sys.executable).parent / "canary")
    console = Console(width=140)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPROFILEIMPORTTIME", "CANARY_DEBUG")}
    env["COLUMNS"] = "100"
    with tempfile.TemporaryDirectory() as tmp:
        sim, kubeconfig = guarded_cluster(Path(tmp))
        try:
            commands = {
                "import canary.cli": [sys.executable, "-c", "import canary.cli"],
                "canary --help": [canary, "--help"],
                "canary status --help": [canary, "status", "--help"],
                "canary status": [canary, "status", "--kubeconfig", str(kubeconfig)],
                "canary validate --help": [canary, "validate", "--help"],
            }
            results = {name: measure(argv, env, args.runs) for name, argv in commands.items()}
        finally:
            sim.stop()  # type: ignore[attr-defined]
    header = ("command", "modules imported", "import ms", "process CPU ms", "wall ms", "heavy modules loaded")
    rows = []
    for name, (profiled, plain) in results.items():
        profiles = [r.profile for r in profiled if r.profile is not None]
        loaded = [m for m in HEAVY if m in profiles[0].modules]
        rows.append((
            name,
            f"{statistics.median(len(p.rows) for p in profiles):.0f}",
            f"{statistics.median(p.total_us for p in profiles) / 1000:.0f}",
            f"{statistics.median(r.cpu_ms for r in plain):.0f}",
            f"{statistics.median(r.wall_ms for r in plain):.0f}",
            ", ".join(loaded) or "none",
        ))
    cli = next(p for p in (r.profile for r in results["import canary.cli"][0]) if p is not None)
    cumulative = statistics.median(
        p.cumulative_us("canary.cli") or 0 for p in (r.profile for r in results["import canary.cli"][0]) if p
    )
    costly = sorted(cli.rows, key=lambda row: -row[2])[: args.top]
    title = f"median of {args.runs} runs; import-time profile via PYTHONPROFILEIMPORTTIME=1, CPU and wall without it"
    if args.markdown:
        print(f"{title}\n")
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"\n`import canary.cli`: {cumulative / 1000:.0f} ms cumulative (median); costliest imports of one run:\n")
        print("| module | cumulative ms | self ms |\n|---|---|---|")
        for module, own, total in costly:
            print(f"| {module} | {total / 1000:.0f} | {own / 1000:.0f} |")
        return
    table = Table(title=title)
    for column in header:
        table.add_column(column, justify="left" if column in ("command", "heavy modules loaded") else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    top = Table(title=f"import canary.cli: {cumulative / 1000:.0f} ms cumulative (median); costliest imports")
    for column in ("module", "cumulative ms", "self ms"):
        top.add_column(column, justify="left" if column == "module" else "right")
    for module, own, total in costly:
        top.add_row(module, f"{total / 1000:.0f}", f"{own / 1000:.0f}")
    console.print(top)


if __name__ == "__main__":
    main()
