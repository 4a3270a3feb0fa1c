"""`canary demo`: the whole loop on this machine, no cluster and no cloud account needed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from canary_testkit.demo.options import MAX_SPEED, MIN_SPEED, DemoOptions, Scenario

_WEBHOOK = re.compile(r"https?://[^\s]+")


def demo(
    scenario: Annotated[Scenario, typer.Option(
        help="What v3 does wrong: errors (an error spike), latency (a p99 regression); healthy: only the "
             "promotion of a healthy v2.")] = Scenario.ERRORS,
    speed: Annotated[float, typer.Option(
        min=MIN_SPEED, max=MAX_SPEED,
        help="Pace multiplier: at 1, checks run every 2s over an 8s window; 2 is twice as fast (1s over 4s), "
             "0.5 half as fast. Request rates scale with it, so each check sees the same evidence.")] = 1.0,
    report_dir: Annotated[Path, typer.Option(
        help="Where decisions.json, chart.png, slo.yaml, kubeconfig and controller.log are written.")
    ] = Path("demo-report"),
    keep: Annotated[bool, typer.Option(
        "--keep", help="Leave everything running after the story (canary status, Prometheus UI, metrics) "
                       "until Ctrl-C.")] = False,
    slack_webhook: Annotated[str | None, typer.Option(
        help="Also post every Slack message to this incoming-webhook URL.")] = None,
    metrics_port: Annotated[int, typer.Option(
        min=0, max=65535, help="Port of the controller's /metrics endpoint (0: a free port).")] = 0,
) -> None:
    """Run the real controller against a simulated cluster on 127.0.0.1: a healthy v2 is promoted, a faulty
    v3 is rolled back, and v3 re-applied is frozen. Under two minutes at the default speed.

    Exit codes: 0 the story ended as expected, 1 a step did not (or timed out), 3 a piece could not start
    (Prometheus missing, a port taken), 130 interrupted.
    """
    from canary_testkit.demo.run import run_demo  # matplotlib, numpy and the simulators: only when the demo runs

    err_console = Console(stderr=True)
    if slack_webhook is not None and not _WEBHOOK.fullmatch(slack_webhook):
        raise typer.BadParameter("expected an http(s) URL", param_hint="--slack-webhook")
    options = DemoOptions(scenario=scenario, speed=speed, report_dir=report_dir, keep=keep,
                          slack_webhook=slack_webhook, metrics_port=metrics_port)
    code = run_demo(options, Console(), err_console)
    if code:
        raise typer.Exit(code)
