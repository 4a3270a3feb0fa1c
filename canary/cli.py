"""The `canary` command line.

Commands are imported when they run, not when `canary` starts: `canary --help` lists them from `LAZY_COMMANDS`
(name, where the command lives, and the first paragraph of its help), and `canary status` imports what it
needs and nothing of the controller's runtime. `benchmarks/imports.py` measures it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from rich.console import Console
from typer._click import Command, HelpFormatter
from typer._click import Context as ClickContext
from typer.core import TyperCommand

from canary import __version__
from canary.errors import CanaryGroup, ExitCode, fail
from canary.options import Context, Kubeconfig, RequestTimeout

if TYPE_CHECKING:
    from canary.config.slo import ServiceSLO
    from canary.judge.model import Phase


@dataclass(frozen=True)
class LazyCommand:
    """A command (or a group of them) defined in another module, imported only when it is run or its own
    `--help` is asked for. `help` is the first paragraph of its help, which `canary --help` lists."""

    name: str
    module: str
    attribute: str
    help: str
    settings: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of `typer.Typer.command` (a function command only)."""

    def load(self) -> Command:
        target = getattr(importlib.import_module(self.module), self.attribute)
        holder = typer.Typer()
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=self.name)
        else:
            holder.command(self.name, **self.settings)(target)
        return typer.main.get_group(holder).commands[self.name]


class _Listed(TyperCommand):
    """What `canary --help` shows for a command that is not imported."""

    def __init__(self, lazy: LazyCommand) -> None:
        super().__init__(lazy.name, help=lazy.help)
        self.lazy = lazy


class CanaryApp(CanaryGroup):
    """The root group: its own commands plus `LAZY_COMMANDS`, imported on first use."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for lazy in LAZY_COMMANDS:
            self.commands[lazy.name] = _Listed(lazy)
        self._listing = False

    def format_help(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        self._listing = True  # the command list needs names and help only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: ClickContext, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, _Listed) and not self._listing:
            command = self.commands[cmd_name] = command.lazy.load()
        return command


app = typer.Typer(
    name="canary",
    help="mop-canary: canary analysis and automatic rollback guarded by Mimir and Tempo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=CanaryApp,
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
    debug: Annotated[
        bool, typer.Option("--debug", envvar="CANARY_DEBUG", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    """mop-canary command line.

    Exit codes: 0 ok/pass, 1 fail/differs/invalid, 2 inconclusive (analyze), 3 backend error
    (API server, Mimir, Tempo), 4 usage or bad input, 5 internal error.
    """


YAML_SUFFIXES = (".yaml", ".yml")


def _yaml_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()))
        elif path.exists():
            out.append(path)
        else:
            raise fail(f"{path}: no such file or directory", ExitCode.BAD_INPUT)
    return out


def _kustomize_objects(directory: Path) -> list[dict[str, object]]:
    """The objects `kubectl kustomize DIR` builds (kubectl or kustomize when installed, else the plain
    resource-list reader that `canary up` uses)."""
    import shutil
    import subprocess

    import yaml

    from canary.stack.kustomize import load_kustomization

    if not directory.is_dir():
        raise fail(f"-k {directory}: not a directory", ExitCode.BAD_INPUT)
    for tool in (["kubectl", "kustomize"], ["kustomize", "build"]):
        if shutil.which(tool[0]):
            done = subprocess.run([*tool, str(directory)], capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0:
                raise fail(f"-k {directory}: {' '.join(tool)} failed: {done.stderr.strip()}", ExitCode.BAD_INPUT)
            return [d for d in yaml.safe_load_all(done.stdout) if isinstance(d, dict)]
    return load_kustomization(directory)


@app.command()
def validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(metavar="FILE|DIR",
                       help="YAML files or directories: ServiceSLOs, ConfigMaps holding them, annotated Deployments."),
    ] = None,
    kustomize: Annotated[
        list[Path] | None, typer.Option("--kustomize", "-k", help="A Kustomize directory (repeatable).")
    ] = None,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Also validate what is live: SLO ConfigMaps and guarded Deployments.")
    ] = False,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Namespace of objects that name none; with --cluster, only this one."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    request_timeout: RequestTimeout = 30.0,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Check ServiceSLOs, their ConfigMaps and annotated Deployments as the controller will read them.

    Refuses what the controller would refuse, a fraction-like availability (0.995 for 99.5) and a unit-less
    latencyP99; warns about unit-less intervals and windows, SLO ConfigMaps without their label, and SLOs or
    baselines not found. Exit codes: 0 valid, 1 errors (or warnings with --strict), 3 cluster unreachable,
    4 bad input (no file, nothing to validate).
    """
    from canary.stack.kustomize import KustomizeError
    from canary.validate import CLUSTER, Validation

    if not files and not kustomize and not cluster:
        raise fail("nothing to validate: give FILES, -k DIR or --cluster", ExitCode.BAD_INPUT)
    check = Validation(default_namespace=namespace or "default", cluster_read=cluster)
    for path in _yaml_files(files or []):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"{path}: cannot read: {exc}", ExitCode.BAD_INPUT) from None
        check.add_text(text, str(path))
    for directory in kustomize or []:
        try:
            objects = _kustomize_objects(directory)
        except KustomizeError as exc:
            raise fail(str(exc), ExitCode.BAD_INPUT) from None
        for obj in objects:
            check.add_object(obj, f"{directory} (kustomize)")
    if cluster:
        from canary.validate import read_cluster

        for obj in read_cluster(kubeconfig, context, namespace, request_timeout):
            check.add_object(obj, CLUSTER)
    check.finish()
    for line in check.ok:
        console.print(f"[green]ok[/green] {line}", highlight=False, soft_wrap=True)
    for warning in check.warnings:
        err_console.print(f"[yellow]warning[/yellow] {warning}", highlight=False, soft_wrap=True)
    for error in check.errors:
        err_console.print(f"[red]error[/red] {error}", highlight=False, soft_wrap=True)
    if not check.found:
        raise fail("no ServiceSLO, SLO ConfigMap or annotated Deployment found", ExitCode.BAD_INPUT)
    if check.errors or (strict and check.warnings):
        raise typer.Exit(ExitCode.FAIL)


