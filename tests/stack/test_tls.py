"""mTLS on every component-to-component hop: each server requires a client certificate, each client
presents one and checks the server's name, every certificate comes from cert-manager."""

from __future__ import annotations

import json
import re
from typing import Any

import _gojsonnet
import pytest
import yaml

from canary.stack.render import _flatten as flatten
from canary.stack.render import repo_dir
from tests.stack.conftest import COMBINATIONS, containers, find

Manifest = dict[str, Any]
TLS_DIR = "/etc/mop/tls"
REQUIRE = "RequireAndVerifyClientCert"


def _config(objects: list[Manifest], name: str, key: str) -> dict[str, Any]:
    return dict(yaml.safe_load(find(objects, "ConfigMap", name)["data"][key]))


def _client(block: dict[str, Any]) -> None:
    assert block["tls_enabled"] is True, block
    assert block["tls_ca_path"] == f"{TLS_DIR}/ca.crt" and block["tls_cert_path"] == f"{TLS_DIR}/tls.crt"
    assert block["tls_server_name"].endswith(".mop.svc.cluster.local"), block


def _server(config: dict[str, Any]) -> None:
    for listener in ("http_tls_config", "grpc_tls_config"):
        tls = config["server"][listener]
        assert tls["client_auth_type"] == REQUIRE and tls["client_ca_file"] == f"{TLS_DIR}/ca.crt", listener
    _client(config["memberlist"])


