"""A Loki-compatible HTTP server on 127.0.0.1 for the tests and `canary demo`.

`LokiServer` holds log lines (`add_lines`) and answers the Loki 3.8 HTTP API in the shapes recorded from
a real Loki (tests/fixtures/loki/): `/loki/api/v1/query_range` (log queries), `/loki/api/v1/query`
(refuses log queries, as Loki does), `/loki/api/v1/labels`, `/loki/api/v1/status/buildinfo`, `/ready`.

What the recording showed and this server keeps:
- Structured metadata (`trace_id`, `span_id`) and Loki's own `detected_level` are merged into each
  result's `stream` labels, so lines with different trace ids are different streams; with the header
  `X-Loki-Response-Encoding-Flags: categorize-labels` the stream holds only the real labels and each
  entry gets a third element `{"structuredMetadata": {...}, "parsed": {...}}`.
- Streams are sorted by their label set, not by time; `limit` (default 100, at most 5000) keeps the
  newest lines (`direction=backward`, the default) or the oldest (`forward`).
- `| logfmt` adds the line's fields as labels; a field named like a structured-metadata key comes back
  as `<name>_extracted`. `| json` on a line that is not JSON adds `__error__="JSONParserErr"`.
- Timestamps in entries are nanosecond strings; `start`/`end` are accepted as nanoseconds, seconds or
  RFC 3339. Errors are 400 `text/plain; charset=utf-8` with Loki's wording.

LogQL subset: a stream selector `{a="x", b=~"re", c!="y", d!~"re"}` then any number of stages:
line filters `|= != |~ !~`, `| logfmt`, `| json`, and label filters `| name = "v"` (`= != =~ !~`).

Faults for tests: `inject(Fault.HTTP_500 | HANG | GARBAGE)`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from canary_testkit.httpserver import Answer, LocalHTTPServer, RecordedRequest, get_handler

NS: Final = 1_000_000_000
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 5000
DEFAULT_SINCE_NS: Final = 3600 * NS
BUILD_INFO: Final = {
    "version": "3.8.0-sim",
    "revision": "canary-sim",
    "branch": "main",
    "buildUser": "",
    "buildDate": "",
    "goVersion": "",
}
CATEGORIZE: Final = "categorize-labels"
_LEVEL: Final = re.compile(r'(?:^|\s)level=("?)(\w+)\1|"level"\s*:\s*"(\w+)"')
_LOGFMT: Final = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


class LogLine(BaseModel):
    """One pushed line: its stream labels, time, text and structured metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: dict[str, str] = Field(min_length=1)
    ts_ns: int = Field(ge=0)
    line: str
    structured_metadata: dict[str, str] = {}

    def detected_level(self) -> str:
        """What Loki adds as `detected_level`: the line's logfmt or JSON `level`, else `unknown`."""
        match = _LEVEL.search(self.line)
        return (match.group(2) or match.group(3)).lower() if match else "unknown"


def recorded_lines(document: dict[str, Any], shift_ns: int = 0) -> list[LogLine]:
    """Lines of the data set pushed to a real Loki (`ingested_log_lines.json` of the Loki fixtures),
    moved in time by `shift_ns` (to replay a recording as if it had just happened)."""
    return [
        LogLine(
            labels=record["labels"],
            ts_ns=record["ts_ns"] + shift_ns,
            line=record["line"],
            structured_metadata=record.get("structured_metadata", {}),
        )
        for record in document["lines"]
    ]


# ================================================================================================
# LogQL subset
# ================================================================================================


