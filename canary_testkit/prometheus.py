"""A real Prometheus server on 127.0.0.1 that stands in for Mimir in the tests, the demo and benchmarks.

    with PrometheusServer(openmetrics=text) as prom:     # backfilled before start, ready on return
        source = MimirSource(MimirSettings(url=prom.url))  # http://127.0.0.1:PORT/prometheus

The server serves under the route prefix `/prometheus` (as Mimir does), keeps its TSDB in a temporary
directory removed on `stop()`, and optionally scrapes targets (`scrape_configs`). Backfill data is
OpenMetrics text (timestamps in seconds, ending with `# EOF`) turned into TSDB blocks by
`promtool tsdb create-blocks-from openmetrics` before the server starts. Write data that ends a little
before "now" and query with an `end` inside the data's range.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from canary_testkit.httpserver import Service

ROUTE_PREFIX = "/prometheus"


class PrometheusNotInstalledError(RuntimeError):
    """`prometheus` or `promtool` is not on PATH."""


class PrometheusStartError(RuntimeError):
    """Prometheus or promtool failed; the message holds the tail of its output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, env_var: str) -> str:
    """Path of `name` from `$env_var` or PATH, or a PrometheusNotInstalledError that says how to install it."""
    path = os.environ.get(env_var) or shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        raise PrometheusNotInstalledError(
            f"{name} is not installed (not on PATH and ${env_var} unset): install Debian's `prometheus` "
            "package (`sudo apt-get install prometheus`, or `./dev test` as root) or set "
            f"${env_var} to the binary"
        )
    return path


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


class PrometheusServer(Service):
    """One Prometheus process: backfill, start, wait until ready, stop. Usable as a context manager."""

    def __init__(
        self,
        *,
        openmetrics: str | Sequence[str] = (),
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        scrape_interval: str = "15s",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        """`openmetrics`: one or more OpenMetrics documents to backfill; `scrape_configs`: Prometheus
        `scrape_configs` entries (dicts as in prometheus.yml); `extra_args`: more command-line flags."""
        self.prometheus = find_binary("prometheus", "PROMETHEUS_BIN")
        self.promtool = find_binary("promtool", "PROMTOOL_BIN")
        self._documents = [openmetrics] if isinstance(openmetrics, str) else list(openmetrics)
        self._scrape_configs = [dict(c) for c in scrape_configs]
        self._scrape_interval = scrape_interval
        self._extra_args = list(extra_args)
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` (no prefix)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The Mimir-style URL including the `/prometheus` prefix: what MimirSettings.url takes."""
        return self.base_url + ROUTE_PREFIX

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PrometheusServer:
        """Backfill the data, start Prometheus and return once `/prometheus/-/ready` answers 200."""
        if self._process is not None:
            raise RuntimeError("this PrometheusServer was already started")
        self._workdir = Path(tempfile.mkdtemp(prefix="canary-prometheus-"))
        try:
            data = self._workdir / "data"
            data.mkdir()
            for index, document in enumerate(self._documents):
                self._backfill(document, data, index)
            config = self._workdir / "prometheus.yml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": self._scrape_interval},
                        "scrape_configs": self._scrape_configs,
                    }
                )
            )
            self.port = free_port()
            log = self._workdir / "prometheus.log"
            with log.open("wb") as out:
                self._process = subprocess.Popen(
                    [
                        self.prometheus,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={data}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        f"--web.route-prefix={ROUTE_PREFIX}",
                        f"--web.external-url={self.url}",
                        "--storage.tsdb.retention.time=30d",
                        *self._extra_args,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            self._wait_ready(log)
        except BaseException:
            self.stop()
            raise
        return self

    def _backfill(self, document: str, data: Path, index: int) -> None:
        assert self._workdir is not None
        text = document if document.rstrip().endswith("# EOF") else document.rstrip("\n") + "\n# EOF\n"
        source = self._workdir / f"backfill-{index}.om"
        source.write_text(text if text.endswith("\n") else text + "\n")
        result = subprocess.run(
            [self.promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise PrometheusStartError(
                f"promtool could not backfill OpenMetrics document #{index} ({source}): " + "\n".join(output)
            )

    def _wait_ready(self, log: Path) -> None:
        deadline = time.monotonic() + self._startup_timeout
        ready = f"{self.url}/-/ready"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PrometheusStartError(
                    f"prometheus exited with status {self._process.returncode} before it was ready:\n{_tail(log)}"
                )
            try:
                with urllib.request.urlopen(ready, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise PrometheusStartError(
            f"prometheus was not ready at {ready} after {self._startup_timeout:g}s:\n{_tail(log)}"
        )

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s) and remove its data. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
