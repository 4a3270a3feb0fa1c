"""The HTTP client the Tempo and Loki sources share: settings, auth headers, TLS, and one bounded GET.

Every GET is bounded as `canary.sources.limits` says (the query's and the tick's deadline, a body
size cap, JSON that cannot crash the parser); a 429 (or a 503 with Retry-After) is waited out once
when the wait fits in the deadline. Any failure leaves as a `BackendFailure` carrying a BackendError
that names the request and the reason, never as an httpx, JSON or validation exception.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from canary.samples import Backend, BackendError, BackendErrorKind
from canary.sources import limits
from canary.sources.tls import client_files_problem, httpx_verify

_BODY_QUOTE_LIMIT = 500

S = TypeVar("S", bound=BaseModel)


class HttpBackendSettings(BaseModel):
    """Where an HTTP backend is and how to talk to it."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(min_length=1)
    """Base URL of the backend's query API, e.g. `http://tempo:3200` or `http://loki:3100`."""
    tenant: str | None = None
    """Sent as `X-Scope-OrgID` when set (a multi-tenant backend)."""
    bearer_token: SecretStr | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    """PEM bundle to verify the backend's certificate with, instead of the system's."""
    cert_file: Path | None = None
    """Client certificate (PEM) for a backend that requires one (the MOP stack's mTLS), with `key_file`."""
    key_file: Path | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    """Deadline of one query, body included (the tick's deadline may shorten it)."""

    @model_validator(mode="after")
    def _client_certificate(self) -> HttpBackendSettings:
        problem = client_files_problem(self.ca_file, self.cert_file, self.key_file)
        if problem is not None:
            raise ValueError(problem)
        return self


class BackendFailure(Exception):
    """Carries a BackendError out of a request (the sources turn it into data, never let it escape)."""

    def __init__(self, error: BackendError) -> None:
        super().__init__(str(error))
        self.error = error


class JsonClient:
    """GETs JSON answers from one backend within the bounds of `canary.sources.limits`."""

    def __init__(
        self, settings: HttpBackendSettings, backend: Backend, max_body_bytes: int = limits.MAX_BODY_BYTES
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.max_body_bytes = max_body_bytes
        headers = {"Accept": "application/json"}
        if settings.tenant:
            headers["X-Scope-OrgID"] = settings.tenant
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        self._client = httpx.Client(
            base_url=settings.url.rstrip("/"),
            headers=headers,
            verify=httpx_verify(settings.verify_tls, settings.ca_file, settings.cert_file, settings.key_file),
            timeout=settings.timeout_seconds,
        )

    def close(self) -> None:
        self._client.close()

    def error(self, query: str, kind: BackendErrorKind, reason: str) -> BackendError:
        return BackendError(backend=self.backend, query=query, kind=kind, reason=reason)

    def get(self, path: str, params: dict[str, str], query: str, shape: type[S]) -> S:
        """The answer to one GET, validated as `shape`; any failure is a BackendFailure."""
        where = f"GET {path}"
        deadline = limits.query_deadline(self.settings.timeout_seconds)
        for attempt in (1, 2):
            status, reason_phrase, body, wait = self._fetch(path, params, query, deadline)
            if status == 429 or (status == 503 and wait is not None):
                honoured = wait is not None and wait <= limits.MAX_RETRY_AFTER and wait < limits.left(deadline)
                if attempt == 1 and honoured and wait is not None:
                    time.sleep(wait)
                    continue
                after = f", Retry-After {wait:g}s" if wait is not None else ""
                message = quote_body(body.decode("utf-8", "replace")) or reason_phrase
                reason = f"{where}: rate limited: HTTP {status}{after}: {message}"
                raise BackendFailure(self.error(query, BackendErrorKind.LIMIT, reason))
            break
        text = body.decode("utf-8", "replace")
        if status != 200:
            message = quote_body(text) or reason_phrase
            raise BackendFailure(self.error(query, BackendErrorKind.HTTP, f"{where}: HTTP {status}: {message}"))
        try:
            parsed: Any = limits.loads(body)
        except ValueError as exc:
            reason = f"{where}: answer is not JSON ({str(exc)[:100]}): {quote_body(text)!r}"
            raise BackendFailure(self.error(query, BackendErrorKind.MALFORMED, reason)) from None
        try:
            return shape.model_validate(parsed)
        except ValidationError as exc:
            reason = f"{where}: {shape_error(exc)}"
            raise BackendFailure(self.error(query, BackendErrorKind.MALFORMED, reason)) from None
        except RecursionError:
            reason = f"{where}: answer nested too deeply"
            raise BackendFailure(self.error(query, BackendErrorKind.MALFORMED, reason)) from None

    def _fetch(
        self, path: str, params: dict[str, str], query: str, deadline: float
    ) -> tuple[int, str, bytes, float | None]:
        """(status, reason phrase, body, Retry-After seconds); failures and broken bounds raise."""
        where = f"GET {path}"
        remaining = limits.left(deadline)
        late = f"{where}: no answer within {self.settings.timeout_seconds:g}s (or the tick's deadline)"
        if remaining <= 0:
            raise BackendFailure(self.error(query, BackendErrorKind.TIMEOUT, late))
        try:
            with self._client.stream("GET", path, params=params, timeout=remaining) as response:
                chunks = response.iter_bytes()
                body = limits.read_body(lambda: next(chunks, b""), deadline, self.max_body_bytes, where)
                return (response.status_code, response.reason_phrase, body,
                        limits.retry_after(response.headers.get("Retry-After")))
        except limits.LimitExceeded as exc:
            kind = BackendErrorKind.TIMEOUT if exc.timeout else BackendErrorKind.LIMIT
            raise BackendFailure(self.error(query, kind, str(exc))) from None
        except httpx.TimeoutException:
            raise BackendFailure(self.error(query, BackendErrorKind.TIMEOUT, late)) from None
        except (httpx.HTTPError, UnicodeError) as exc:
            reason = f"{where}: cannot reach {self.settings.url}: {exc}"
            raise BackendFailure(self.error(query, BackendErrorKind.CONNECTION, reason)) from None


def quote_body(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _BODY_QUOTE_LIMIT else text[:_BODY_QUOTE_LIMIT] + "..."


def shape_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".") or "body"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"unexpected answer shape at {where}: {first['msg']}{more}"
