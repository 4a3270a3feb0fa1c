"""`canary run`, `canary status`, `canary abort` and `canary promote`."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from kubernetes.client import AppsV1Api
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from canary.controller.annotations import ABORT, PROMOTE, SKIP, is_enabled
from canary.controller.observe import meta
from canary.controller.status import read_status
from canary.kube.client import load_api_client
from canary.kube.deployments import revision

console = Console()
err_console = Console(stderr=True)
log = logging.getLogger(__name__)

Kubeconfig = Annotated[str | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig file (default: in-cluster).")]
Context = Annotated[str | None, typer.Option(help="Kubeconfig context.")]


def run(
    mimir_url: Annotated[str | None, typer.Option(help="Mimir URL incl. /prometheus [env CANARY_MIMIR_URL].")] = None,
    tempo_url: Annotated[str | None, typer.Option(help="Tempo URL [env CANARY_TEMPO_URL].")] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n", help="Watch only these.")] = None,
    leader_elect: Annotated[bool | None, typer.Option("--leader-elect", help="Run with a Lease.")] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings (same names as the flags).")] = None,
    tenant: Annotated[str | None, typer.Option(help="X-Scope-OrgID for Mimir and Tempo.")] = None,
    port: Annotated[int | None, typer.Option(help="Port of /metrics, /healthz, /readyz (default 8080).")] = None,
    grafana_url: Annotated[str | None, typer.Option(help="Grafana base URL for links in messages.")] = None,
    cluster_name: Annotated[str | None, typer.Option(help="Cluster name shown in messages.")] = None,
    log_format: Annotated[str | None, typer.Option(help="json (default) or text.")] = None,
) -> None:
    """Watch annotated Deployments, analyse their canaries, roll back or promote. Runs until stopped."""
    from canary import logs
    from canary.controller.app import ControllerApp
    from canary.controller.settings import load_settings

    flags = {
        "mimir_url": mimir_url, "tempo_url": tempo_url, "namespaces": namespace or None,
        "leader_elect": leader_elect, "kubeconfig": kubeconfig, "context": context, "tenant": tenant,
        "listen_port": port, "grafana_url": grafana_url, "cluster_name": cluster_name, "log_format": log_format,
    }
    try:
        settings = load_settings(config, flags)
    except (ValidationError, ValueError, OSError) as exc:
        err_console.print(f"[red]error[/red] invalid settings: {exc}", highlight=False)
        raise typer.Exit(2) from None
    logs.configure(settings.log_format)
    app = ControllerApp(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    app.start()
    try:
        stop.wait()
    finally:
        app.stop()


def _api(kubeconfig: str | None, context: str | None) -> AppsV1Api:
    return AppsV1Api(load_api_client(kubeconfig, context))


def _age(since: datetime | None) -> str:
    if since is None:
        return "-"
    seconds = int((datetime.now(UTC) - since).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status(
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only this namespace.")] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """A table of guarded Deployments: mode, phase, revision, checks, last verdict, age."""
    api = _api(kubeconfig, context)
    listed = (
        api.list_namespaced_deployment(namespace) if namespace else api.list_deployment_for_all_namespaces()
    )
    table = Table(title="guarded Deployments", title_justify="left")
    for column in ("deployment", "mode", "phase", "revision", "passed", "failed", "last verdict", "age"):
        table.add_column(column)
    rows = 0
    for item in listed.items:
        obj = api.api_client.sanitize_for_serialization(item)
        annotations = meta(obj).get("annotations") or {}
        if not is_enabled(annotations):
            continue
        st, problem = read_status(annotations)
        ref = f"{meta(obj).get('namespace')}/{meta(obj)['name']}"
        rows += 1
        if st is None:
            table.add_row(ref, "-", problem or "not seen yet", str(revision(obj) or '-'), "-", "-", "-", "-")
            continue
        verdict = st.last_verdict.phase.value if st.last_verdict else "-"
        table.add_row(
            ref, st.mode.value, st.phase.value, st.revision or str(revision(obj) or '-'), str(st.checks_passed),
            str(st.checks_failed), verdict, _age(st.started_at or st.updated_at),
        )
    out = console if console.is_terminal else Console(width=160)  # pipes and logs: never truncate names
    out.print(table if rows else "no Deployment is annotated canary.mop.dev/enabled=true")


def _request(ref: str, annotations: dict[str, str], kubeconfig: str | None, context: str | None, what: str) -> None:
    namespace, _, name = ref.partition("/")
    if not namespace or not name:
        err_console.print(f"[red]error[/red] expected NAMESPACE/NAME, got {ref!r}", highlight=False)
        raise typer.Exit(2)
    api = _api(kubeconfig, context)
    try:
        current = api.read_namespaced_deployment(name, namespace)
        if current.metadata is None or not is_enabled(current.metadata.annotations):
            err_console.print(f"[red]error[/red] Deployment {ref} is not annotated canary.mop.dev/enabled=true")
            raise typer.Exit(1)
        api.patch_namespaced_deployment(name, namespace, {"metadata": {"annotations": annotations}})
    except ApiException as exc:
        err_console.print(f"[red]error[/red] Deployment {ref}: {exc.status} {exc.reason}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"{what} requested for Deployment {ref}", highlight=False)


def abort(
    ref: Annotated[str, typer.Argument(metavar="NAMESPACE/NAME")],
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Roll the canary back now (sets canary.mop.dev/abort)."""
    _request(ref, {ABORT: "true"}, kubeconfig, context, "rollback")


def promote(
    ref: Annotated[str, typer.Argument(metavar="NAMESPACE/NAME")],
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Promote the canary now, skipping the remaining analysis (sets canary.mop.dev/skip and promote)."""
    _request(ref, {SKIP: "true", PROMOTE: "true"}, kubeconfig, context, "promotion")


def register(app: typer.Typer) -> None:
    for command in (run, status, abort, promote):
        app.command()(command)