class LogQLError(ValueError):
    """A query Loki would refuse; the message is Loki's."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Stage:
    kind: str
    """line (line filter), label (label filter), logfmt, json."""
    op: str = ""
    value: str = ""
    name: str = ""


@dataclass(frozen=True)
class LogQuery:
    selector: tuple[Matcher, ...]
    stages: tuple[Stage, ...]


_MATCHER: Final = re.compile(
    r'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|`[^`]*`)\s*'
)
_LINE_FILTER: Final = re.compile(r'\s*(?P<op>\|=|!=|\|~|!~)\s*(?P<value>"(?:[^"\\]|\\.)*"|`[^`]*`)')
_LABEL_FILTER: Final = re.compile(
    r'\s*\|\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|==|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|`[^`]*`)'
)
_PARSER: Final = re.compile(r"\s*\|\s*(?P<name>logfmt|json)\b")


def _string(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    return str(json.loads(token))


def parse(text: str) -> LogQuery:
    """A log query of the supported subset; LogQLError carries Loki's message."""
    if not text.strip():
        raise LogQLError("parse error : syntax error: unexpected $end")
    position = len(text) - len(text.lstrip())
    if not text.startswith("{", position):
        word = text.split()[0]
        raise LogQLError(f"parse error at line 1, col 1: syntax error: unexpected IDENTIFIER near {word!r}")
    position += 1
    matchers: list[Matcher] = []
    while True:
        while position < len(text) and text[position] in " \t\n":
            position += 1
        if text.startswith("}", position) and not matchers:
            position += 1
            break
        one = _MATCHER.match(text, position)
        if one is None:
            raise LogQLError(f"parse error at line 1, col {position + 1}: syntax error")
        matchers.append(Matcher(one.group("name"), one.group("op"), _string(one.group("value"))))
        position = one.end()
        if text.startswith(",", position):
            position += 1
        elif text.startswith("}", position):
            position += 1
            break
        else:
            raise LogQLError(
                f"parse error at line 1, col {position + 1}: syntax error: unexpected $end, expecting }} or ,"
            )
    if not any(
        m.op in ("=", "=~") and not re.fullmatch(m.value if m.op == "=~" else re.escape(m.value), "") for m in matchers
    ):
        raise LogQLError(
            "parse error : queries require at least one regexp or equality matcher that does not have an "
            'empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will'
        )
    for m in matchers:
        if m.op in ("=~", "!~"):
            _regex(m.value)
    stages: list[Stage] = []
    while position < len(text) and text[position:].strip():
        for pattern, kind in ((_LINE_FILTER, "line"), (_PARSER, "parser"), (_LABEL_FILTER, "label")):
            found = pattern.match(text, position)
            if found is None:
                continue
            if kind == "line":
                stage = Stage("line", found.group("op"), _string(found.group("value")))
            elif kind == "parser":
                stage = Stage(found.group("name"))
            else:
                op = "=" if found.group("op") == "==" else found.group("op")
                stage = Stage("label", op, _string(found.group("value")), found.group("name"))
            if stage.op in ("|~", "!~", "=~"):
                _regex(stage.value)
            stages.append(stage)
            position = found.end()
            break
        else:
            col = len(text[:position]) + len(text[position:]) - len(text[position:].lstrip()) + 1
            raise LogQLError(f"parse error at line 1, col {col}: syntax error: unexpected {text[position:].split()[0]}")
    return LogQuery(tuple(matchers), tuple(stages))


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise LogQLError(f"parse error : error parsing regexp: {exc}: `{pattern}`") from None


def _logfmt(line: str, taken: Iterable[str]) -> dict[str, str]:
    taken = set(taken)
    out: dict[str, str] = {}
    for key, raw in _LOGFMT.findall(line):
        value = _string(raw) if raw.startswith('"') else raw
        name = re.sub(r"[^A-Za-z0-9_]", "_", key)
        out[f"{name}_extracted" if name in taken else name] = value
    return out


@dataclass
class _Entry:
    line: LogLine
    stream: dict[str, str]
    metadata: dict[str, str]
    parsed: dict[str, str]


