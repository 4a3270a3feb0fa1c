"""Every error path of the CLI ends in one line naming what failed and a documented exit code, never a
traceback (unless --debug): missing or malformed kubeconfig, unreachable API server, malformed URL,
usage errors. Run through typer's CliRunner and, once, through the installed `canary` script."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from canary.cli import app
from canary.errors import ExitCode, describe
from canary_testkit.kube import KubeSim

runner = CliRunner()
SLO = "apiVersion: canary.mop.dev/v1alpha1\nkind: ServiceSLO\nmetadata: {name: checkout}\nspec: {service: checkout}\n"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{closed_port()}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    return path


def one_line_error(result: Result, code: ExitCode, *needles: str) -> None:
    output = result.output
    assert result.exit_code == code, output
    assert ("Traceback" not in output and result.exception is None) or isinstance(result.exception, SystemExit)
    errors = [line for line in output.splitlines() if line.startswith("error ")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in output, output


def test_missing_kubeconfig(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    for args in (["status"], ["status", "shop/checkout"], ["abort", "shop/checkout"], ["validate", "--cluster"],
                 ["retry", "shop/checkout"], ["rbac", "grant-secrets", "-n", "shop", "--secret", "x", "--apply"]):
        one_line_error(runner.invoke(app, [*args, "--kubeconfig", missing]), ExitCode.BAD_INPUT,
                       f"kubeconfig {missing}: file not found")


def test_malformed_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("clusters: [oops\n")
    one_line_error(runner.invoke(app, ["status", "--kubeconfig", str(path)]), ExitCode.BAD_INPUT,
                   f"kubeconfig {path}")


def test_unreachable_api_server(unreachable_kubeconfig: Path) -> None:
    kubeconfig = str(unreachable_kubeconfig)
    for args in (["status"], ["status", "shop/checkout"], ["promote", "shop/checkout"]):
        one_line_error(runner.invoke(app, [*args, "--kubeconfig", kubeconfig]), ExitCode.BACKEND,
                       "cannot reach the Kubernetes API server at http://127.0.0.1:", "Connection refused")


def test_stack_diff_without_a_cluster_is_an_error_not_a_difference(unreachable_kubeconfig: Path) -> None:
    """`kubectl diff` semantics: 1 means "differs"; an unreachable cluster is > 1."""
    result = runner.invoke(app, ["stack", "diff", "--env", "dev", "--kubeconfig", str(unreachable_kubeconfig)])
    one_line_error(result, ExitCode.BACKEND, "cannot reach the Kubernetes API server")


def test_debug_shows_the_traceback(unreachable_kubeconfig: Path) -> None:
    result = runner.invoke(app, ["--debug", "status", "--kubeconfig", str(unreachable_kubeconfig)])
    assert result.exit_code != 0 and result.exception is not None and not isinstance(result.exception, SystemExit)


def test_analyze_usage_and_url_errors_are_bad_input_not_verdicts(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO)
    base = ["analyze", "-n", "shop", "-d", "checkout", "--slo", str(slo)]
    missing_flag = runner.invoke(app, ["analyze", "-n", "shop", "--slo", str(slo), "--mimir-url", "http://x"])
    assert missing_flag.exit_code == ExitCode.BAD_INPUT and "--deployment" in missing_flag.output
    one_line_error(runner.invoke(app, [*base, "--mimir-url", "mimir:8080"]), ExitCode.BAD_INPUT,
                   "--mimir-url: 'mimir:8080' is not an http(s) URL")
    one_line_error(runner.invoke(app, [*base, "--mimir-url", "http://127.0.0.1:1", "--tempo-url", "ftp://t"]),
                   ExitCode.BAD_INPUT, "--tempo-url")
    one_line_error(runner.invoke(app, [*base, "--mimir-url", "http://[::1"]), ExitCode.BAD_INPUT, "--mimir-url")
    one_line_error(runner.invoke(app, [*base, "--mimir-url", "http://127.0.0.1:1", "--loki-url", "loki"]),
                   ExitCode.BAD_INPUT, "--loki-url: 'loki' is not an http(s) URL")
    down = runner.invoke(app, [*base, "--mimir-url", f"http://127.0.0.1:{closed_port()}", "--timeout", "2"])
    assert down.exit_code == ExitCode.BACKEND and "Traceback" not in down.output
    unknown = runner.invoke(app, ["analyze", "--bogus"])
    assert unknown.exit_code == ExitCode.BAD_INPUT


def test_installed_script_prints_one_line(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "canary"
    done = subprocess.run([str(script), "status", "--kubeconfig", str(tmp_path / "none")], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.strip().splitlines() == [f"error kubeconfig {tmp_path / 'none'}: file not found (and not "
                                                "running in a cluster)"]
    assert done.stdout == ""


def test_an_api_server_error_is_a_backend_error(tmp_path: Path) -> None:
    with KubeSim(rollout_step_seconds=None) as sim:
        kubeconfig = str(sim.write_kubeconfig(tmp_path / "kubeconfig"))
        sim.fail_next("GET /apis/apps/v1/deployments", status=500, message="etcdserver: request timed out")
        result = runner.invoke(app, ["status", "--kubeconfig", kubeconfig])
    one_line_error(result, ExitCode.BACKEND,
                   "Kubernetes API server answered 500 Internal Server Error: etcdserver: request timed out")


def test_an_unexpected_error_is_one_line_with_a_hint() -> None:
    """What no command expects (a bug) still prints one line, exit 5, and says how to get the traceback."""
    code, message = describe(KeyError("spec"))
    assert code == ExitCode.INTERNAL
    assert message == "unexpected KeyError: 'spec' (rerun with --debug for the traceback)"


def test_a_hanging_api_server_is_a_timeout_not_a_hang(tmp_path: Path) -> None:
    """Every answer delayed 2 s past a 0.5 s --request-timeout (urllib3 retries a read timeout 3 times)."""
    with KubeSim(rollout_step_seconds=None) as sim:
        kubeconfig = str(sim.write_kubeconfig(tmp_path / "kubeconfig"))
        sim.delay_next("GET /apis/apps/v1/*", seconds=2, times=8)
        status = runner.invoke(app, ["status", "--request-timeout", "0.5", "--kubeconfig", kubeconfig])
        sim.clear_faults()
    one_line_error(status, ExitCode.BACKEND, "Read timed out")
