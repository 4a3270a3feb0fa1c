"""`run_demo`: start everything, play the story under a live view, show the Slack messages and the
summary, write the report, then stop everything (or, with `keep`, wait for Ctrl-C first)."""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import yaml
from rich.console import Console
from rich.live import Live

from canary import logs
from canary_testkit.demo import scenario as sc
from canary_testkit.demo.environment import DemoEnvironment, DemoStartError, start_environment
from canary_testkit.demo.options import DemoOptions
from canary_testkit.demo.record import Recorder
from canary_testkit.demo.report import DemoReport, limits, write_report
from canary_testkit.demo.story import Story, StoryError
from canary_testkit.demo.view import LiveView, slack_message, summary

EXIT_OK = 0
EXIT_STORY = 1
"""A step of the story did not end as expected (or timed out)."""
EXIT_START = 3
"""A piece (Prometheus, a port, ...) could not start."""
EXIT_INTERRUPTED = 130
MIRROR_WAIT = 15.0
CONTROLLER_LOG = "controller.log"
SLO_FILE = "slo.yaml"


@contextmanager
def controller_log(path: Path) -> Iterator[None]:
    """While the demo runs, the controller's log goes to `path` (not over the live view) as `canary run`
    writes it at INFO: every check and decision, without the libraries' routine lines."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logs.TextFormatter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    controller = logging.getLogger("canary")
    saved = root.level, controller.level, {name: logging.getLogger(name).level for name in logs.QUIET_LIBRARIES}
    root.addHandler(handler)
    controller.setLevel(logging.INFO)
    logs.quiet_libraries()
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(saved[0])
        controller.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def run_demo(options: DemoOptions, console: Console, err_console: Console) -> int:
    """The whole demo; returns the exit code (see EXIT_*). Everything started is stopped on return."""
    pace = sc.Pace(options.speed)
    options.report_dir.mkdir(parents=True, exist_ok=True)
    (options.report_dir / SLO_FILE).write_text(yaml.safe_dump(sc.slo_document(pace), sort_keys=False))
    with controller_log(options.report_dir / CONTROLLER_LOG):
        recorder = Recorder()
        started_at = datetime.now(UTC)
        console.print(f"[bold]canary demo[/bold]: starting the simulated cluster, Tempo, traffic, Prometheus, "
                      f"Slack and the controller on 127.0.0.1 (scenario {options.scenario.value}, "
                      f"speed {options.speed:g}x)", highlight=False)
        try:
            env = start_environment(pace, sc.profiles(options.scenario), recorder, options.report_dir,
                                    metrics_port=options.metrics_port, slack_webhook=options.slack_webhook)
        except DemoStartError as err:
            err_console.print(f"[red]canary demo:[/red] {err}", highlight=False, soft_wrap=True)
            return EXIT_START
        try:
            return _play(env, recorder, pace, options, started_at, console, err_console)
        except KeyboardInterrupt:
            err_console.print("[yellow]canary demo: interrupted; stopping everything[/yellow]")
            return EXIT_INTERRUPTED
        finally:
            env.stop()


def _play(
    env: DemoEnvironment, recorder: Recorder, pace: sc.Pace, options: DemoOptions, started_at: datetime,
    console: Console, err_console: Console,
) -> int:
    story = Story(env, recorder, pace, options.scenario)
    error: str | None = None
    with Live(LiveView(story, options.speed), console=console, refresh_per_second=4):
        try:
            story.run()
        except StoryError as err:
            error = str(err)
    refused = env.refused()
    if error is None and refused:
        error = f"RBAC refused {len(refused)} request(s) of the controller; the first: {refused[0]}"
    console.print()
    messages = env.slack.messages
    for index, message in enumerate(messages, 1):
        console.print(slack_message(message, f"Slack message {index}/{len(messages)}, as the webhook received it"))
    mirrored = None
    if env.mirror is not None:
        env.mirror.wait_idle(MIRROR_WAIT)
        mirrored = len(env.mirrored)
        console.print(f"also sent to --slack-webhook: {mirrored} of {len(messages)} messages delivered",
                      highlight=False)
    report = DemoReport(
        scenario=options.scenario.value, speed=options.speed, started_at=started_at, ok=error is None, error=error,
        limits=limits(pace), steps=story.steps, marks=story.marks,
        fault_to_rollback_seconds=story.marks.fault_to_rollback, endpoints=env.endpoints,
        slack_messages=messages, mirrored_messages=mirrored, decisions=recorder.records(),
    )
    files = [str(p) for p in write_report(report, options.report_dir)]
    files += [str(options.report_dir / name) for name in (CONTROLLER_LOG, SLO_FILE)]
    console.print(summary(story, len(messages), files, error))
    if error is not None:
        err_console.print(f"[red]canary demo:[/red] {error}", highlight=False, soft_wrap=True)
        return EXIT_STORY
    if options.keep:
        _keep(env, options.report_dir / SLO_FILE, console)
    return EXIT_OK


def canary_command() -> str:
    """How to run `canary` from the user's shell: `canary` when that is this one on PATH, else its path
    (`.venv/bin/canary` after `./dev demo`)."""
    script = Path(sys.executable).with_name("canary")
    found = shutil.which("canary")
    if found and Path(found).resolve() == script.resolve():
        return "canary"
    if not script.exists():
        return "canary"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


ANALYZE_WINDOW = "1m"
"""The window the printed `canary analyze` uses: the demo SLO's window is seconds long, shorter than the
step with which `analyze` finds a Deployment's ReplicaSets in Prometheus, so it would find none."""


def _keep(env: DemoEnvironment, slo_file: Path, console: Console) -> None:
    """Leave everything running, say how to look at it, and wait for Ctrl-C (or SIGTERM)."""
    e = env.endpoints
    canary = canary_command()
    console.print(
        "\n[bold]Everything is still running[/bold] (press Ctrl-C to stop it all):\n"
        f"  {canary} status --kubeconfig {e.kubeconfig}\n"
        f"  {canary} status shop/checkout --kubeconfig {e.kubeconfig}\n"
        f"  {canary} abort shop/checkout --kubeconfig {e.kubeconfig}\n"
        f"  Prometheus UI:               {e.prometheus}/graph\n"
        f"  controller metrics:          {e.controller}\n"
        f"  {canary} analyze -n shop -d checkout --slo {slo_file} --window {ANALYZE_WINDOW} "
        f"--mimir-url {e.prometheus} --tempo-url {e.tempo}\n"
        + (f"  kubectl --kubeconfig {e.kubeconfig} get deployments -n shop" if shutil.which("kubectl") else ""),
        highlight=False, soft_wrap=True,
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print("stopping everything")