def _render(overrides: str) -> list[Manifest]:
    lib = repo_dir("stack") / "lib"
    out = json.loads(
        _gojsonnet.evaluate_snippet("test", f"(import 'mop/mop.libsonnet').new({overrides})", jpathdir=[str(lib)])
    )
    objects: list[Manifest] = []
    flatten(out, "test", objects)
    return objects


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_tempo_mimir_and_loki_require_client_certificates_on_every_listener_and_hop(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    tempo = _config(objects, "tempo", "tempo.yaml")
    _server(tempo)
    for grpc in ("grpc", "http"):
        receiver = tempo["distributor"]["receivers"]["otlp"]["protocols"][grpc]["tls"]
        assert receiver["client_ca_file"] == f"{TLS_DIR}/ca.crt"
    for client in (
        tempo["ingest"]["kafka"],
        tempo["live_store_client"]["grpc_client_config"],
        tempo["backend_scheduler_client"]["grpc_client_config"],
        tempo["querier"]["frontend_worker"]["grpc_client_config"],
    ):
        _client(client)
    (remote_write,) = tempo["metrics_generator"]["storage"]["remote_write"]
    assert remote_write["url"].startswith("https://") and remote_write["tls_config"]["cert_file"]
    mimir = _config(objects, "mimir", "mimir.yaml")
    _server(mimir)
    for client in (
        mimir["ingester_client"]["grpc_client_config"],
        mimir["frontend_worker"]["grpc_client_config"],
        mimir["query_scheduler"]["grpc_client_config"],
        mimir["querier"]["store_gateway_client"],
        mimir["ruler"]["ruler_client"],
        mimir["alertmanager"]["alertmanager_client"],
        mimir["blocks_storage"]["bucket_store"]["chunks_cache"]["memcached"],
    ):
        _client(client)
    assert mimir["ruler"]["alertmanager_url"].startswith("https://")
    loki = _config(objects, "loki", "loki.yaml")
    _server(loki)
    for client in ("ingester_client", "frontend_worker", "query_scheduler"):
        _client(loki[client]["grpc_client_config"])
    memcached = find(objects, "Deployment", "memcached")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "-Z" in memcached and any("ssl_verify_mode=2" in a for a in memcached)
    kafka = find(objects, "StatefulSet", "kafka")["spec"]["template"]["spec"]["containers"][0]["env"]
    settings = {e["name"]: e.get("value") for e in kafka}
    assert settings["KAFKA_SSL_CLIENT_AUTH"] == "required"
    assert settings["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] == "SSL:SSL,CONTROLLER:SSL"


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_alloy_and_obi_speak_mtls_and_nothing_is_insecure(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    alloy = find(objects, "ConfigMap", "alloy")["data"]["config.alloy"]
    assert "insecure" not in alloy
    # every OTLP receiver requires a client certificate; Alloy's own server too
    receivers = re.findall(r'otelcol\.receiver\.otlp "[a-z]+" \{(.*?)\n    \}', alloy, re.S)
    assert len(receivers) == 2 and all(r.count("client_ca_file") == r.count("endpoint") for r in receivers)
    assert 'client_auth_type = "RequireAndVerifyClientCert"' in alloy
    # every client inside the stack checks the server's name and presents Alloy's certificate
    for service in ("alloy-headless", "tempo-distributor", "loki", "mimir"):
        assert f'server_name = "{service}.mop.svc.cluster.local"' in alloy, service
    for url in re.findall(r'url\s+= "([^"]+)"', alloy) + re.findall(r'endpoint = "([^"]+)"', alloy):
        if ".mop.svc" in url and "://" in url:
            assert url.startswith("https://"), url
    args = find(objects, "StatefulSet", "alloy")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--cluster.enable-tls=true" in args
    obi = yaml.safe_load(find(objects, "ConfigMap", "obi")["data"]["obi.yaml"])
    assert "prometheus_export" not in obi  # metrics go over OTLP/mTLS too, nothing scrapes OBI in the clear
    for export in ("otel_traces_export", "otel_metrics_export"):
        assert obi[export]["endpoint"] == "https://alloy.mop.svc.cluster.local:4317"
    env_vars = {
        e["name"] for e in find(objects, "DaemonSet", "obi")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert {
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    } <= (env_vars)


def test_grafana_serves_https_to_viewers_and_presents_its_certificate_to_the_backends(dev: list[Manifest]) -> None:
    pod = find(dev, "Deployment", "grafana")["spec"]["template"]["spec"]
    settings = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert settings["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert settings["GF_SERVER_PROTOCOL"] == "https"
    text = find(dev, "ConfigMap", "grafana-provisioning")["data"]["datasources.yaml"]
    for source in yaml.safe_load(text)["datasources"]:
        assert source["url"].startswith("https://"), source["name"]
        assert source["jsonData"]["tlsAuth"] is True and source["jsonData"]["tlsAuthWithCACert"] is True
        assert source["secureJsonData"]["tlsClientCert"] == "$__file{/etc/mop/tls/tls.crt}"


@pytest.mark.parametrize(("env", "profile"), COMBINATIONS)
def test_every_mounted_certificate_is_issued_by_cert_manager_for_the_services_it_serves(
    stacks: dict[Any, list[Manifest]], env: str, profile: str
) -> None:
    objects = stacks[(env, profile)]
    certificates = {c["spec"]["secretName"]: c for c in objects if c["kind"] == "Certificate"}
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    mounting = 0
    for workload in (o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}):
        pod = workload["spec"]["template"]["spec"]
        secrets = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v and v["name"] == "tls"}
        if workload["metadata"]["name"] == "minio":
            continue  # dev's in-cluster object store: see stack/README.md
        assert len(secrets) == 1, f"{workload['metadata']['name']} mounts no certificate"
        (secret,) = secrets
        cert = certificates[secret]
        assert cert["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "mop-ca"}
        assert "client auth" in cert["spec"]["usages"]
        assert all(
            m["mountPath"] == TLS_DIR
            for c in containers(workload)
            for m in c.get("volumeMounts", [])
            if m["name"] == "tls"
        )
        named = {n.split(".")[0] for n in cert["spec"].get("dnsNames", []) if not n.startswith("*")}
        assert named <= services, named - services
        mounting += 1
    assert mounting >= 12
    assert find(objects, "ClusterIssuer", "mop-ca")["spec"]["ca"]["secretName"] == "mop-ca"
    root = find(objects, "Certificate", "mop-ca")
    assert root["spec"]["isCA"] is True and root["metadata"]["namespace"] == "cert-manager"


def test_bring_your_own_ca_replaces_the_stacks_ca() -> None:
    objects = _render("{env: 'dev', tls: {issuer: {kind: 'ClusterIssuer', name: 'corp-ca'}}}")
    assert not [o for o in objects if o["kind"] == "ClusterIssuer" or o["metadata"]["name"] == "mop-ca"]
    issuers = {json.dumps(o["spec"]["issuerRef"]) for o in objects if o["kind"] == "Certificate"}
    assert issuers == {json.dumps({"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "corp-ca"})}
