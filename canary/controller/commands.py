"""`canary run`, `canary status`, `canary abort`, `canary promote` and `canary retry`."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from canary.controller.annotations import ABORT, PROMOTE, RETRY, is_enabled
from canary.controller.status import CanaryStatus, read_status
from canary.errors import ExitCode, fail
from canary.options import Context, Kubeconfig, RequestTimeout
from canary.vocabulary import CanaryPhase, FreezeCause

if TYPE_CHECKING:  # the rest is imported by the command that uses it: `canary status --help` needs none of it
    from kubernetes.client import AppsV1Api
    from rich.console import RenderableType

    from canary.controller.statusview import DeploymentView

console = Console()
err_console = Console(stderr=True)
log = logging.getLogger(__name__)


def run(
    mimir_url: Annotated[str | None, typer.Option(help="Mimir URL incl. /prometheus [env CANARY_MIMIR_URL].")] = None,
    tempo_url: Annotated[str | None, typer.Option(help="Tempo URL [env CANARY_TEMPO_URL].")] = None,
    loki_url: Annotated[
        str | None, typer.Option(help="Loki URL: log lines in rollback evidence [env CANARY_LOKI_URL].")
    ] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n", help="Watch only these.")] = None,
    leader_elect: Annotated[bool | None, typer.Option("--leader-elect", help="Run with a Lease.")] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings (same names as the flags).")] = None,
    tenant: Annotated[str | None, typer.Option(help="X-Scope-OrgID for Mimir and Tempo.")] = None,
    port: Annotated[int | None, typer.Option(help="Port of /metrics, /healthz, /readyz (default 8080).")] = None,
    grafana_url: Annotated[str | None, typer.Option(help="Grafana base URL for links in messages.")] = None,
    grafana_external_url: Annotated[
        str | None,
        typer.Option(help="Grafana as reached from outside; links use it [env CANARY_GRAFANA_EXTERNAL_URL]."),
    ] = None,
    cluster_name: Annotated[str | None, typer.Option(help="Cluster name shown in messages.")] = None,
    log_format: Annotated[str | None, typer.Option(help="json (default) or text.")] = None,
) -> None:
    """Watch annotated Deployments, analyse their canaries, roll back or promote. Runs until stopped."""
    from pydantic import ValidationError

    from canary import logs
    from canary.controller.app import ControllerApp
    from canary.controller.settings import load_settings

    flags = {
        "mimir_url": mimir_url, "tempo_url": tempo_url, "loki_url": loki_url, "namespaces": namespace or None,
        "grafana_external_url": grafana_external_url,
        "leader_elect": leader_elect, "kubeconfig": kubeconfig, "context": context, "tenant": tenant,
        "listen_port": port, "grafana_url": grafana_url, "cluster_name": cluster_name, "log_format": log_format,
    }
    try:
        settings = load_settings(config, flags)
    except (ValidationError, ValueError, OSError) as exc:
        err_console.print(f"[red]error[/red] invalid settings: {exc}", highlight=False)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
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
    from kubernetes.client import AppsV1Api

    from canary.kube.client import load_api_client

    return AppsV1Api(load_api_client(kubeconfig, context))


class StatusOutput(StrEnum):
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


def _split_ref(ref: str, namespace: str | None) -> tuple[str, str]:
    ns, sep, name = ref.partition("/")
    if not sep:
        ns, name = namespace or "default", ref
    if not ns or not name or "/" in name:
        raise fail(f"expected NAMESPACE/NAME (or NAME with -n), got {ref!r}", ExitCode.BAD_INPUT)
    return ns, name


def status(
    ref: Annotated[
        str | None, typer.Argument(metavar="NAMESPACE/NAME", help="One Deployment: the detail view.")
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only this namespace.")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw in place until Ctrl-C.")] = False,
    output: Annotated[
        StatusOutput | None, typer.Option("--output", "-o", help="wide (more columns), json or yaml.")
    ] = None,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between redraws with --watch.")] = 2.0,
    updates: Annotated[int | None, typer.Option(hidden=True, min=1, help="Stop --watch after N redraws.")] = None,
    request_timeout: RequestTimeout = 30.0,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Guarded Deployments: phase, checks, last verdict and why.

    With NAMESPACE/NAME, one Deployment in detail: revisions with their ReplicaSets and pods, each check with
    canary/baseline/limit/confidence, what happens next, the last decisions and pending notifications.
    """
    import urllib3.exceptions
    import yaml
    from kubernetes.client.exceptions import ApiException
    from rich.live import Live
    from rich.text import Text

    from canary.controller.statusrender import detail, list_view
    from canary.controller.statusview import StatusReader, status_document
    from canary.errors import describe
    from canary.kube.client import load_api_client

    target = _split_ref(ref, namespace) if ref else None
    reader = StatusReader(load_api_client(kubeconfig, context), timeout=request_timeout)
    out = console if console.is_terminal else Console(width=160)  # pipes and logs: never truncate names

    def views() -> list[DeploymentView]:
        if target is None:
            return reader.list(namespace)
        found = reader.get(*target)
        if found is None:
            raise LookupError(f"Deployment {target[0]}/{target[1]} not found")
        return [found]

    def render(items: list[DeploymentView]) -> RenderableType:
        if target is not None:
            return detail(items[0])
        if not items:
            return Text("no Deployment is annotated canary.mop.dev/enabled=true")
        return list_view(items, wide=output is StatusOutput.WIDE)

    def emit(items: list[DeploymentView]) -> None:
        document = status_document(items)
        if output is StatusOutput.JSON:
            print(json.dumps(document, indent=2))
        else:
            print("---\n" + yaml.safe_dump(document, sort_keys=False), end="")

    structured = output in (StatusOutput.JSON, StatusOutput.YAML)
    try:
        first = views()
    except LookupError as exc:
        raise fail(str(exc), ExitCode.BAD_INPUT) from None
    if not watch:
        if structured:
            emit(first)
        else:
            out.print(render(first))
        return
    shown = 0
    try:
        if structured:
            emit(first)
        with contextlib.nullcontext() if structured else Live(
            render(first), console=out, auto_refresh=False, redirect_stderr=False
        ) as live:
            while updates is None or shown < updates:
                time.sleep(interval)
                shown += 1
                try:
                    items = views()
                except (LookupError, ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
                    # a watch outlives a blip: say what failed in place of the view and try again
                    message = str(exc) if isinstance(exc, LookupError) else describe(exc)[1]
                    problem = f"error {message} (retrying every {interval:g}s)"
                    if live is None:
                        err_console.print(problem, highlight=False, soft_wrap=True)
                    else:
                        live.update(Text(problem, style="red"), refresh=True)
                    continue
                if live is None:
                    emit(items)
                else:
                    live.update(render(items), refresh=True)
    except KeyboardInterrupt:
        return


Request = Literal["abort", "promote", "retry"]
_ANNOTATION: dict[Request, str] = {"abort": ABORT, "promote": PROMOTE, "retry": RETRY}
_ACTS_IN: dict[Request, tuple[CanaryPhase, ...]] = {
    "abort": (CanaryPhase.WAITING, CanaryPhase.ANALYSING, CanaryPhase.PROMOTING, CanaryPhase.FROZEN),
    "promote": (CanaryPhase.WAITING, CanaryPhase.ANALYSING, CanaryPhase.PROMOTING, CanaryPhase.FROZEN),
    "retry": (CanaryPhase.FROZEN, CanaryPhase.ROLLED_BACK, CanaryPhase.ROLLING_BACK),
}


def refusal(request: Request, status: CanaryStatus | None, current_hash: str) -> str | None:
    """Why `request` would do nothing now (one line), or None when the controller will act on it."""
    if status is None:
        return f"the controller has not analysed it yet: nothing to {request}"
    phase = status.phase
    if status.template_hash != current_hash and phase is not CanaryPhase.INVALID:
        return (f"its template changed to {current_hash} and the controller has not caught up "
                f"(status is about {status.template_hash}): try again in a few seconds")
    rejected = current_hash in status.rejected
    if phase not in _ACTS_IN[request]:
        hint = {
            "abort": " (it runs its stable revision)" if phase in (CanaryPhase.SUCCEEDED, CanaryPhase.ROLLED_BACK)
            else "",
            "promote": "; `canary retry` analyses a rejected revision again" if phase is CanaryPhase.ROLLED_BACK
            else "",
            "retry": "",
        }[request]
        return f"nothing to {request} in phase {phase.value}{hint}"
    if request == "promote" and phase is CanaryPhase.FROZEN and status.freeze_cause is FreezeCause.REJECTED:
        return f"template {current_hash} was rejected: `canary retry` analyses it again, promote would skip that"
    if request == "retry" and not rejected:
        return (f"nothing to retry: it runs template {current_hash}, which was not rejected (apply the rejected "
                "revision again, then retry)")
    return None


def _request(ref: str, request: Request, kubeconfig: str | None, context: str | None) -> None:
    """Annotate the Deployment with the request for its current template, or refuse in one line (exit 1)."""
    from kubernetes.client.exceptions import ApiException

    from canary.kube.bodies import Body
    from canary.kube.deployments import template_hash
    from canary.kube.wire import call_json

    namespace, _, name = ref.partition("/")
    if not namespace or not name:
        err_console.print(f"[red]error[/red] expected NAMESPACE/NAME, got {ref!r}", highlight=False)
        raise typer.Exit(ExitCode.BAD_INPUT)
    api = _api(kubeconfig, context)
    try:
        obj = call_json(api.read_namespaced_deployment, name, namespace)
        annotations = Body(obj).annotations
        if not is_enabled(annotations):
            err_console.print(f"[red]error[/red] Deployment {ref} is not annotated canary.mop.dev/enabled=true")
            raise typer.Exit(ExitCode.FAIL)
        current = template_hash(obj)
        why = refusal(request, read_status(annotations)[0], current)
        if why is not None:
            err_console.print(f"[red]error[/red] Deployment {ref}: {why}", highlight=False, soft_wrap=True)
            raise typer.Exit(ExitCode.FAIL)
        body = {"metadata": {"annotations": {_ANNOTATION[request]: current},
                             "resourceVersion": Body(obj).resource_version}}
        api.patch_namespaced_deployment(name, namespace, body)
    except ApiException as exc:
        if exc.status == 404:
            raise fail(f"Deployment {ref} not found", ExitCode.BAD_INPUT) from None
        raise fail(f"Deployment {ref}: {exc.status} {exc.reason}", ExitCode.BACKEND) from None
    console.print(f"{request} requested for Deployment {ref} at template {current}", highlight=False, soft_wrap=True)


def abort(
    ref: Annotated[str, typer.Argument(metavar="NAMESPACE/NAME")],
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Roll the canary back now, in any phase with a canary (Waiting, Analysing, Promoting, Frozen)."""
    _request(ref, "abort", kubeconfig, context)


def promote(
    ref: Annotated[str, typer.Argument(metavar="NAMESPACE/NAME")],
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Promote the canary now, skipping the rest of its analysis (not a rejected revision: see retry)."""
    _request(ref, "promote", kubeconfig, context)


def retry(
    ref: Annotated[str, typer.Argument(metavar="NAMESPACE/NAME")],
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Analyse the rejected revision the Deployment holds again, on purpose."""
    _request(ref, "retry", kubeconfig, context)
