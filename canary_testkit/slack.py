"""A Slack incoming-webhook receiver on 127.0.0.1 for the tests and `canary demo`.

It checks what Slack checks (JSON body, `text` or `blocks`, Block Kit limits) and answers what
Slack answers: 200 `ok`, or a scripted reply (429 with `Retry-After`, 500, 404 `channel_not_found`,
400 `invalid_payload`, 403 `action_prohibited`, 410 `channel_is_archived`, or a hang). Every
request is recorded with its receive time.

    with SlackSim() as slack:
        slack.script(Reply.rate_limited(1), Reply.ok())
        ...post to slack.url...
        slack.wait_for(2, timeout=5)
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from canary_testkit.httpserver import TEXT, Answer, LocalHTTPServer, QuietHandler

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT = 40000
_TOP_LEVEL = {
    "text", "blocks", "attachments", "channel", "username", "icon_emoji", "icon_url", "link_names", "mrkdwn",
    "unfurl_links", "unfurl_media", "thread_ts", "reply_broadcast",
}  # fmt: skip


class _Canned:
    """A named reply of Slack's: `Reply.channel_not_found()` answers `404 channel_not_found`."""

    def __init__(self, status: int, body: str) -> None:
        self.status, self.body = status, body

    def __get__(self, instance: Reply | None, owner: type[Reply]) -> Callable[[], Reply]:
        return lambda: owner(self.status, self.body)


@dataclass(frozen=True)
class Reply:
    """How the sim answers one request."""

    status: int = 200
    body: str = "ok"
    headers: tuple[tuple[str, str], ...] = ()
    hang: bool = False
    """Hold the request until `SlackSim.release()` (or the sim stops), then answer 200 `ok`."""

    ok = _Canned(200, "ok")
    server_error = _Canned(500, "internal_error")
    channel_not_found = _Canned(404, "channel_not_found")
    invalid_payload = _Canned(400, "invalid_payload")
    action_prohibited = _Canned(403, "action_prohibited")
    channel_is_archived = _Canned(410, "channel_is_archived")

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Reply:
        return cls(429, "rate_limited", (("Retry-After", str(retry_after)),))

    @classmethod
    def hang_up(cls) -> Reply:
        return cls(hang=True)

    def answer(self) -> Answer:
        """The HTTP answer: a Content-Type among `headers` wins over text/plain."""
        kind = next((v for k, v in self.headers if k.lower() == "content-type"), TEXT)
        rest = tuple((k, v) for k, v in self.headers if k.lower() != "content-type")
        return Answer(self.status, self.body.encode(), kind, rest)


@dataclass
class Received:
    """One request as the sim saw it."""

    at: float
    """`time.monotonic()` when the request was read."""
    path: str
    body: bytes
    payload: dict[str, Any] | None
    problems: list[str]
    """Why Slack would reject the payload; empty when it is valid."""
    status: int | None = None
    """What was answered (0: the client had gone); None while a hanging request is held."""
    answered_at: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _text_problems(obj: Any, where: str, limit: int, types: tuple[str, ...]) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in types:
        return [f"{where}: must be a text object of type {' or '.join(types)}"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}.text: must be a non-empty string"]
    if len(text) > limit:
        return [f"{where}.text: must be at most {limit} characters, got {len(text)}"]
    return []


def _block_problems(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"{where}: must be an object"]
    kind = block.get("type")
    if kind == "header":
        return _text_problems(block.get("text"), f"{where}.text", MAX_HEADER, ("plain_text",))
    if kind == "divider":
        return []
    if kind == "section":
        problems = []
        if "text" not in block and "fields" not in block:
            problems.append(f"{where}: a section must have text or fields")
        if "text" in block:
            problems += _text_problems(block["text"], f"{where}.text", MAX_SECTION_TEXT, ("plain_text", "mrkdwn"))
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 0 < len(fields) <= MAX_FIELDS:
                problems.append(f"{where}.fields: must hold 1 to {MAX_FIELDS} items")
            else:
                for i, f in enumerate(fields):
                    problems += _text_problems(f, f"{where}.fields[{i}]", MAX_FIELD_TEXT, ("plain_text", "mrkdwn"))
        return problems
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
            return [f"{where}.elements: must hold 1 to {MAX_CONTEXT_ELEMENTS} items"]
        problems = []
        for i, e in enumerate(elements):
            if not (isinstance(e, dict) and e.get("type") == "image"):
                problems += _text_problems(e, f"{where}.elements[{i}]", MAX_SECTION_TEXT, ("plain_text", "mrkdwn"))
        return problems
    return [f"{where}.type: unknown block type {kind!r}"]


def check_payload(body: bytes) -> tuple[dict[str, Any] | None, list[str], str]:
    """(payload, problems, Slack's error code) for a request body, as Slack would judge it."""
    payload, problems, code = check_json(body)
    if payload is None:
        return payload, problems, code
    unknown = sorted(set(payload) - _TOP_LEVEL)
    if unknown:
        return payload, [f"unknown top-level fields: {', '.join(unknown)}"], "invalid_payload"
    text, blocks = payload.get("text"), payload.get("blocks")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        return payload, [f"text: must be a string of at most {MAX_TEXT} characters"], "invalid_payload"
    if not text and not blocks and not payload.get("attachments"):
        return payload, ["needs text or blocks"], "no_text"
    if blocks is None:
        return payload, [], ""
    if not isinstance(blocks, list):
        return payload, ["blocks: must be a list"], "invalid_blocks"
    problems = [f"blocks: at most {MAX_BLOCKS} blocks, got {len(blocks)}"] if len(blocks) > MAX_BLOCKS else []
    for index, block in enumerate(blocks):
        problems += _block_problems(block, f"blocks[{index}]")
    return payload, problems, "invalid_blocks" if problems else ""


