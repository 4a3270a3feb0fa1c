"""One HTTP POST of a JSON payload, and what its answer means for delivery.

Uses the standard library's urllib, which logs nothing: the webhook URL is a credential and must not
reach a log line (HTTP client libraries log request URLs at INFO or DEBUG). Redirects are not followed.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum
from typing import Any

from canary import __version__

USER_AGENT = f"mop-canary/{__version__}"
_MAX_BODY = 200


class Result(StrEnum):
    DELIVERED = "delivered"
    RATE_LIMITED = "rate_limited"
    """429: wait `Retry-After`, then send the same message again."""
    RETRY = "retry"
    """5xx, 408, timeout, connection error: back off and retry."""
    PERMANENT = "failed"
    """Any other answer: retrying cannot help (`channel_not_found`, `invalid_payload`, ...)."""


@dataclass(frozen=True)
class Answer:
    result: Result
    detail: str
    """e.g. `HTTP 404 channel_not_found` or `timed out after 10s`; never the URL."""
    retry_after: float | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def _retry_after(headers: Message) -> float | None:
    value = headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def classify(status: int, body: str, headers: Message) -> Answer:
    """What an HTTP answer means for a webhook message. Slack's errors come as text bodies."""
    text = " ".join(body.split())[:_MAX_BODY]
    detail = f"HTTP {status}" + (f" {text}" if text else "")
    if 200 <= status < 300:
        return Answer(Result.DELIVERED, detail)
    if status == 429:
        return Answer(Result.RATE_LIMITED, detail, _retry_after(headers))
    if status >= 500 or status == 408:
        return Answer(Result.RETRY, detail)
    return Answer(Result.PERMANENT, detail)


_BOT_RETRY = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def classify_api(status: int, body: str, headers: Message) -> Answer:
    """What a Slack Web API answer (`chat.postMessage`) means: HTTP 200 with `{"ok": false, "error": ...}`
    is a failure; `ratelimited` and server-side errors are retried, the rest (`channel_not_found`,
    `invalid_auth`, `not_in_channel`, ...) are permanent."""
    if status != 200:
        return classify(status, body, headers)
    try:
        answer = json.loads(body)
    except ValueError:
        return Answer(Result.RETRY, f"HTTP 200 not JSON: {' '.join(body.split())[:_MAX_BODY]}")
    if not isinstance(answer, dict):
        return Answer(Result.RETRY, "HTTP 200 not a JSON object")
    if answer.get("ok") is True:
        return Answer(Result.DELIVERED, "HTTP 200 ok")
    error = str(answer.get("error") or "unknown_error")[:_MAX_BODY]
    if error == "ratelimited":
        return Answer(Result.RATE_LIMITED, f"HTTP 200 {error}", _retry_after(headers))
    return Answer(Result.RETRY if error in _BOT_RETRY else Result.PERMANENT, f"HTTP 200 {error}")


def post_json(url: str, payload: dict[str, Any], timeout: float, token: str | None = None) -> Answer:
    """POST `payload` to `url` once; with `token`, as a Slack Web API call (Bearer token, JSON `ok`).
    Never raises for network trouble; the detail never holds the URL nor the token."""
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(payload, ensure_ascii=False).encode("utf-8"), headers=headers, method="POST"
    )
    judge = classify if token is None else classify_api
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read(4096).decode("utf-8", "replace")
            return judge(response.status, body, response.headers)
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(4096).decode("utf-8", "replace")
        except OSError:
            body = ""
        return judge(exc.code, body, exc.headers)
    except TimeoutError:
        return Answer(Result.RETRY, f"timed out after {timeout:g}s")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return Answer(Result.RETRY, f"timed out after {timeout:g}s")
        return Answer(Result.RETRY, f"connection failed: {exc.reason}")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(Result.RETRY, f"connection failed: {type(exc).__name__}")
    except ValueError:
        return Answer(Result.PERMANENT, "not a valid http(s) URL")
