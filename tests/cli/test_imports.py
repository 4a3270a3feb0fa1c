"""What a `canary` command imports before it does its work: `canary --help` answers without Kubernetes,
pydantic, the controller or the demo's numpy and matplotlib, and `canary status` without the controller's
runtime (informers, leader election, scheduler). Each command runs in a fresh interpreter, as a user runs it,
and the modules it loaded are read from `-X importtime`. Timing is measured by `benchmarks/imports.py`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.cli import LAZY_COMMANDS, app
from canary_testkit.kube import KubeSim

RUN_CANARY = "import sys; sys.argv[0] = 'canary'; from canary.cli import main; main()"
CONTROLLER_RUNTIME = (
    "canary.controller.runtime", "canary.controller.reconciler", "canary.controller.app", "canary.kube.informer",
    "canary.kube.leader", "apscheduler", "numpy", "matplotlib", "canary_testkit",
)


def canary(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `canary ARGS` in a fresh interpreter; the result and the modules it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", RUN_CANARY, *args],
        capture_output=True, text=True, timeout=60, check=False, env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, modules


def test_help_lists_every_command_without_importing_them() -> None:
    done, modules = canary("--help")
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("validate", "analyze", *(lazy.name for lazy in LAZY_COMMANDS)):
        assert f" {name} " in done.stdout, f"`canary --help` lists {name}"
    assert "Guarded Deployments: phase, checks, last verdict and why." in done.stdout
    heavy = {"kubernetes", "kubernetes.dynamic", "httpx", "pydantic", "yaml", *CONTROLLER_RUNTIME}
    assert not heavy & modules, f"`canary --help` imported {sorted(heavy & modules)}"
    assert not {m for m in modules if m.startswith(("canary.controller", "canary.kube", "canary.stack"))}


def test_status_help_imports_no_kubernetes_client() -> None:
    done, modules = canary("status", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--watch" in done.stdout and "--kubeconfig" in done.stdout
    assert not {"kubernetes", "kubernetes.dynamic", *CONTROLLER_RUNTIME} & modules


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[str]:
    with KubeSim(rollout_step_seconds=None) as sim:
        labels = {"app": "checkout"}
        sim.create({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": "default",
                         "annotations": {"canary.mop.dev/enabled": "true"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "shop/checkout:v1"}]}}},
        })
        yield str(sim.write_kubeconfig(tmp_path / "kubeconfig"))


def test_status_reads_the_cluster_without_the_controller_runtime(kubeconfig: str) -> None:
    done, modules = canary("status", "--kubeconfig", kubeconfig)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "checkout" in done.stdout, done.stdout
    assert "canary.controller.statusview" in modules, "the status view did run"
    loaded = set(CONTROLLER_RUNTIME) & modules
    assert not loaded, f"`canary status` imported the controller runtime: {sorted(loaded)}"


def test_listed_help_is_each_command_s_own() -> None:
    """`canary --help` shows `LazyCommand.help` without importing the command: it must be the command's own
    first paragraph, in the order the commands are registered."""
    for lazy in LAZY_COMMANDS:
        command = lazy.load()
        first = (command.help or "").split("\n\n")[0].strip()
        assert lazy.help == first, f"{lazy.name}: the listed help differs from the command's ({first!r})"
    import typer.main

    group = typer.main.get_command(app)
    assert group.list_commands(None) == [  # type: ignore[arg-type]
        "validate", "analyze", "up", "demo", "run", "status", "abort", "promote", "retry", "notify", "stack", "rbac",
    ]


def test_demo_without_the_demo_extra_says_how_to_get_it() -> None:
    """A plain `pip install mop-canary` has no test kit: `canary --help` still lists `demo`, and running it
    names the extra to install (the test kit is hidden from the import system for this run)."""
    hide = "import sys; sys.modules['canary_testkit'] = None; "
    listed = subprocess.run([sys.executable, "-c", hide + RUN_CANARY, "--help"], capture_output=True, text=True,
                            timeout=60, check=False, env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "needs the `mop-canary[demo]` extra" in listed.stdout
    done = subprocess.run([sys.executable, "-c", hide + RUN_CANARY, "demo", "--speed", "2"], capture_output=True,
                          text=True, timeout=60, check=False, env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 4, done.stderr[-2000:]
    assert "pip install 'mop-canary[demo]'" in done.stderr
