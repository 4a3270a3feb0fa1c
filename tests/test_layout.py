"""The product package holds the product: the test kit and the demo stay out of `canary/`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_product_never_imports_the_test_kit_outside_the_demo_command() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "canary").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "canary_testkit" in line and path.name != "cli.py"
    ]
    assert not offenders, f"product modules import the test kit: {offenders}"


def test_the_cli_loads_without_numpy_or_matplotlib() -> None:
    code = (
        "import sys, canary.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'matplotlib'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_numpy_and_matplotlib_are_only_in_the_demo_extra() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert "numpy" not in runtime and "matplotlib" not in runtime
    assert any(dep.startswith("numpy") for dep in project["optional-dependencies"]["demo"])


def test_only_the_strategies_ask_which_mode_a_deployment_is_in() -> None:
    """Guard and canary mode each live in one module (canary/controller/strategies/); the rest of the
    controller asks the Snapshot's strategy, never the mode."""
    controller = ROOT / "canary" / "controller"
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(controller.rglob("*.py"))
        if "strategies" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(word in line for word in ("Mode.GUARD", "Mode.CANARY", "annotations.baseline", "ann.baseline"))
    ]
    assert not offenders, f"mode checks outside the strategies: {offenders}"


def test_the_status_annotation_has_one_writer() -> None:
    """Only the executor's StatusWriter writes `canary.mop.dev/status` (through edits.set_status)."""
    writers = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "canary").rglob("*.py")
        if "set_status(" in path.read_text() and path.name != "edits.py"
    )
    assert writers == ["canary/controller/executor.py"]
