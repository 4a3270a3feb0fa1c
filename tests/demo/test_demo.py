"""`canary demo` end to end, as a user runs it: the real controller, a real Prometheus and the simulators,
at twice the default pace. The outcome is read back from the report (`decisions.json`, `chart.png`),
the Slack receivers and /proc (nothing may be left listening or running)."""

from __future__ import annotations

import json
import re
import socket
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from canary.cli import app
from canary_testkit.slack import SlackSim
from tests.demo.sockets import accepts, children, listening_ports

runner = CliRunner()
HEADLINES = ("checkout v2 promoted", "checkout v3 rolled back", "checkout v3 frozen")


class Leftovers:
    """Listening sockets and child processes of this process before the demo, to compare with after."""

    def __init__(self) -> None:
        self.ports = listening_ports()
        self.children = set(children())

    def assert_none_new(self, reported_ports: list[int]) -> None:
        new_ports = listening_ports() - self.ports
        assert not new_ports, f"the demo left sockets listening on {sorted(new_ports)}"
        new_children = set(children()) - self.children
        assert not new_children, f"the demo left processes running: {sorted(new_children)}"
        still = [port for port in reported_ports if accepts(port)]
        assert not still, f"something still accepts connections on the demo's ports {still}"


@pytest.fixture
def leftovers() -> Leftovers:
    return Leftovers()


@pytest.fixture
def mirror() -> Iterator[SlackSim]:
    with SlackSim() as sim:
        yield sim


def run_demo(*args: str) -> Result:
    return runner.invoke(app, ["demo", *args])


def read_report(report_dir: Path) -> dict[str, Any]:
    data = json.loads((report_dir / "decisions.json").read_text())
    assert isinstance(data, dict)
    return data


def ports_of(report: dict[str, Any]) -> list[int]:
    urls = [v for k, v in report["endpoints"].items() if k != "kubeconfig"]
    return [int(re.match(r"http://127\.0\.0\.1:(\d+)", url).group(1)) for url in urls]  # type: ignore[union-attr]


