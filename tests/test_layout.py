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
