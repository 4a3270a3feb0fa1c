"""Controller settings: command-line flags, `CANARY_*` environment variables or a YAML config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from canary.config.slo import SecretKeyRef

_NAMESPACED_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"


class ControllerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CANARY_", extra="forbid", env_nested_delimiter="__")

    kubeconfig: str | None = None
    context: str | None = None
    namespaces: list[str] = Field(default_factory=list)
    """Namespaces to watch; empty: all."""
    mimir_url: str
    """Mimir (or Prometheus) base URL including its `/prometheus` prefix."""
    tempo_url: str | None = None
    tempo_end_cutoff_seconds: float = Field(30.0, ge=0)
    """Tempo's `query_frontend.query_end_cutoff`: trace queries end this long before now."""
    loki_url: str | None = None
    """Loki base URL: the canary pods' log lines in rollback evidence."""
    evidence_timeout_seconds: float = Field(30.0, gt=0)
    """How long a rollback message waits for its root-cause evidence before it is sent without it."""
    tenant: str | None = None
    """`X-Scope-OrgID` sent to Mimir, Tempo and Loki."""
    bearer_token: SecretStr | None = None
    verify_tls: bool = True
    tls_ca_file: Path | None = None
    """CA bundle for Mimir's and Tempo's certificates (the MOP stack's CA)."""
    tls_cert_file: Path | None = None
    """Client certificate presented to Mimir and Tempo (the MOP stack requires one), with tls_key_file."""
    tls_key_file: Path | None = None
    trace_sampling_configmap: str | None = Field(None, pattern=_NAMESPACED_NAME)
    """`namespace/name` of the ConfigMap in which the controller publishes the workloads under analysis
    so the MOP stack keeps 100% of their traces (the stack's `mop/mop-canary-sampling`); unset: the
    trace error rate is measured on whatever Tempo holds (unsampled, or probabilistically sampled)."""
    query_timeout_seconds: float = Field(10.0, gt=0)
    leader_elect: bool = False
    lease_namespace: str = "mop-canary"
    lease_name: str = "mop-canary-leader"
    lease_duration_seconds: float = Field(15.0, gt=0)
    renew_deadline_seconds: float = Field(10.0, gt=0)
    retry_period_seconds: float = Field(2.0, gt=0)
    identity: str | None = None
    """Leader-election identity; default: hostname and process id."""
    resync_seconds: float = Field(300.0, gt=0)
    min_interval_seconds: float = Field(5.0, gt=0)
    """Floor of every analysis interval: a shorter one (SLO or annotation) runs at this interval."""
    tick_deadline_seconds: float = Field(60.0, gt=0)
    """Deadline of one tick's backend queries together; what is not answered by then is a backend error."""
    listen_host: str = "0.0.0.0"
    listen_port: int = Field(8080, ge=0, le=65535)
    """/metrics, /healthz and /readyz (on `listen_host`); 0 picks a free port."""
    grafana_url: str | None = None
    """Grafana base URL for links in messages (used when `grafana_external_url` is not set)."""
    grafana_external_url: str | None = None
    """Grafana as on-call's browser reaches it from outside the cluster (e.g. `https://grafana.example.com`);
    links in messages use it. Set it: an in-cluster address does not open from a laptop."""
    cluster_name: str = "kubernetes"
    slack_api_url: str = "https://slack.com/api"
    """Slack's Web API, for SLOs in bot mode (`notify.slack.botTokenSecretRef`, `chat.postMessage`)."""
    slack_default_secret: SecretKeyRef | None = None
    """Controller-wide Slack webhook Secret (in the controller's namespace) for SLOs that name none."""
    controller_namespace: str = "mop-canary"
    log_format: str = "json"


def load_settings(config_file: Path | None, overrides: dict[str, Any]) -> ControllerSettings:
    """Settings from flags, else the config file, else `CANARY_*` environment variables, else defaults."""
    data: dict[str, Any] = {}
    if config_file is not None:
        loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        data.update({k.replace("-", "_"): v for k, v in loaded.items()})
    data.update({k: v for k, v in overrides.items() if v is not None})
    return ControllerSettings(**data)
