"""Webhook URLs from Kubernetes Secrets, cached briefly, and the masked form used in every message.

A webhook URL is a credential: it appears in no log line, exception, Event or annotation. Code that
needs to name a webhook uses `mask_url`.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from pydantic import SecretStr
from urllib3.exceptions import HTTPError as Urllib3Error

from canary.notify.destinations import SecretLocation


def mask_url(url: str) -> str:
    """`https://hooks.slack.com/services/T…/***`: scheme and host, never the path's secret parts."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    segments = [s for s in parts.path.split("/") if s]
    shown = f"/{segments[0]}/{segments[1][:1]}…" if len(segments) >= 2 and segments[0] == "services" else ""
    return f"{parts.scheme}://{host}{port}{shown}/***"


class SecretError(Exception):
    """A webhook URL could not be read. `transient`: worth retrying (API unreachable, 5xx, 429)."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class SecretResolver:
    """Reads webhook URLs from Secrets through the Kubernetes API, caching each for `ttl` seconds."""

    def __init__(self, api: CoreV1Api, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[SecretLocation, tuple[float, SecretStr]] = {}

    def url(self, where: SecretLocation) -> SecretStr:
        """The URL in `where`; raises SecretError naming the Secret and key, never the value."""
        return self._cached(where, url=True)

    def token(self, where: SecretLocation) -> SecretStr:
        """The Slack bot token in `where` (one word, no spaces); SecretError as for `url`."""
        return self._cached(where, url=False)

    def _cached(self, where: SecretLocation, url: bool) -> SecretStr:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(where)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        value = self._read(where, url)
        with self._lock:
            self._cache[where] = (now, value)
        return value

    def _read(self, where: SecretLocation, url: bool = True) -> SecretStr:
        try:
            secret = self.api.read_namespaced_secret(where.name, where.namespace)
        except ApiException as exc:
            transient = exc.status is None or exc.status >= 500 or exc.status == 429
            forbidden = (
                "forbidden: the controller may not read it "
                f"(grant it with: canary rbac grant-secrets -n {where.namespace} --secret {where.name} --apply)"
            )
            what = {404: "not found", 403: forbidden}.get(exc.status or 0, f"API answered {exc.status} {exc.reason}")
            raise SecretError(f"{where}: {what}", transient=transient) from None
        except (Urllib3Error, OSError) as exc:
            raise SecretError(f"{where}: Kubernetes API unreachable: {type(exc).__name__}", transient=True) from None
        data = secret.data or {}
        if where.key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise SecretError(f"{where}: no such key (keys: {keys})", transient=False)
        try:
            text = base64.b64decode(data[where.key], validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise SecretError(f"{where}: value is not base64-encoded UTF-8 text", transient=False) from None
        if url and (not text.startswith(("https://", "http://")) or any(c.isspace() for c in text)):
            raise SecretError(f"{where}: value is not an http(s) URL", transient=False)
        if not url and (not text or any(c.isspace() for c in text)):
            raise SecretError(f"{where}: value is not a bot token (one word, like xoxb-...)", transient=False)
        return SecretStr(text)
