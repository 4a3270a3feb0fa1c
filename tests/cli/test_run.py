"""`canary run` as deployed (the installed script, a subprocess): JSON logs at INFO with the controller's
decisions and none of the scheduler's per-tick lines; a missing kubeconfig is one line, not a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from canary.cli import app
from canary.errors import ExitCode
from canary_testkit.kube import KubeSim

CANARY = str(Path(sys.executable).with_name("canary"))


def test_run_logs_decisions_as_json_without_scheduler_noise(tmp_path: Path) -> None:
    """Runs ~4 s: long enough for the first scheduler tick (1 s after a guarded Deployment is seen)."""
    with KubeSim(rollout_step_seconds=None) as sim:
        labels = {"app": "checkout"}
        sim.create({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "checkout", "namespace": "default",
                                 "annotations": {"canary.mop.dev/enabled": "true"}},
                    "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels},
                                          "spec": {"containers": [{"name": "app", "image": "shop/app:v1"}]}}}})
        kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
        env = {**os.environ, "CANARY_LISTEN_HOST": "127.0.0.1"}
        process = subprocess.Popen(
            [CANARY, "run", "--kubeconfig", str(kubeconfig), "--mimir-url", "http://127.0.0.1:1/prometheus",
             "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "canary.mop.dev/status" not in (
                (sim.get("apps/v1", "deployments", "default", "checkout") or {}).get("metadata", {})
                .get("annotations", {})
            ):
                time.sleep(0.2)
            time.sleep(3)  # past the first tick
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert lines, stderr
    assert all(entry["level"] in ("info", "warning", "error") for entry in lines)
    decisions = [e for e in lines if e["message"] == "decision"]
    assert decisions and decisions[0]["deployment"] == "default/checkout" and decisions[0]["signal"] == "adopt"
    libraries = ("apscheduler", "urllib3", "kubernetes", "httpx")
    assert not [e for e in lines if e["logger"].startswith(libraries) and e["level"] == "info"]
    assert "Running job" not in stderr


def test_run_without_a_kubeconfig_or_mimir_url_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([CANARY, "run", "--kubeconfig", str(tmp_path / "none"), "--mimir-url", "http://m:9090"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr
    assert "Traceback" not in done.stderr and f"kubeconfig {tmp_path / 'none'}: file not found" in done.stderr
    bad = CliRunner().invoke(app, ["run", "--kubeconfig", str(tmp_path / "none")])  # refused before logging starts
    assert bad.exit_code == ExitCode.BAD_INPUT and "mimir_url" in bad.output and "Traceback" not in bad.output
