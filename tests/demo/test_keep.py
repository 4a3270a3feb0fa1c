"""`canary demo --keep` as a user runs it in a terminal: the story, then everything stays up for
`canary status`, the Prometheus UI and the controller's metrics until Ctrl-C stops it all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.demo.sockets import accepts, children

CANARY = str(Path(sys.executable).with_name("canary"))


class Lines:
    """The lines a process prints, collected by a thread, so the test can wait for one with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            time.sleep(0.1)
        raise AssertionError(f"no line with {text!r} after {timeout:g}s; output:\n{''.join(self.lines)}")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode())


def test_keep_leaves_everything_up_until_ctrl_c(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    process = subprocess.Popen(
        [CANARY, "demo", "--scenario", "healthy", "--speed", "2", "--keep", "--report-dir", str(report_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = Lines(process)
        lines.wait_for("press Ctrl-C to stop it all", timeout=90)
        report = json.loads((report_dir / "decisions.json").read_text())
        endpoints = report["endpoints"]
        printed = "".join(lines.lines)
        assert f"canary status --kubeconfig {endpoints['kubeconfig']}" in printed
        assert f"{endpoints['prometheus']}/graph" in printed and endpoints["controller"] in printed

        status = subprocess.run([CANARY, "status", "--kubeconfig", endpoints["kubeconfig"]],
                                capture_output=True, text=True, timeout=30, check=True).stdout
        assert "Succeeded" in status and "guard" in status
        # The printed analyze line, run as printed (with the path of this canary), measures the canary and its
        # baseline (a healthy canary just promoted may still be inconclusive on so little data).
        hint = next(line.strip() for line in lines.lines if " analyze -n shop -d checkout " in line)
        program, *args = hint.split()
        assert Path(program).resolve() == Path(CANARY).resolve() or program == "canary"
        analyzed = subprocess.run([CANARY, *args], capture_output=True, text=True, timeout=60, check=False)
        assert analyzed.returncode in (0, 2), analyzed.stdout + analyzed.stderr
        assert "verdict: " in analyzed.stdout and "sample-size" in analyzed.stdout and "availability" in analyzed.stdout
        metrics = get(endpoints["controller"])
        assert 'canary_promotions_total{deployment="checkout",namespace="shop"} 1.0' in metrics
        assert 'canary_phase{deployment="checkout",namespace="shop",phase="Succeeded"} 1.0' in metrics
        assert "Prometheus" in get(f"{endpoints['prometheus']}/graph")
        query = get(f"{endpoints['prometheus']}/api/v1/query?query=up")
        assert json.loads(query)["data"]["result"][0]["value"][1] == "1", "Prometheus scrapes the traffic"
        prometheus = [pid for pid, name in children(process.pid) if name == "prometheus"]
        assert len(prometheus) == 1

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert "stopping everything" in "".join(lines.lines)
    ports = [int(url.split(":")[2].split("/")[0]) for key, url in endpoints.items() if key != "kubeconfig"]
    assert not [port for port in ports if accepts(port)], "every server stopped with the demo"
    assert not running(prometheus[0], "prometheus"), "Prometheus stopped with the demo"


def running(pid: int, name: str) -> bool:
    try:
        return f"({name})" in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
