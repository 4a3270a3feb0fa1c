"""The `canary` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from canary import __version__
from canary.config.loader import load_files

app = typer.Typer(
    name="canary",
    help="mop-canary: canary analysis and automatic rollback guarded by Mimir and Tempo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"mop-canary {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """mop-canary command line."""


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="ServiceSLO YAML files.")]) -> None:
    """Check ServiceSLO files: print every error, exit 1 if there is any."""
    result = load_files(files)
    for error in result.errors:
        err_console.print(f"[red]error[/red] {error}", highlight=False, soft_wrap=True)
    for slo in result.slos:
        console.print(f"[green]ok[/green] ServiceSLO {slo.ref} (service {slo.spec.service})", highlight=False)
    if result.errors:
        raise typer.Exit(1)
    if not result.slos:
        err_console.print("[red]error[/red] no ServiceSLO documents found", highlight=False)
        raise typer.Exit(1)


def main() -> None:
    app()
