"""Raw JSON calls through the generated client, error classification and Kubernetes time formats.

Every call goes through the real `kubernetes` client methods with `_preload_content=False`, so objects
stay plain JSON dicts with camelCase keys exactly as on the wire (no lossy model round trip).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

JsonObject = dict[str, Any]

REQUEST_TIMEOUT: tuple[float, float] = (5.0, 30.0)
"""(connect, read) seconds for every non-watch request."""


class KubeResponseError(RuntimeError):
    """The API server answered 2xx with a body that is not a JSON object."""


class KubeApiError(RuntimeError):
    """A request failed; the message names the operation and the object, then the cause."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {describe(cause)}")
        self.status = status_of(cause)
        """HTTP status (0 for transport failures), None when the server was not reached."""


def call_json(method: Callable[..., Any], *args: Any, timeout: Any = REQUEST_TIMEOUT, **kwargs: Any) -> JsonObject:
    """Call a generated client method and return the response body as a JSON dict.

    Raises `ApiException` on non-2xx answers and urllib3 errors when the server is unreachable.
    """
    resp = method(*args, _preload_content=False, _request_timeout=timeout, **kwargs)
    try:
        data = resp.data
    finally:
        resp.release_conn()
    return _json_object(data, getattr(method, "__name__", repr(method)))


def send_json(
    api_client: ApiClient,
    method: str,
    path: str,
    body: JsonObject,
    *,
    path_params: dict[str, str],
    timeout: Any = REQUEST_TIMEOUT,
    content_type: str = "application/json",
) -> JsonObject:
    """POST, PUT or PATCH `body` exactly as given to `path` (a template like
    `/api/v1/namespaces/{namespace}/events`); a PATCH names its patch type in `content_type`.

    The generated create/replace methods validate the body into a model first, which reformats
    MicroTime fields (dropping `.000000`, which the API server rejects) and refuses fields the model
    does not know; this goes through the same `ApiClient` (auth, TLS, host) without that round trip.
    """
    request = api_client.param_serialize(
        method,
        path,
        path_params=path_params,
        query_params=[],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(*request, _request_timeout=timeout)
    data = resp.read()
    if not 200 <= resp.status <= 299:
        raise ApiException.from_response(http_resp=resp, body=None, data=None)
    return _json_object(data, f"{method} {path}")


def _json_object(data: bytes, what: str) -> JsonObject:
    try:
        obj = json.loads(data)
    except ValueError as e:
        raise KubeResponseError(f"{what}: response is not JSON: {data[:200]!r}") from e
    if not isinstance(obj, dict):
        raise KubeResponseError(f"{what}: response is not a JSON object: {data[:200]!r}")
    return obj


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an `ApiException` (0 for client-side transport failures), else None."""
    return exc.status if isinstance(exc, ApiException) else None


def describe(exc: BaseException) -> str:
    """One line: HTTP status and the API server's Status message, or the transport error."""
    if isinstance(exc, ApiException):
        message = exc.reason or ""
        if exc.body:
            try:
                body = json.loads(exc.body)
                message = body.get("message") or message
            except (ValueError, AttributeError):
                message = f"{message}: {str(exc.body)[:200]}"
        return f"HTTP {exc.status}: {message}"
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if not errors:
            return f"client-side validation failed: {exc}"
        loc = ".".join(str(p) for p in errors[0]["loc"])
        return f"client-side validation failed at {loc}: {errors[0]['msg']}"
    return f"{type(exc).__name__}: {exc}"


def now() -> datetime:
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    """Kubernetes `Time`: RFC 3339 in UTC with second precision, e.g. `2026-01-02T15:04:05Z`."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(t: datetime) -> str:
    """Kubernetes `MicroTime`: RFC 3339 in UTC with microseconds, e.g. `2026-01-02T15:04:05.000000Z`."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> datetime | None:
    """Parse a `Time`/`MicroTime` string; None when absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