def _run(query: LogQuery, line: LogLine) -> _Entry | None:
    """The entry `line` gives under `query`, or None when a stage drops it."""
    if not all(m.matches(line.labels) for m in query.selector):
        return None
    metadata = dict(sorted({**line.structured_metadata, "detected_level": line.detected_level()}.items()))
    parsed: dict[str, str] = {}
    for stage in query.stages:
        if stage.kind == "line":
            if stage.op == "|=":
                keep = stage.value in line.line
            elif stage.op == "!=":
                keep = stage.value not in line.line
            else:
                keep = (re.search(stage.value, line.line) is not None) == (stage.op == "|~")
            if not keep:
                return None
        elif stage.kind == "logfmt":
            parsed.update(_logfmt(line.line, [*line.labels, *metadata]))
        elif stage.kind == "json":
            try:
                document = json.loads(line.line)
            except ValueError:
                document = None
            if isinstance(document, dict):
                parsed.update({k: str(v) for k, v in document.items() if not isinstance(v, dict | list)})
            else:
                parsed.update(
                    {
                        "__error__": "JSONParserErr",
                        "__error_details__": "Value looks like object, but can't find closing '}' symbol",
                    }
                )
        else:
            labels = {**line.labels, **metadata, **parsed}
            if not Matcher(stage.name, stage.op, stage.value).matches(labels):
                return None
    return _Entry(line, dict(line.labels), metadata, parsed)


# ================================================================================================
# The server
# ================================================================================================


class Fault(StrEnum):
    HTTP_500 = "http-500"
    HTTP_400 = "http-400"
    """Refuse the query with 400 text/plain, as Loki refuses a query it cannot run."""
    HANG = "hang"
    """Do not answer until `hang_seconds` pass or the server stops."""
    GARBAGE = "garbage"
    """Answer 200 application/json with a body that is not JSON."""


class _BadRequest(Exception):
    pass


def _json(payload: Any) -> Answer:
    return Answer.json(payload, content_type="application/json; charset=UTF-8")


def _timestamp(name: str, text: str | None, default_ns: int) -> int:
    if not text:
        return default_ns
    try:
        if re.fullmatch(r"\d+", text):
            return int(text) * NS if len(text) <= 10 else int(text)
        if re.fullmatch(r"\d+\.\d*", text):
            return round(float(text) * NS)
        return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * NS)
    except ValueError:
        raise _BadRequest(f"invalid parameter {name!r}: cannot parse {text!r} as a timestamp") from None


