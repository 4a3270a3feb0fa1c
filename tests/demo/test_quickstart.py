"""The README's Quickstart starts with `./dev demo`: that must run `canary demo`, with the flags the
README names for it."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from canary.cli import app

ROOT = Path(__file__).resolve().parents[2]


def quickstart() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Quickstart\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README.md has a '## Quickstart' section"
    return match.group(1)


def test_the_quickstarts_first_command_is_the_demo() -> None:
    block = re.search(r"```sh\n(.*?)```", quickstart(), re.S)
    assert block, "the Quickstart has a sh block"
    first = block.group(1).strip().splitlines()[0].split("#")[0].split()
    assert first == ["./dev", "demo"]


def test_dev_demo_installs_what_it_needs_then_runs_canary_demo() -> None:
    dev = (ROOT / "dev").read_text()
    case = re.search(r"^\s*demo\)\n(.*?);;", dev, re.S | re.M)
    assert case, "the dev script has a demo) case"
    steps = [line.strip() for line in case.group(1).strip().splitlines()]
    assert steps == ["ensure_venv demo", "ensure_prometheus", 'exec "$VENV/bin/canary" demo "$@"']


def test_every_demo_flag_the_readme_names_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    named = {flag for line in readme.splitlines() if "demo" in line for flag in re.findall(r"--[a-z][a-z-]+", line)}
    help_text = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).stdout
    missing = sorted(flag for flag in named if flag not in help_text)
    assert not missing, f"README names demo flags that `canary demo` does not have: {missing}"
