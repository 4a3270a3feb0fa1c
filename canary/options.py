"""Command-line options shared by several `canary` commands (cheap to import: typer only)."""

from __future__ import annotations

from typing import Annotated

import typer

Kubeconfig = Annotated[str | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig file (default: in-cluster).")]
Context = Annotated[str | None, typer.Option(help="Kubeconfig context.")]
RequestTimeout = Annotated[
    float, typer.Option(min=0.1, help="Seconds each request to the API server may take before it is an error.")
]
