"""`canary notify test`: send a sample rolled-back message to an SLO's sinks to check the wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from kubernetes.client import CoreV1Api
from kubernetes.config import new_client_from_config
from kubernetes.config.config_exception import ConfigException
from pydantic import SecretStr
from rich.console import Console

from canary.config.loader import load_files
from canary.config.slo import ServiceSLO
from canary.errors import ExitCode
from canary.notify.destinations import Destination, SecretLocation, SinkKind
from canary.notify.render import render_payload
from canary.notify.sample import sample_event
from canary.notify.secrets import SecretError, SecretResolver, mask_url
from canary.notify.settings import RenderSettings
from canary.notify.transport import Result, post_json

notify_app = typer.Typer(help="Notifications to Slack and JSON webhooks.", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error[/red] {message}")
    return typer.Exit(ExitCode.BAD_INPUT)


def _pick(slo_file: Path, name: str | None) -> ServiceSLO:
    result = load_files([slo_file])
    if result.errors:
        for error in result.errors:
            err_console.print(f"[red]error[/red] {error}")
        raise typer.Exit(ExitCode.BAD_INPUT)
    slos = [s for s in result.slos if name is None or s.metadata.name == name]
    if not slos:
        raise _fail(f"{slo_file}: no ServiceSLO" + (f" named {name!r}" if name else ""))
    if len(slos) > 1:
        names = ", ".join(s.metadata.name for s in slos)
        raise _fail(f"{slo_file}: several ServiceSLOs ({names}): choose one with --name")
    return slos[0]


def _destinations(slo: ServiceSLO, namespace: str, webhook_url: str | None) -> list[Destination]:
    """Every sink the SLO configures, whatever its event list (this is a test); --webhook-url replaces Slack's."""
    slack, webhook = slo.spec.notify.slack, slo.spec.notify.webhook
    channel, mention = (slack.channel, slack.mention) if slack else (None, None)
    out = []
    if webhook_url:
        out.append(Destination(kind=SinkKind.SLACK, url=SecretStr(webhook_url), channel=channel, mention=mention))
    elif slack and slack.webhook_secret_ref:
        ref = slack.webhook_secret_ref
        secret = SecretLocation(namespace=namespace, name=ref.name, key=ref.key)
        out.append(Destination(kind=SinkKind.SLACK, secret=secret, channel=channel, mention=mention))
    if webhook and not webhook_url:
        ref = webhook.url_secret_ref
        out.append(
            Destination(kind=SinkKind.WEBHOOK, secret=SecretLocation(namespace=namespace, name=ref.name, key=ref.key))
        )
    return out


@notify_app.command("test")
def test(
    slo_file: Annotated[Path, typer.Option("--slo", help="ServiceSLO YAML file.", exists=True, dir_okay=False)],
    webhook_url: Annotated[
        str | None,
        typer.Option(
            "--webhook-url",
            envvar="CANARY_SLACK_WEBHOOK_URL",
            help="Slack incoming-webhook URL to use instead of the SLO's Secret.",
            show_envvar=True,
        ),
    ] = None,
    kubeconfig: Annotated[Path | None, typer.Option(help="Kubeconfig to read the webhook Secrets with.")] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.")] = None,
    name: Annotated[str | None, typer.Option(help="The ServiceSLO to use when the file holds several.")] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of the Secrets when the SLO names none.")] = "default",
    grafana_url: Annotated[str | None, typer.Option(help="Grafana base URL for the message's links.")] = None,
    cluster: Annotated[str, typer.Option(help="Cluster name shown in the message.")] = "kubernetes",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each webhook.")] = 10.0,
) -> None:
    """Send a sample "rolled back" message to the SLO's Slack (and JSON webhook) sinks.

    Exit codes: 0 delivered everywhere, 3 a sink (or its Secret) failed, 4 bad input (SLO file, no sink).
    """
    slo = _pick(slo_file, name)
    try:
        settings = RenderSettings(grafana_url=grafana_url, cluster=cluster)
    except ValueError as exc:
        raise _fail(f"--grafana-url: {exc}") from None
    ns = slo.metadata.namespace or namespace
    destinations = _destinations(slo, ns, webhook_url)
    if not destinations:
        raise _fail(
            f"ServiceSLO {slo.ref} names no webhook Secret (notify.slack.webhookSecretRef or "
            "notify.webhook.urlSecretRef): pass --webhook-url"
        )
    resolver = None
    if any(d.secret for d in destinations):
        try:
            api = CoreV1Api(
                new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None, context=context)
            )
        except (ConfigException, OSError) as exc:
            raise _fail(f"cannot load kubeconfig: {exc}") from None
        resolver = SecretResolver(api)
    event = sample_event(slo.model_copy(update={"metadata": slo.metadata.model_copy(update={"namespace": ns})}))
    failed = False
    for destination in destinations:
        try:
            if destination.url is not None:
                url = destination.url.get_secret_value()
            else:
                assert resolver is not None and destination.secret is not None
                url = resolver.url(destination.secret).get_secret_value()
        except SecretError as exc:
            err_console.print(f"[red]{destination.label}: error[/red] {exc}")
            failed = True
            continue
        answer = post_json(url, render_payload(event, destination, settings), timeout)
        where = f"{destination.label} {mask_url(url)}"
        if answer.result is Result.DELIVERED:
            console.print(f"[green]{where}: delivered[/green]")
        else:
            err_console.print(f"[red]{where}: error[/red] {answer.detail.replace(url, mask_url(url))}")
            failed = True
    if failed:
        raise typer.Exit(ExitCode.BACKEND)