def check_json(body: bytes) -> tuple[dict[str, Any] | None, list[str], str]:
    """(payload, problems, error code) for a generic webhook: any JSON object."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [f"body is not JSON: {exc}"], "invalid_payload"
    if not isinstance(payload, dict):
        return None, ["body must be a JSON object"], "invalid_payload"
    return payload, [], ""


class SlackSim(LocalHTTPServer):
    """An incoming webhook at `url` on 127.0.0.1; `script()` the next replies, then read `requests`."""

    name = "slack-sim"

    def __init__(self, port: int = 0, hang_limit: float = 30.0, slack: bool = True) -> None:
        """`slack=False`: a generic JSON webhook that accepts any JSON object (no Block Kit checks).

        Also Slack's Web API `chat.postMessage` at `api_url`: a Bearer `bot_token` is required
        (else `{"ok": false, "error": "invalid_auth"}`), so is a `channel` in `channels` (else
        `channel_not_found`); like Slack, the answer is HTTP 200 with `ok` true or false."""
        super().__init__(port=port)
        self.token = secrets.token_hex(12)
        self.bot_token = "xoxb-" + secrets.token_hex(12)
        self.channels = {"#checkout", "#general"}
        self.slack = slack
        self.hang_limit = hang_limit
        self._replies: deque[Reply] = deque()
        self._default = Reply.ok()
        self._requests: list[Received] = []
        self._changed = threading.Condition()
        self._release = threading.Event()

    @property
    def path(self) -> str:
        return f"/services/T0SIM/B0SIM/{self.token}"

    @property
    def url(self) -> str:
        """The webhook URL; like a real one, it is a credential (the token is random)."""
        return self.base_url + self.path

    @property
    def api_url(self) -> str:
        """Base of the simulated Web API (as `https://slack.com/api`)."""
        return self.base_url + "/api"

    def stop(self) -> None:
        """Stop serving; held (hanging) requests are answered first."""
        self._release.set()
        super().stop()

    def script(self, *replies: Reply) -> None:
        """Answer the next valid requests with `replies`, in order; afterwards the default."""
        with self._changed:
            self._replies.extend(replies)

    def set_default(self, reply: Reply) -> None:
        """How requests are answered once the script is used up (initially 200 `ok`)."""
        with self._changed:
            self._default = reply

    def release(self) -> None:
        """Answer every held (hanging) request, and every later one, without holding it."""
        self._release.set()

    @property
    def requests(self) -> list[Received]:
        with self._changed:
            return list(self._requests)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Payloads accepted with 200 `ok`: what a Slack channel would show."""
        return [r.payload for r in self.requests if r.status == 200 and r.payload is not None and not r.problems]

    def wait_for(self, count: int, timeout: float, answered: bool = False) -> bool:
        """Until `count` requests have arrived (and been answered, if `answered`); False on timeout."""

        def enough() -> bool:
            done = [r for r in self._requests if not answered or r.status is not None]
            return len(done) >= count

        with self._changed:
            return self._changed.wait_for(enough, timeout)

    def _next_reply(self) -> Reply:
        with self._changed:
            return self._replies.popleft() if self._replies else self._default

    def _record(self, received: Received) -> None:
        with self._changed:
            self._requests.append(received)
            self._changed.notify_all()

    def _answered(self, received: Received, status: int) -> None:
        with self._changed:
            received.status = status
            received.answered_at = time.monotonic()
            self._changed.notify_all()

    def _api_reply(self, payload: dict[str, Any] | None, problems: list[str], authorization: str) -> Reply:
        """`chat.postMessage`: always HTTP 200, `ok` false with Slack's error names."""

        def answer(**body: Any) -> Reply:
            return Reply(200, json.dumps(body), (("Content-Type", "application/json; charset=utf-8"),))

        if authorization != f"Bearer {self.bot_token}":
            return answer(ok=False, error="invalid_auth" if authorization else "not_authed")
        if problems or payload is None:
            return answer(ok=False, error="invalid_blocks" if payload else "invalid_json")
        if payload.get("channel") not in self.channels:
            return answer(ok=False, error="channel_not_found")
        scripted = self._next_reply()
        if scripted != Reply.ok():
            return scripted
        return answer(ok=True, channel="C0SIM", ts=f"{time.time():.6f}")

    def handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                payload, problems, code = check_payload(body) if sim.slack else check_json(body)
                received = Received(time.monotonic(), self.path, body, payload, problems, headers=dict(self.headers))
                sim._record(received)
                try:
                    if self.path == "/api/chat.postMessage":
                        reply = sim._api_reply(payload, problems, self.headers.get("Authorization", ""))
                        if '"ok": false' in reply.body:
                            received.problems = [*received.problems, json.loads(reply.body)["error"]]
                    elif self.path != sim.path:
                        reply = Reply(404, "no_service")
                    elif problems:
                        reply = Reply(400, code)
                    else:
                        reply = sim._next_reply()
                        if reply.hang:
                            sim._release.wait(sim.hang_limit)
                    # recorded before the answer is written, so a client that has it can read it here
                    sim._answered(received, reply.status)
                    self.send(reply.answer())
                except OSError:
                    sim._answered(received, 0)

            def do_GET(self) -> None:
                self.send(Answer.text("method_not_allowed", 405))

        return Handler
