"""How notifications look (Grafana links, cluster name) and how hard delivery tries."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_URL = re.compile(r"https?://[^\s<>|]+")


class RenderSettings(BaseModel):
    """What a Slack message links to and says about where it comes from."""

    model_config = ConfigDict(frozen=True)

    cluster: str = "kubernetes"
    """Cluster name shown in the context line."""
    grafana_url: str | None = None
    """Grafana base URL as on-call's browser reaches it (from outside the cluster), e.g.
    `https://grafana.example.com`. None: no links, trace ids shown as text."""
    tempo_datasource_uid: str = "mop-tempo"
    """UID of the Tempo datasource, for Explore links (the MOP stack provisions `mop-tempo`)."""
    loki_datasource_uid: str = "mop-loki"
    """UID of the Loki datasource, for Explore links (the MOP stack provisions `mop-loki`)."""
    dashboard_uid: str = "service-red"
    """UID of the dashboard linked from every message (variables: namespace, deployment, service)."""

    @field_validator("grafana_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _URL.fullmatch(value):
            raise ValueError(f"grafana_url must be an http(s) URL without spaces, '<', '>' or '|', got {value!r}")
        return value.rstrip("/")


class DeliveryPolicy(BaseModel):
    """Pacing and retries per webhook. Defaults ride out an hour-long Slack outage."""

    model_config = ConfigDict(frozen=True)

    min_interval: float = Field(1.0, ge=0)
    """Seconds between two requests to the same webhook (Slack allows about one message per second)."""
    timeout: float = Field(10.0, gt=0)
    """Seconds to wait for one HTTP answer; a timeout is retried like a 5xx."""
    backoff_base: float = Field(2.0, gt=0)
    """First retry delay after a 5xx or timeout; doubled after each failure, with jitter."""
    backoff_cap: float = Field(300.0, gt=0)
    """Longest delay between two retries."""
    max_attempts: int = Field(100, ge=1)
    """Give up after this many failed attempts (5xx, timeouts; 429s do not count)..."""
    max_age: float = Field(7200.0, gt=0)
    """...or when the next attempt would come later than this many seconds after the message was queued."""

    @model_validator(mode="after")
    def _cap_above_base(self) -> DeliveryPolicy:
        if self.backoff_cap < self.backoff_base:
            raise ValueError(
                f"backoff_cap ({self.backoff_cap:g}s) must be at least backoff_base ({self.backoff_base:g}s)"
            )
        return self

    def backoff(self, failures: int, jitter: float) -> float:
        """Delay before the retry that follows `failures` consecutive failures (>= 1).

        "Equal jitter": half of the exponential delay is fixed, half is `jitter` (0..1) of it, so
        retries from many controllers spread out while each still waits at least half the delay.
        """
        delay = min(self.backoff_cap, self.backoff_base * 2 ** min(failures - 1, 32))
        return delay / 2 + delay / 2 * jitter