class OutputFormat(StrEnum):
    TABLE = "table"
    TEXT = "text"
    JSON = "json"


SINCE_LOOKBACK_SECONDS = 6 * 3600.0
"""`canary analyze` without --since: how far back the canary ReplicaSet's first requests are looked for."""
EXIT_BAD_INPUT = ExitCode.BAD_INPUT


def _exit_code(phase: Phase) -> ExitCode:
    """`canary analyze`'s exit code for a verdict."""
    from canary.judge.model import Phase

    return {
        Phase.PASS: ExitCode.OK, Phase.FAIL: ExitCode.FAIL, Phase.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
        Phase.ERROR: ExitCode.BACKEND,
    }[phase]


def _url(option: str, value: str | None) -> str | None:
    """A backend URL given on the command line: http(s) with a host, or a one-line bad-input error."""
    import httpx

    if value is None:
        return None
    try:
        parsed = httpx.URL(value)
    except (httpx.InvalidURL, TypeError) as exc:
        raise _bad_input(f"{option}: {value!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _bad_input(f"{option}: {value!r} is not an http(s) URL with a host (e.g. http://mimir:8080/prometheus)")
    return value


def _bad_input(message: str) -> typer.Exit:
    err_console.print(f"[red]error[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _pick_slo(path: Path, name: str | None) -> ServiceSLO:
    from canary.config.loader import load_files

    result = load_files([path])
    for error in result.errors:
        err_console.print(f"[red]error[/red] {error}", highlight=False, soft_wrap=True)
    if result.errors:
        raise typer.Exit(EXIT_BAD_INPUT)
    candidates = [s for s in result.slos if name is None or s.metadata.name == name]
    if len(candidates) != 1:
        names = ", ".join(s.metadata.name for s in result.slos) or "none"
        wanted = f"named {name!r}" if name else "(use --slo-name to pick one)"
        raise _bad_input(f"{path}: expected exactly one ServiceSLO {wanted}; found: {names}")
    return candidates[0]


@app.command()
def analyze(
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the canary.")],
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="The canary Deployment.")],
    slo_file: Annotated[Path, typer.Option("--slo", help="ServiceSLO YAML file.")],
    mimir_url: Annotated[
        str, typer.Option("--mimir-url", envvar="CANARY_MIMIR_URL", help="Mimir/Prometheus URL incl. /prometheus.")
    ],
    baseline: Annotated[
        str | None,
        typer.Option(help="Baseline Deployment (canary mode). Absent: the newest ReplicaSet vs the older ones."),
    ] = None,
    slo_name: Annotated[str | None, typer.Option(help="Which ServiceSLO of the file, when it holds several.")] = None,
    tempo_url: Annotated[str | None, typer.Option(envvar="CANARY_TEMPO_URL", help="Tempo URL.")] = None,
    loki_url: Annotated[
        str | None, typer.Option(envvar="CANARY_LOKI_URL", help="Loki URL: the canary's log lines as evidence.")
    ] = None,
    evidence: Annotated[
        bool | None,
        typer.Option(
            "--evidence/--no-evidence",
            help="Root-cause evidence from Tempo and Loki (routes, failing downstream call, traces, log lines). "
            "Default: on a failing verdict.",
        ),
    ] = None,
    tenant: Annotated[str | None, typer.Option(envvar="CANARY_TENANT", help="X-Scope-OrgID tenant.")] = None,
    bearer_token: Annotated[
        str | None, typer.Option(envvar="CANARY_BEARER_TOKEN", help="Bearer token for Mimir, Tempo and Loki.")
    ] = None,
    insecure_skip_verify: Annotated[bool, typer.Option(help="Do not verify TLS certificates.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per backend query.")] = 10.0,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", "--window",
            help="Evidence to test, e.g. 30m: the last DURATION (default: since the canary ReplicaSet first served, "
            "up to 6h). --window is the former name.",
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Test a canary against its SLO and baseline on all its evidence at once, and print every check,
    its estimate with anytime-valid bounds, and the verdict.

    The same cumulative tests as the controller, at one look over `--since`. Exit codes: 0 pass
    (promotable), 1 fail, 2 inconclusive, 3 backend error, 4 bad input.
    """
    from canary.analysis import AnalysisRequest, Analyzer
    from canary.config.units import format_duration, parse_duration
    from canary.evidence.collect import EvidenceCollector, latency_breached
    from canary.evidence.text import evidence_lines
    from canary.judge.model import Phase
    from canary.report import verdict_table
    from canary.samples import Target, Workload
    from canary.sources.loki import LokiSettings, LokiSource
    from canary.sources.mimir import MimirSettings, MimirSource
    from canary.sources.tempo import TempoSettings, TempoSource

    slo = _pick_slo(slo_file, slo_name)
    spec = slo.spec
    mimir_url = _url("--mimir-url", mimir_url) or mimir_url
    tempo_url = _url("--tempo-url", tempo_url)
    loki_url = _url("--loki-url", loki_url)
    try:
        seconds = parse_duration(since) if since else None
    except ValueError as exc:
        raise _bad_input(f"--since: {exc}") from None
    verify = not insecure_skip_verify
    mimir = MimirSource(
        MimirSettings(
            url=mimir_url, tenant=tenant, bearer_token=bearer_token, verify_tls=verify,
            timeout_seconds=timeout, metrics=spec.metrics,
        )
    )
    tempo = (
        TempoSource(
            TempoSettings(url=tempo_url, tenant=tenant, bearer_token=bearer_token, verify_tls=verify,
                          timeout_seconds=timeout)
        )
        if tempo_url
        else None
    )
    end = datetime.now(UTC)
    lookback = seconds or SINCE_LOOKBACK_SECONDS
    seen, error = mimir.replicaset_times(namespace, deployment, end, lookback)
    if error is not None:
        err_console.print(f"[magenta]backend error[/magenta] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.BACKEND)
    present = sorted(
        (rs for rs, (_, last) in seen.items() if last >= end.timestamp() - lookback),
        key=lambda rs: (seen[rs][0], seen[rs][1], rs),
    )
    if not present:
        err_console.print(
            f"no series for Deployment {namespace}/{deployment} in the last {format_duration(lookback)}: inconclusive",
            highlight=False,
        )
        raise typer.Exit(ExitCode.INCONCLUSIVE)
    *older, newest = present
    if seconds is None:  # since the canary ReplicaSet first served, to 1/120 of its age (a second look)
        age = end.timestamp() - seen[newest][0] + 2 * lookback / 120
        finer, error = mimir.replicaset_times(namespace, deployment, end, min(age, lookback))
        first = finer.get(newest, seen[newest])[0] if error is None else seen[newest][0]
        seconds = max(1.0, end.timestamp() - first + min(age, lookback) / 120)
    if baseline:
        target = Target(
            key=f"{namespace}/{deployment}", service=spec.service, window=seconds,
            canary=Workload(namespace=namespace, deployment=deployment),
            baseline=(Workload(namespace=namespace, deployment=baseline),),
        )
    else:
        target = Target(
            key=f"{namespace}/{deployment}", service=spec.service, window=seconds,
            canary=Workload(namespace=namespace, deployment=deployment, replicaset=newest),
            baseline=tuple(Workload(namespace=namespace, deployment=deployment, replicaset=rs) for rs in older),
        )
    mimir.detect()
    outcome = Analyzer(mimir, tempo).analyze([AnalysisRequest(target=target, slo=spec)], end)[target.key]
    verdict = outcome.verdict
    loki = (
        LokiSource(LokiSettings(url=loki_url, tenant=tenant, bearer_token=bearer_token, verify_tls=verify,
                                timeout_seconds=timeout))
        if loki_url
        else None
    )
    found = None
    if (evidence if evidence is not None else verdict.phase is Phase.FAIL) and (tempo or loki):
        collector = EvidenceCollector(tempo, loki, deadline_seconds=timeout * 6, mimir=mimir)
        found, _ = collector.collect(target, end, latency_breached(verdict))
    if output is OutputFormat.JSON:
        document = outcome.model_dump(mode="json")
        document["evidence"] = found.model_dump(mode="json") if found is not None else None
        console.print_json(json.dumps(document))
    else:
        title = f"{namespace}/{deployment}: canary {target.canary} vs baseline " + (
            ", ".join(str(b) for b in target.baseline) or "none"
        )
        console.print(verdict_table(verdict, title))
        if found is not None:
            for line in evidence_lines(found):
                console.print(line, highlight=False, markup=False, soft_wrap=True)
        else:
            for trace_id in outcome.measurement.example_traces:
                console.print(f"  failing trace: {trace_id}", highlight=False)
    raise typer.Exit(_exit_code(verdict.phase))


def _demo_missing() -> None:
    """Run the whole loop on this machine (needs the `mop-canary\\[demo]` extra)."""  # \[: not rich markup
    err_console.print(
        "[red]error[/red] canary demo needs the demo extra: pip install 'mop-canary\\[demo]' (or ./dev demo)",
        highlight=False,
    )
    raise typer.Exit(ExitCode.BAD_INPUT)


def _demo() -> LazyCommand:
    """`canary demo` comes with the optional `mop-canary[demo]` extra (the test kit, numpy, matplotlib)."""
    if importlib.util.find_spec("canary_testkit") is not None:
        return LazyCommand(
            "demo", "canary_testkit.demo.command", "demo",
            "Run the real controller against a simulated cluster on 127.0.0.1: a healthy v2 is promoted, a faulty\n"
            "v3 is rolled back, and v3 re-applied is frozen. Under two minutes at the default speed.",
        )
    return LazyCommand(
        "demo", __name__, "_demo_missing",
        "Run the whole loop on this machine (needs the `mop-canary\\[demo]` extra).",
        settings={"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}},
    )


LAZY_COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand("up", "canary.stack.cli", "up",
                "Apply the MOP stack, then the canary controller (the Kustomize base in manifests/)."),
    _demo(),
    LazyCommand("run", "canary.controller.commands", "run",
                "Watch annotated Deployments, analyse their canaries, roll back or promote. Runs until stopped."),
    LazyCommand("status", "canary.controller.commands", "status",
                "Guarded Deployments: phase, checks, last verdict and why."),
    LazyCommand("abort", "canary.controller.commands", "abort",
                "Roll the canary back now, in any phase with a canary (Waiting, Analysing, Promoting, Frozen)."),
    LazyCommand("promote", "canary.controller.commands", "promote",
                "Promote the canary now, skipping the rest of its analysis (not a rejected revision: see retry)."),
    LazyCommand("retry", "canary.controller.commands", "retry",
                "Analyse the rejected revision the Deployment holds again, on purpose."),
    LazyCommand("notify", "canary.notify.cli", "notify_app", "Notifications to Slack and JSON webhooks."),
    LazyCommand("stack", "canary.stack.cli", "stack_app",
                "The Managed Observability Platform (OBI, Alloy, Tempo, Mimir, Loki, Grafana): render, diff, apply."),
    LazyCommand("rbac", "canary.rbac_cli", "rbac_app", "RBAC the controller needs in application namespaces."),
)
"""The commands `canary --help` lists after `validate` and `analyze`, in that order; `tests/cli/test_imports.py`
checks each `help` against the command's own."""


def main() -> None:
    app()
