"""`canary rbac grant-secrets`: let the controller read one namespace's webhook Secrets, and nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from canary.config.loader import load_files
from canary.errors import ExitCode
from canary.kube.client import KubeConfigError, load_api_client
from canary.rbac import CONTROLLER_SERVICE_ACCOUNT, secret_grant, webhook_secrets
from canary.stack.apply import Applier, ApplyError

rbac_app = typer.Typer(help="RBAC the controller needs in application namespaces.", no_args_is_help=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
EXIT_BAD_INPUT = 4


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    err_console.print(f"[red]error[/red] {message}")
    return typer.Exit(code)


def _service_account(value: str) -> tuple[str, str]:
    namespace, _, name = value.partition("/")
    if not namespace or not name or "/" in name:
        raise _fail(f"--service-account {value!r}: expected NAMESPACE/NAME")
    return namespace, name


@rbac_app.command("grant-secrets")
def grant_secrets(
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="The application namespace.")],
    secret: Annotated[list[str] | None, typer.Option("--secret", help="A Secret name (repeatable).")] = None,
    slo: Annotated[
        list[Path] | None, typer.Option("--slo", help="ServiceSLO file(s): grant the Secrets they name.")
    ] = None,
    service_account: Annotated[
        str, typer.Option(help="The controller's ServiceAccount, NAMESPACE/NAME.")
    ] = "/".join(CONTROLLER_SERVICE_ACCOUNT),
    apply: Annotated[bool, typer.Option("--apply", help="Apply (server-side) instead of printing.")] = False,
    kubeconfig: Annotated[str | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig file (with --apply).")] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context (with --apply).")] = None,
) -> None:
    """Print (or --apply) a Role granting `get` on exactly the named webhook Secrets of one namespace,
    and the RoleBinding giving it to the controller: no cluster-wide access to Secrets."""
    names = list(secret or [])
    if slo:
        loaded = load_files(slo)
        if loaded.errors:
            for error in loaded.errors:
                err_console.print(f"[red]error[/red] {error}")
            raise typer.Exit(EXIT_BAD_INPUT)
        names += webhook_secrets(loaded.slos, namespace)
    try:
        objects = secret_grant(namespace, names, _service_account(service_account))
    except ValueError as err:
        raise _fail(str(err)) from None
    if not apply:
        typer.echo(yaml.safe_dump_all(objects, sort_keys=False), nl=False)
        return
    try:
        api = load_api_client(kubeconfig, context)
    except KubeConfigError as err:
        raise _fail(str(err)) from None
    with api:
        try:
            for obj in objects:
                result = Applier(api, field_manager="canary").apply_one(obj)
                typer.echo(f"{result.ref} {result.change.value}")
        except ApplyError as err:
            raise _fail(str(err), ExitCode.BACKEND) from None
