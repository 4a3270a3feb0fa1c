"""The controller's hop into the stack is mTLS too: its Mimir and Tempo clients verify the server with
the stack's CA and present the controller's client certificate to servers that require one."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from canary.samples import Target, Workload
from canary.sources.loki import LokiSettings, LokiSource
from canary.sources.mimir import MimirSettings, MimirSource
from canary.sources.tempo import TempoSettings, TempoSource
from canary.stack import load_kustomization
from canary.stack.render import repo_dir
from tests.stack.conftest import find

TARGET = Target(
    key="shop/checkout-canary",
    service="checkout",
    canary=Workload(namespace="shop", deployment="checkout-canary"),
    baseline=(Workload(namespace="shop", deployment="checkout"),),
    window=300,
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as cert-manager would issue."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", "/CN=mop-ca", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    for name, ext in [("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")]:
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=d)  # fmt: skip
    return d


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body: Any
        if self.path.startswith("/prometheus/api/v1/label/__name__/values"):
            body = {"status": "success", "data": ["http_server_request_duration_seconds_count"]}
        elif self.path.startswith("/loki/api/v1/query_range"):
            body = {"status": "success", "data": {"resultType": "streams", "result": []}}
        elif self.path.startswith("/api/search"):
            body = {"traces": [{"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "startTimeUnixNano": "1"}]}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(pki: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 that refuses clients without a certificate signed by the CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(pki / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_mimir_client_presents_its_certificate(pki: Path, server: str) -> None:
    tls = {"ca_file": pki / "ca.crt", "cert_file": pki / "client.crt", "key_file": pki / "client.key"}
    with_cert = MimirSource(MimirSettings(url=f"{server}/prometheus", timeout_seconds=5, **tls))
    with_cert.detect()
    assert with_cert.detect_error is None
    without = MimirSource(MimirSettings(url=f"{server}/prometheus", ca_file=pki / "ca.crt", timeout_seconds=5))
    without.detect()
    assert without.detect_error is not None  # the server refused the handshake


def test_tempo_client_presents_its_certificate(pki: Path, server: str) -> None:
    end = datetime.now(UTC)
    tls = {"ca_file": pki / "ca.crt", "cert_file": pki / "client.crt", "key_file": pki / "client.key"}
    with TempoSource(TempoSettings(url=server, timeout_seconds=5, **tls)) as tempo:
        assert tempo.example_failing_traces(TARGET, end) == (["4bf92f3577b34da6a3ce929d0e0e4736"], None)
    with TempoSource(TempoSettings(url=server, ca_file=pki / "ca.crt", timeout_seconds=5)) as tempo:
        ids, error = tempo.example_failing_traces(TARGET, end)
        assert ids == [] and error is not None
    with pytest.raises(ValueError, match="needs both cert_file and key_file"):
        TempoSettings(url=server, cert_file=pki / "client.crt")


def test_loki_client_presents_its_certificate(pki: Path, server: str) -> None:
    end = datetime.now(UTC)
    tls = {"ca_file": pki / "ca.crt", "cert_file": pki / "client.crt", "key_file": pki / "client.key"}
    with LokiSource(LokiSettings(url=server, timeout_seconds=5, **tls)) as loki:
        entries, record = loki.lines('{namespace="shop"}', end - timedelta(minutes=5), end)
        assert entries == [] and record.error is None
    with LokiSource(LokiSettings(url=server, ca_file=pki / "ca.crt", timeout_seconds=5)) as loki:
        _, record = loki.lines('{namespace="shop"}', end - timedelta(minutes=5), end)
        assert record.error is not None


def test_the_controller_is_configured_for_the_stacks_mtls() -> None:
    controller = load_kustomization(repo_dir("manifests"))
    settings = find(controller, "ConfigMap", "mop-canary-settings")["data"]
    for url in ("CANARY_MIMIR_URL", "CANARY_TEMPO_URL", "CANARY_LOKI_URL"):
        assert settings[url].startswith("https://"), url
    pod = find(controller, "Deployment", "mop-canary")["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "tls"]
    for key, file in [
        ("CANARY_TLS_CA_FILE", "ca.crt"),
        ("CANARY_TLS_CERT_FILE", "tls.crt"),
        ("CANARY_TLS_KEY_FILE", "tls.key"),
    ]:
        assert settings[key] == f"{mount['mountPath']}/{file}"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    certificate = find(controller, "Certificate", "mop-canary")
    assert certificate["spec"]["secretName"] == volume["secret"]["secretName"]
    assert "client auth" in certificate["spec"]["usages"]
    assert certificate["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "mop-ca"}