class LokiServer(LocalHTTPServer):
    """Loki-compatible HTTP API on 127.0.0.1 over in-memory log lines. Use as a context manager."""

    name = "loki-sim"

    def __init__(
        self,
        *,
        port: int = 0,
        tenant: str | None = None,
        hang_seconds: float = 30.0,
        max_lines: int = 200_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`tenant`: when set, API calls need `X-Scope-OrgID` (401 without; another tenant sees no data)."""
        super().__init__(port=port)
        self.tenant = tenant
        self.hang_seconds = hang_seconds
        self._clock = clock
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self._fault: Fault | None = None
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._requests: deque[RecordedRequest] = deque(maxlen=1000)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return get_handler(self.handle, self.name)

    def stop(self) -> None:
        """Stop serving; requests held by a HANG fault are released."""
        self._release.set()
        super().stop()

    def add_lines(self, lines: Iterable[LogLine]) -> None:
        """Thread-safe; beyond `max_lines` the oldest pushed lines are dropped."""
        with self._lock:
            self._lines.extend(lines)

    def inject(self, fault: Fault | None) -> None:
        """Answer API calls with `fault`; None clears it and releases requests held by HANG."""
        with self._lock:
            self._fault = fault
            if fault is None:
                self._release.set()
                self._release = threading.Event()

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def handle(self, raw_path: str, headers: dict[str, str]) -> Answer:
        request = RecordedRequest.parse(raw_path, headers)
        path, params = request.path, request.params
        with self._lock:
            self._requests.append(request)
            fault = self._fault
        if path == "/ready":
            return Answer.text("ready\n", 200)
        if path == "/loki/api/v1/status/buildinfo":
            return _json(BUILD_INFO)
        if path not in ("/loki/api/v1/query_range", "/loki/api/v1/query", "/loki/api/v1/labels"):
            return Answer.text("404 page not found\n", 404)
        org = headers.get("x-scope-orgid")
        if self.tenant is not None and not org:
            return Answer.text("no org id\n", 401)
        if fault is Fault.HTTP_500:
            return Answer.text("rpc error: code = Internal desc = simulated failure", 500)
        if fault is Fault.HTTP_400:
            return Answer.text("parse error : simulated refusal", 400)
        if fault is Fault.HANG:
            with self._lock:
                release = self._release
            release.wait(self.hang_seconds)
            return Answer.text("simulated hang ended", 503)
        if fault is Fault.GARBAGE:
            return Answer(200, b'{"status":"success","data":{"resultType":"str', "application/json; charset=UTF-8")
        visible = self.tenant is None or org == self.tenant
        with self._lock:
            lines = list(self._lines) if visible else []
        try:
            if path == "/loki/api/v1/labels":
                return _json(self._labels(params, lines))
            if path == "/loki/api/v1/query":
                parse(params.get("query", ""))
                raise _BadRequest(
                    "log queries are not supported as an instant query type, please change your query to a range "
                    "query type"
                )
            categorize = CATEGORIZE in headers.get("x-loki-response-encoding-flags", "")
            return _json(self._query_range(params, lines, categorize))
        except LogQLError as exc:
            return Answer.text(str(exc), 400)
        except _BadRequest as exc:
            return Answer.text(str(exc), 400)

    def _window(self, params: dict[str, str]) -> tuple[int, int]:
        now = int(self._clock() * NS)
        end = _timestamp("end", params.get("end"), now)
        start = _timestamp("start", params.get("start"), end - DEFAULT_SINCE_NS)
        if end < start:
            raise _BadRequest("end timestamp must not be before or equal to start time")
        return start, end

    def _labels(self, params: dict[str, str], lines: Sequence[LogLine]) -> dict[str, Any]:
        start, end = self._window(params)
        names = sorted({k for line in lines if start <= line.ts_ns <= end for k in line.labels})
        return {"status": "success", "data": names}

    def _query_range(self, params: dict[str, str], lines: Sequence[LogLine], categorize: bool) -> dict[str, Any]:
        query = parse(params.get("query", ""))
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise _BadRequest(f"invalid parameter 'limit': {params['limit']!r}") from None
        if limit > MAX_LIMIT:
            raise _BadRequest(
                f"max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {MAX_LIMIT})"
            )
        if limit <= 0:
            raise _BadRequest("limit must be a positive value")
        start, end = self._window(params)
        forward = params.get("direction", "backward").lower() == "forward"
        entries = [e for line in lines if start <= line.ts_ns < end and (e := _run(query, line)) is not None]
        entries.sort(key=lambda e: e.line.ts_ns, reverse=not forward)
        entries = entries[:limit]
        streams: dict[str, tuple[dict[str, str], list[list[Any]]]] = {}
        for entry in entries:
            if categorize:
                labels = entry.stream
                extra: dict[str, Any] = {"structuredMetadata": entry.metadata}
                if entry.parsed:
                    extra["parsed"] = entry.parsed
                value: list[Any] = [str(entry.line.ts_ns), entry.line.line, extra]
            else:
                labels = {**entry.stream, **entry.metadata, **entry.parsed}
                value = [str(entry.line.ts_ns), entry.line.line]
            key = json.dumps(sorted(labels.items()))
            streams.setdefault(key, (dict(sorted(labels.items())), []))[1].append(value)
        result = [{"stream": labels, "values": values} for _, (labels, values) in sorted(streams.items())]
        data: dict[str, Any] = {"resultType": "streams"}
        if categorize:
            data["encodingFlags"] = [CATEGORIZE]
        data["result"] = result
        data["stats"] = {"summary": {"totalEntriesReturned": len(entries), "totalLinesProcessed": len(lines)}}
        return {"status": "success", "data": data}
