"""Exit codes of every `canary` command and one-line errors instead of tracebacks.

`CanaryGroup` is the command group of the `canary` application: a usage error exits with
`ExitCode.BAD_INPUT` (not click's 2, which `canary analyze` uses for "inconclusive"), and an exception
that escapes a command becomes one line naming what failed (the kubeconfig, the API server, the URL)
and an exit code that says whose fault it is. `--debug` (or `CANARY_DEBUG=1`) shows the traceback.
"""

from __future__ import annotations

import os
import re
import sys
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer._click import Context  # typer vendors click; its exceptions are what typer's main handles
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperGroup

if TYPE_CHECKING:
    from kubernetes.client.exceptions import ApiException


class ExitCode(IntEnum):
    """Exit codes shared by all commands (README, "Exit codes")."""

    OK = 0
    """Success; `analyze`: pass; `stack diff`: no difference; `validate`: everything valid."""
    FAIL = 1
    """`analyze`: fail; `stack diff`: something would change; `validate`: problems found; a refused request."""
    INCONCLUSIVE = 2
    """`analyze` only: not enough data to decide."""
    BACKEND = 3
    """A backend (the Kubernetes API server, Mimir, Tempo) is unreachable or answered with an error."""
    BAD_INPUT = 4
    """Usage error or bad input: an unknown flag, a malformed URL, an unreadable file or kubeconfig, an unknown
    object."""
    INTERNAL = 5
    """An unexpected error (a bug): rerun with --debug and report the traceback."""


DEBUG_ENV = "CANARY_DEBUG"
err_console = Console(stderr=True)


def debug_enabled(ctx: Context | None = None) -> bool:
    if os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes"):
        return True
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.params.get("debug"))


def _connection_reason(exc: BaseException) -> str:
    """The innermost readable reason of a urllib3 connection failure (e.g. `Connection refused`)."""
    reason: BaseException | None = getattr(exc, "reason", None) or exc
    text = re.sub(r"^\w*ConnectionPool\([^)]*\): ", "", str(reason))  # the pool is named by the caller
    if "] " in text:  # "<...NewConnection...>: Failed to establish a new connection: [Errno 111] Connection refused"
        text = text.rsplit("] ", 1)[1]
    text = re.sub(r"timeout=([0-9.]+)", lambda m: f"timeout={float(m.group(1)):.2g}s", text)
    return text.strip().strip("'\"") or type(reason).__name__


def _api_message(exc: ApiException) -> str:
    import json

    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        body = {}
    detail = body.get("message") if isinstance(body, dict) else None
    return f"{exc.status} {exc.reason}" + (f": {detail}" if detail else "")


def describe(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and one line for an exception that escaped a command.

    An exception of a library can only exist once its module is imported, so each library is looked at only
    when loaded: a command that never touched Kubernetes or httpx does not import them to describe its error."""
    if "canary.kube.client" in sys.modules:
        from canary.kube.client import KubeConfigError

        if isinstance(exc, KubeConfigError):
            return ExitCode.BAD_INPUT, str(exc)
    if "kubernetes.client.exceptions" in sys.modules:
        from kubernetes.client.exceptions import ApiException

        if isinstance(exc, ApiException):
            if exc.status == 0 or exc.status is None:
                return ExitCode.BACKEND, f"Kubernetes API server: {exc.reason}"
            return ExitCode.BACKEND, f"Kubernetes API server answered {_api_message(exc)}"
    if "urllib3.exceptions" in sys.modules:
        import urllib3.exceptions

        if isinstance(exc, urllib3.exceptions.MaxRetryError):
            pool = getattr(exc, "pool", None)
            where = f"{pool.scheme}://{pool.host}:{pool.port}" if pool is not None else "the API server"
            return ExitCode.BACKEND, f"cannot reach the Kubernetes API server at {where}: {_connection_reason(exc)}"
        if isinstance(exc, urllib3.exceptions.HTTPError):
            return ExitCode.BACKEND, f"Kubernetes API server: {_connection_reason(exc)}"
    if "httpx" in sys.modules:
        import httpx

        if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
            return ExitCode.BAD_INPUT, f"invalid URL: {exc}"
        if isinstance(exc, httpx.HTTPError):
            request = getattr(exc, "_request", None)
            where = f" {request.url}" if request is not None else ""
            return ExitCode.BACKEND, f"cannot reach{where}: {exc or type(exc).__name__}"
    if isinstance(exc, OSError):
        name = f" {exc.filename}" if exc.filename else ""
        return ExitCode.BAD_INPUT, f"cannot read{name}: {exc.strerror or exc}"
    return ExitCode.INTERNAL, f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print `error MESSAGE` on stderr; raise the returned exception to exit with `code`."""
    err_console.print(f"[red]error[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(int(code))


class CanaryGroup(TyperGroup):
    """The root command group: usage errors exit 4, escaped exceptions become one line (see module doc)."""

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as exc:
            exc.exit_code = ExitCode.BAD_INPUT
            raise

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            exc.exit_code = ExitCode.BAD_INPUT
            raise
        except (typer.Exit, typer.Abort, ClickException, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if debug_enabled(ctx):
                raise
            code, message = describe(exc)
            raise fail(message, code) from None