def runs(decisions: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Decisions cut into one list per analysed revision."""
    out: list[list[dict[str, Any]]] = []
    for d in decisions:
        if d["signal"] in ("adopt", "new-revision", "rejected-revision") or not out:
            out.append([])
        out[-1].append(d)
    return out


def assert_valid_png(path: Path) -> tuple[int, int]:
    """Every chunk's CRC checks out, IHDR first, IEND last; returns (width, height)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, kinds, size = 8, [], (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path}: bad CRC in chunk {kind!r}"
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        kinds.append(kind)
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    return size


def assert_story(report: dict[str, Any], fault_check: str) -> None:
    """Promoted, rolled back within the failed-check budget, frozen on re-apply: read from the decisions."""
    limits = report["limits"]
    budget = limits["failed_checks"]
    assert report["ok"] is True and report["error"] is None
    assert [s["ok"] for s in report["steps"]] == [True, True, True, True]
    assert "invalid" not in {d["signal"] for d in report["decisions"]}, "the SLO was loaded before v1 was deployed"
    adopt, v2, v3, again = runs(report["decisions"])
    assert adopt[0]["signal"] == "adopt" and adopt[-1]["phase"] == "Succeeded"

    # 1: v2 promoted after successfulChecks passed checks, none failed
    assert {d["image"] for d in v2} == {"v2"}
    verdicts = [d["verdict"] for d in v2 if d["verdict"]]
    assert verdicts.count("pass") >= limits["successful_checks"] and "fail" not in verdicts
    phases = [d["phase"] for d in v2]
    assert "Promoting" in phases and phases[-1] == "Succeeded"

    # 2: v3 rolled back after exactly failedChecks consecutive failed checks, with the fault measured
    assert v3[0]["image"] == "v3"
    rollback_at = next(i for i, d in enumerate(v3) if d["phase"] == "RollingBack")
    before = [d for d in v3[:rollback_at + 1] if d["verdict"]]
    assert [d["verdict"] for d in before][-budget:] == ["fail"] * budget
    assert [d["verdict"] for d in before].count("fail") == budget, "no failed check beyond the budget"
    assert v3[rollback_at]["checks_failed"] == budget and v3[rollback_at]["signal"] == "fail-limit"
    failed = {c["name"] for c in v3[rollback_at]["checks"] if c["result"] == "fail"}
    assert fault_check in failed, f"the rollback names {fault_check}: {failed}"
    assert v3[-1]["phase"] == "RolledBack"
    marks = report["marks"]
    assert marks["fault"] < marks["first_failed_check"] <= marks["rollback"] == v3[rollback_at]["t"]
    assert report["fault_to_rollback_seconds"] == pytest.approx(marks["rollback"] - marks["fault"], abs=0.01)

    # 3: v3 re-applied is frozen; one rollback in the whole story
    assert again[0]["signal"] == "rejected-revision" and again[0]["image"] == "v3"
    assert {d["phase"] for d in again} == {"Frozen"}
    assert [d["phase"] for d in report["decisions"]].count("RollingBack") == 1

    # one Slack message per event, in story order
    texts = [m["text"] for m in report["slack_messages"]]
    assert [next(h for h in HEADLINES if h in t) for t in texts] == list(HEADLINES), texts


def test_errors_scenario_promotes_rolls_back_and_freezes(
    tmp_path: Path, mirror: SlackSim, leftovers: Leftovers
) -> None:
    report_dir = tmp_path / "report"
    result = run_demo("--speed", "2", "--report-dir", str(report_dir), "--slack-webhook", mirror.url)
    assert result.exit_code == 0, result.output
    report = read_report(report_dir)
    assert_story(report, fault_check="availability")
    rollback = next(d for d in report["decisions"] if d["phase"] == "RollingBack")
    assert rollback["canary"]["error_rate"] > report["limits"]["error_rate"] * 5
    assert rollback["baseline"]["error_rate"] < report["limits"]["error_rate"]
    # the rollback message shows the cause: the route, the failing downstream call, traces and log lines
    rolled = next(m for m in report["slack_messages"] if "checkout v3 rolled back" in m["text"])
    assert "of POST /api/orders failing" in rolled["blocks"][0]["text"]["text"]
    sections = json.dumps(rolled["blocks"])
    for shown in ('checkout span \\"INSERT orders\\": deadlock detected', "*Failing traces*", "*Log lines*",
                  "`canary retry shop/checkout`"):
        assert shown in sections, shown

    # what the user sees: the live view's final frame, the messages as received, the summary
    out = result.stdout
    assert "Slack message 3/3, as the webhook received it" in out
    assert f"fault → rollback  {report['fault_to_rollback_seconds']:.1f}s" in out
    assert "the story ended as expected" in out
    assert "[bold]" not in out, "no raw rich markup leaks into the output"

    # --slack-webhook: the same three messages, once each, at the second receiver
    assert Counter(m["text"] for m in mirror.messages) == Counter(m["text"] for m in report["slack_messages"])
    assert report["mirrored_messages"] == 3
    assert "also sent to --slack-webhook: 3 of 3 messages delivered" in out

    width, height = assert_valid_png(report_dir / "chart.png")
    assert width >= 800 and height >= 500
    leftovers.assert_none_new(ports_of(report))

    # controller.log: every check and decision as `canary run --log-format text` writes them, no scheduler noise
    log = (report_dir / "controller.log").read_text()
    assert "INFO canary.controller.executor: decision deployment=shop/checkout signal=fail-limit " \
           "phase=RollingBack" in log
    assert "INFO canary.controller.runtime: check canary=shop/checkout verdict=fail" in log
    assert "Running job" not in log and "apscheduler" not in log


def test_latency_scenario_rolls_back_on_p99(tmp_path: Path, leftovers: Leftovers) -> None:
    report_dir = tmp_path / "report"
    result = run_demo("--scenario", "latency", "--speed", "2", "--report-dir", str(report_dir))
    assert result.exit_code == 0, result.output
    report = read_report(report_dir)
    assert_story(report, fault_check="latency-p99")
    rollback = next(d for d in report["decisions"] if d["phase"] == "RollingBack")
    assert rollback["canary"]["p99"] > report["limits"]["latency_p99"] > rollback["baseline"]["p99"]
    # the latency breach is broken down by route on p99, with slow example traces
    rolled = next(m for m in report["slack_messages"] if "checkout v3 rolled back" in m["text"])
    assert "rolled back: p99 latency " in rolled["blocks"][0]["text"]["text"]
    assert " p99 " in json.dumps(rolled["blocks"]) and "slow request /api/" in json.dumps(rolled["blocks"])
    assert not any(c["result"] == "fail" for c in rollback["checks"] if c["name"] == "availability")
    assert "latency-p99" in report["slack_messages"][1]["text"]
    assert_valid_png(report_dir / "chart.png")
    leftovers.assert_none_new(ports_of(report))


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line message, got {lines}"
    return lines[0]


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = Leftovers()
        result = run_demo("--metrics-port", str(port), "--report-dir", str(tmp_path / "r"))
        assert result.exit_code == 3, result.output
        line = one_line(result.stderr)
        assert f"cannot start the controller's metrics endpoint on 127.0.0.1:{port}" in line
        assert "Address already in use" in line and "--metrics-port" in line
        before.assert_none_new([])
    assert not (tmp_path / "r" / "decisions.json").exists(), "no report for a demo that never started"


def test_missing_prometheus_is_a_clear_error(
    tmp_path: Path, leftovers: Leftovers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_BIN", str(tmp_path / "no-such-prometheus"))
    result = run_demo("--report-dir", str(tmp_path / "r"))
    assert result.exit_code == 3, result.output
    line = one_line(result.stderr)
    assert line.startswith("canary demo: cannot start Prometheus: prometheus is not installed")
    assert "apt-get install prometheus" in line and "$PROMETHEUS_BIN" in line
    leftovers.assert_none_new([])


@pytest.mark.parametrize(("args", "complaint"), [
    (["--speed", "10"], "--speed"),
    (["--speed", "0.1"], "--speed"),
    (["--scenario", "meteor"], "--scenario"),
    (["--slack-webhook", "hooks.slack.com/x"], "--slack-webhook"),
    (["--metrics-port", "70000"], "--metrics-port"),
])
def test_bad_flags_are_refused_before_anything_starts(
    args: list[str], complaint: str, tmp_path: Path, leftovers: Leftovers
) -> None:
    result = run_demo(*args, "--report-dir", str(tmp_path / "r"))
    assert result.exit_code == 4  # usage error
    assert complaint in result.stderr
    assert not (tmp_path / "r").exists()
    leftovers.assert_none_new([])
