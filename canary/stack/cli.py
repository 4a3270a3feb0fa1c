"""`canary stack render|apply|diff` and `canary up`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table

from canary.errors import ExitCode
from canary.kube.client import KubeConfigError, load_api_client
from canary.stack.apply import Applier, ApplyError, ApplyObserver, ApplyReport, Change, Manifest, ObjectResult
from canary.stack.kustomize import KustomizeError, load_kustomization
from canary.stack.order import plan
from canary.stack.render import ENVIRONMENTS, PROFILES, RenderError, render, repo_dir, to_yaml

stack_app = typer.Typer(
    help="The Managed Observability Platform (OBI, Alloy, Tempo, Mimir, Loki, Grafana): render, diff, apply.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


class DryRun(StrEnum):
    NONE = "none"
    SERVER = "server"


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"unknown {what} {value!r}: expected one of {', '.join(allowed)}")
    return value


EnvOption = Annotated[
    str, typer.Option("--env", "-e", help=f"Environment: {', '.join(ENVIRONMENTS)}.",
                      callback=lambda v: _check(v, ENVIRONMENTS, "environment")),
]
ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", "-p", help="Sizing profile: small, medium, large (default: the environment's).",
                 callback=lambda v: v if v is None else _check(v, PROFILES, "profile")),
]
StackDirOption = Annotated[
    Path | None, typer.Option("--stack-dir", help="The stack directory (default: $CANARY_STACK_DIR or ./stack).")
]
KubeconfigOption = Annotated[str | None, typer.Option("--kubeconfig", help="Path to a kubeconfig file.")]
ContextOption = Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")]
DryRunOption = Annotated[
    DryRun, typer.Option("--dry-run", help="server: the API server validates every object and stores nothing.")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=1, help="Seconds each phase's workloads may take to become ready.")
]
WaitOption = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for each phase's workloads to be ready.")]
ManifestsOption = Annotated[
    Path | None, typer.Option("--manifests", help="The controller's Kustomize base (default: ./manifests).")
]


def _fail(message: str, code: ExitCode = ExitCode.BACKEND) -> typer.Exit:
    """Exit codes as `kubectl diff`: never 1 (which `diff` uses for "differs") for an error."""
    err_console.print(f"[red]error[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(int(code))


def _render(env: str, profile: str | None, stack_dir: Path | None) -> list[Manifest]:
    try:
        return render(env, profile, stack_dir)
    except RenderError as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None


class _ProgressObserver(ApplyObserver):
    """One line per applied object, a progress bar per workload while it becomes ready."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def phase_started(self, phase: str, objects: list[Manifest]) -> None:
        self.progress.console.print(f"[bold]{phase}[/bold] ({len(objects)} objects)")

    def applied(self, result: ObjectResult) -> None:
        style = {Change.CREATED: "green", Change.CONFIGURED: "yellow", Change.UNCHANGED: "dim"}[result.change]
        self.progress.console.print(f"  {result.ref} [{style}]{result.change.value}[/{style}]", highlight=False)

    def waiting(self, obj_ref: str, ready: bool, detail: str) -> None:
        task = self.tasks.get(obj_ref)
        if task is None:
            task = self.tasks[obj_ref] = self.progress.add_task(obj_ref, total=1)
        self.progress.update(task, completed=1 if ready else 0, description=f"{obj_ref}: {detail}")


def _summary(report: ApplyReport) -> None:
    counts = report.counts()
    table = Table(title="dry run (server): nothing was stored" if report.dry_run else "applied")
    for change in Change:
        table.add_column(change.value, justify="right")
    table.add_row(*(str(counts[c]) for c in Change))
    console.print(table)


def _apply(
    objects: list[Manifest], kubeconfig: str | None, context: str | None, dry_run: DryRun, timeout: float, wait: bool
) -> ApplyReport:
    try:
        api_client = load_api_client(kubeconfig, context)
    except KubeConfigError as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )
    try:
        with api_client, progress:
            applier = Applier(
                api_client, dry_run=dry_run is DryRun.SERVER, timeout_seconds=timeout,
                observer=_ProgressObserver(progress),
            )
            report = applier.apply(objects, wait=wait)
    except ApplyError as exc:
        raise _fail(str(exc)) from None
    _summary(report)
    return report


@stack_app.command("render")
def render_command(env: EnvOption, profile: ProfileOption = None, stack_dir: StackDirOption = None) -> None:
    """Print the stack's manifests as a YAML stream, in apply order (for `kubectl apply -f -`)."""
    ordered = [obj for _, members in plan(_render(env, profile, stack_dir)) for obj in members]
    print(to_yaml(ordered), end="")


@stack_app.command("apply")
def apply_command(
    env: EnvOption,
    profile: ProfileOption = None,
    stack_dir: StackDirOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    dry_run: DryRunOption = DryRun.NONE,
    timeout: TimeoutOption = 600.0,
    wait: WaitOption = True,
) -> None:
    """Server-side apply the stack in dependency order and wait for every workload to be ready."""
    _apply(_render(env, profile, stack_dir), kubeconfig, context, dry_run, timeout, wait)


@stack_app.command("diff")
def diff_command(
    env: EnvOption,
    profile: ProfileOption = None,
    stack_dir: StackDirOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Show what `apply` would change (server-side dry run).

    Exit codes as `kubectl diff`: 0 no difference, 1 something would change, 3 the cluster cannot be reached
    or refused an object, 4 bad input (environment, kubeconfig).
    """
    objects = _render(env, profile, stack_dir)
    try:
        api_client = load_api_client(kubeconfig, context)
    except KubeConfigError as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None
    try:
        with api_client:
            report = Applier(api_client, dry_run=True).apply(objects, wait=False)
    except ApplyError as exc:
        raise _fail(str(exc)) from None
    for result in report.results:
        if result.change is not Change.UNCHANGED:
            console.print(Syntax(result.diff, "diff", theme="ansi_dark", background_color="default"))
    counts = report.counts()
    console.print(
        f"{counts[Change.CREATED]} to create, {counts[Change.CONFIGURED]} to change, "
        f"{counts[Change.UNCHANGED]} unchanged",
        highlight=False,
    )
    if report.changed:
        raise typer.Exit(int(ExitCode.FAIL))


def up(
    env: EnvOption = "dev",
    profile: ProfileOption = None,
    stack_dir: StackDirOption = None,
    manifests: ManifestsOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    dry_run: DryRunOption = DryRun.NONE,
    timeout: TimeoutOption = 600.0,
    wait: WaitOption = True,
) -> None:
    """Apply the MOP stack, then the canary controller (the Kustomize base in manifests/)."""
    stack = _render(env, profile, stack_dir)
    try:
        controller = load_kustomization(manifests or repo_dir("manifests"))
    except KustomizeError as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None
    _apply(stack + controller, kubeconfig, context, dry_run, timeout, wait)
