"""A Tempo-compatible HTTP server on 127.0.0.1 for the tests and `canary demo`.

`TempoServer` holds a bounded, thread-safe span store (`add_spans`) and answers the Tempo 3.1 HTTP API
in the shapes recorded from a real Tempo (tests/fixtures/tempo/): `/api/metrics/query_range`,
`/api/metrics/query`, `/api/search`, `/api/v2/search/tag/<tag>/values`, `/api/echo`, `/ready` and
`/api/status/buildinfo`. Protobuf-JSON conventions are kept: camelCase, int64 as strings, zero values
omitted, no `series` key in an empty instant answer, 400 errors as text/plain with Tempo's messages.

Metrics follow Tempo's query frontend: the end is clamped to now - 30 s (`query_end_cutoff`), ranges
over 24 h are refused, a range is aligned to the step and its sample at T counts spans whose start
falls in (T-step, T] (the first sample is at T = start), rates are per second, quantiles use Tempo's
power-of-two duration buckets. More than `max_series` series gives a `PARTIAL` answer, as in Tempo.

TraceQL subset: one spanset filter `{ ... }` with `&&`, `||`, parentheses and `= != =~ !~ < <= > >=` on
`resource.*`, `span.*`, `.*` and the intrinsics `kind`, `status`, `name`, `duration`, `statusMessage`
(also as `span:kind`, ...), `span:id`, `trace:id`; then `| select(...)` (search) or one of
`| rate()`, `| count_over_time()`, `| quantile_over_time(duration, .99, ...)` with `by (...)`, and an
optional `with(exemplars=...)` hint. A missing attribute matches nothing (`span.kind` is an attribute
lookup, not the span kind). Syntax errors read like Tempo's.

Faults for tests: `inject(Fault.HTTP_500 | HANG | GARBAGE | PARTIAL)`.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from typing import Any, Final
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canary_testkit.httpserver import Answer, LocalHTTPServer, RecordedRequest, get_handler

NS: Final = 1_000_000_000
BUILD_INFO: Final = {
    "version": "3.1.0-dev",
    "revision": "canary-sim",
    "branch": "main",
    "buildUser": "",
    "buildDate": "",
    "goVersion": "",
}
QUERY_END_CUTOFF_NS: Final = 30 * NS
MAX_DURATION_NS: Final = 24 * 3600 * NS
MAX_INTERVALS: Final = 10_000
MAX_EXEMPLARS: Final = 100
DEFAULT_SEARCH_LIMIT: Final = 20
DEFAULT_SPANS_PER_SPANSET: Final = 3
DEFAULT_SINCE_NS: Final = 3600 * NS
BYTES_PER_SPAN: Final = 256
"""What `inspectedBytes` counts per span looked at (an order of magnitude, like Tempo's)."""


# ================================================================================================
# Spans and the store
# ================================================================================================


class SpanKind(StrEnum):
    UNSPECIFIED = "unspecified"
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class SpanStatus(StrEnum):
    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


AttrValue = bool | int | float | str


class Span(BaseModel):
    """One span as OBI would report it: resource (service, k8s workload) and HTTP attributes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    span_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    parent_span_id: str | None = Field(None, pattern=r"^[0-9a-f]{16}$")
    name: str = ""
    """Default: `<method> <route>` when both are set."""
    start_ns: int = Field(ge=0)
    end_ns: int = Field(ge=0)
    service: str = Field(min_length=1)
    namespace: str | None = None
    deployment: str | None = None
    replicaset: str | None = None
    kind: SpanKind = SpanKind.SERVER
    status: SpanStatus = SpanStatus.UNSET
    status_message: str = ""
    http_method: str | None = None
    http_route: str | None = None
    http_status: int | None = None
    resource_attributes: dict[str, AttrValue] = {}
    """More resource attributes, e.g. `{"service.version": "v2"}`."""
    attributes: dict[str, AttrValue] = {}
    """More span attributes."""

    @model_validator(mode="after")
    def _ends_after_start(self) -> Span:
        if self.end_ns < self.start_ns:
            raise ValueError(f"end_ns ({self.end_ns}) is before start_ns ({self.start_ns})")
        return self

    def resource(self) -> dict[str, AttrValue]:
        known = {
            "service.name": self.service,
            "k8s.namespace.name": self.namespace,
            "k8s.deployment.name": self.deployment,
            "k8s.replicaset.name": self.replicaset,
        }
        return _set(known, self.resource_attributes)

    def span_attributes(self) -> dict[str, AttrValue]:
        known = {
            "http.request.method": self.http_method,
            "http.route": self.http_route,
            "http.response.status_code": self.http_status,
        }
        return _set(known, self.attributes)

    def display_name(self) -> str:
        if self.name:
            return self.name
        return f"{self.http_method} {self.http_route}" if self.http_method and self.http_route else ""


def _set(known: Mapping[str, AttrValue | None], more: dict[str, AttrValue]) -> dict[str, AttrValue]:
    """The `known` attributes that are set, then `more`."""
    return {**{k: v for k, v in known.items() if v is not None}, **more}


@dataclass(frozen=True, slots=True)
class _Stored:
    """A span with its attribute maps computed once."""

    span: Span
    resource: dict[str, AttrValue]
    attributes: dict[str, AttrValue]
    name: str

    @classmethod
    def of(cls, span: Span) -> _Stored:
        return cls(span, span.resource(), span.span_attributes(), span.display_name())


def recorded_spans(document: dict[str, Any]) -> list[Span]:
    """Spans of the data set pushed to a real Tempo (`ingested_spans.json` of the Tempo fixtures).

    Each record names its deployment, ids, start, duration, error flag and HTTP method/route/status;
    the rest is constant in that data set: service `checkout`, namespace `shop`, root server spans,
    `service.version` v2 for the canary and v1 otherwise.
    """
    spans = []
    for record in document["spans"]:
        error = bool(record["error"])
        spans.append(
            Span(
                trace_id=record["traceId"],
                span_id=record["spanId"],
                start_ns=record["start_ns"],
                end_ns=record["start_ns"] + record["duration_ns"],
                service="checkout",
                namespace="shop",
                deployment=record["deployment"],
                status=SpanStatus.ERROR if error else SpanStatus.OK,
                status_message="Internal Server Error" if error else "",
                http_method=record["method"],
                http_route=record["route"],
                http_status=record["http_status"],
                resource_attributes={"service.version": "v2" if record["deployment"].endswith("-canary") else "v1"},
            )
        )
    return spans


_OTLP_KINDS: Final = {
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_OTLP_STATUS: Final = {1: SpanStatus.OK, 2: SpanStatus.ERROR}
_RESOURCE_FIELDS: Final = {
    "k8s.namespace.name": "namespace",
    "k8s.deployment.name": "deployment",
    "k8s.replicaset.name": "replicaset",
}


def otlp_spans(document: dict[str, Any], shift_ns: int = 0) -> list[Span]:
    """Spans as pushed to a real Tempo in OTLP terms (`ingested_spans.json` of the tempo-evidence fixtures):
    `kind` 2/3, `status` `{}` or `{"code": 2, "message": ...}`, `resource` and `attributes` maps.

    `shift_ns` moves every span in time (to replay a recording as if it had just happened).
    """
    spans = []
    for record in document["spans"]:
        resource = dict(record["resource"])
        status = record.get("status") or {}
        fields = {field: resource.pop(key) for key, field in _RESOURCE_FIELDS.items() if key in resource}
        spans.append(
            Span(
                trace_id=record["traceId"],
                span_id=record["spanId"],
                parent_span_id=record.get("parentSpanId") or None,
                name=record["name"],
                start_ns=record["start_ns"] + shift_ns,
                end_ns=record["end_ns"] + shift_ns,
                service=resource.pop("service.name"),
                kind=_OTLP_KINDS.get(record.get("kind", 0), SpanKind.UNSPECIFIED),
                status=_OTLP_STATUS.get(status.get("code", 0), SpanStatus.UNSET),
                status_message=status.get("message", ""),
                resource_attributes=resource,
                attributes=record.get("attributes", {}),
                **fields,
            )
        )
    return spans


class SpanStore:
    """Spans sorted by start time, bounded by age (`retention_seconds`) and count (`max_spans`)."""

    def __init__(self, retention_seconds: float, max_spans: int, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._starts: list[int] = []
        self._spans: list[_Stored] = []
        self._traces: dict[str, list[_Stored]] = {}
        self._longest_ns = 0
        self.retention_ns = int(retention_seconds * NS)
        self.max_spans = max_spans
        self._clock = clock

    def add(self, spans: Iterable[Span]) -> None:
        stored = [_Stored.of(span) for span in spans]
        with self._lock:
            for item in stored:
                start = item.span.start_ns
                index = bisect.bisect_right(self._starts, start)
                self._starts.insert(index, start)
                self._spans.insert(index, item)
                self._traces.setdefault(item.span.trace_id, []).append(item)
                self._longest_ns = max(self._longest_ns, item.span.end_ns - start)
            self._prune()

    def _prune(self) -> None:
        oldest = int(self._clock() * NS) - self.retention_ns
        drop = max(bisect.bisect_left(self._starts, oldest), len(self._spans) - self.max_spans)
        if drop <= 0:
            return
        for item in self._spans[:drop]:
            siblings = self._traces.get(item.span.trace_id, [])
            if item in siblings:
                siblings.remove(item)
            if not siblings:
                self._traces.pop(item.span.trace_id, None)
        del self._starts[:drop]
        del self._spans[:drop]

    def __len__(self) -> int:
        with self._lock:
            return len(self._spans)

    def starting_in(self, after_ns: int, until_ns: int) -> list[_Stored]:
        """Spans whose start is in (after_ns, until_ns]."""
        with self._lock:
            return self._spans[
                bisect.bisect_right(self._starts, after_ns) : bisect.bisect_right(self._starts, until_ns)
            ]

    def overlapping(self, start_ns: int | None, end_ns: int | None) -> list[_Stored]:
        """Spans that overlap [start_ns, end_ns]; every span when no range is given."""
        with self._lock:
            if start_ns is None or end_ns is None:
                return list(self._spans)
            lo = bisect.bisect_left(self._starts, start_ns - self._longest_ns)
            hi = bisect.bisect_right(self._starts, end_ns)
            return [s for s in self._spans[lo:hi] if s.span.end_ns >= start_ns]

    def trace(self, trace_id: str) -> list[_Stored]:
        with self._lock:
            return list(self._traces.get(trace_id, []))


# ================================================================================================
# TraceQL subset: lexer, parser, evaluation
# ================================================================================================


class TraceQLError(ValueError):
    """A query Tempo would refuse; the message is Tempo's."""


_PUNCT: Final = ("&>>", "&&", "||", "!=", "=~", "!~", ">>", ">=", "<=", "{", "}", "(", ")", ",", "|", "=", ">", "<")
_STRUCTURAL: Final = (">>", ">", "&>>")
"""`A >> B` (B spans below an A span), `A > B` (B spans whose parent is an A span), `A &>> B` (both sides)."""
_KINDS: Final = frozenset(k.value for k in SpanKind)
_STATUSES: Final = frozenset(s.value for s in SpanStatus)
_METRIC_FUNCTIONS: Final = ("rate", "count_over_time", "quantile_over_time")
_KEYWORDS: Final = frozenset({"by", "with", "select", "true", "false", "nil", *_METRIC_FUNCTIONS, *_KINDS, *_STATUSES})
_INTRINSICS: Final = {
    "kind": "kind",
    "span:kind": "kind",
    "status": "status",
    "span:status": "status",
    "name": "name",
    "span:name": "name",
    "duration": "duration",
    "span:duration": "duration",
    "statusMessage": "statusMessage",
    "span:statusMessage": "statusMessage",
    "span:id": "span:id",
    "trace:id": "trace:id",
}
_ATTRIBUTE_END: Final = frozenset(' \t\r\n{}()=~!<>&|,"')
_DURATION_UNITS: Final = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": NS, "m": 60 * NS, "h": 3600 * NS}
_NUMBER: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)?")
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_:]*")
_SIMPLE_ESCAPES: Final = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}


@dataclass(frozen=True)
class _Token:
    kind: str
    """punct, keyword, intrinsic, attribute, string, integer, float, duration, identifier, end, error."""
    text: str
    line: int
    col: int
    value: Any = None

    @property
    def label(self) -> str:
        """How Tempo's parser names this token in `unexpected ...`."""
        if self.kind in ("punct", "keyword", "intrinsic"):
            return self.text
        return {
            "attribute": {"resource": "RESOURCE_DOT", "span": "SPAN_DOT"}.get(str(self.value[0]), "DOT")
            if self.value
            else "DOT",
            "string": "STRING",
            "integer": "INTEGER",
            "float": "FLOAT",
            "duration": "DURATION",
            "identifier": "IDENTIFIER",
            "end": "$end",
        }.get(self.kind, self.text)


def _unquote(body: str) -> str:
    """Go string-literal escapes: \\n \\t \\\\ \\" \\xHH \\uHHHH \\UHHHHHHHH \\NNN (octal)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        escape = body[i + 1] if i + 1 < len(body) else ""
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
            i += 2
        elif escape in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid char escape")
            code = int(digits, 16)
            if escape != "x" and (0xD800 <= code <= 0xDFFF or code > 0x10FFFF):
                raise ValueError("escape sequence is invalid Unicode code point")
            out.append(chr(code))
            i += 2 + width
        elif escape in "01234567" and escape:
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError("invalid char escape")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("invalid char escape")
    return "".join(out)


def _attribute_at(text: str, i: int) -> tuple[str, str, int] | None:
    """(scope, name, end) of `resource.x`, `span.x` or `.x` starting at i (`.5` is a number)."""
    for prefix, scope in (("resource.", "resource"), ("span.", "span"), (".", "any")):
        j = i + len(prefix)
        if text.startswith(prefix, i) and j < len(text) and text[j] not in _ATTRIBUTE_END:
            if scope == "any" and text[j].isdigit():
                return None
            end = j
            while end < len(text) and text[end] not in _ATTRIBUTE_END:
                end += 1
            return scope, text[j:end], end
    return None


def _string_at(text: str, i: int) -> tuple[str, int]:
    """(value, end) of the string literal starting at i; ValueError says what is wrong."""
    quote = text[i]
    j = i + 1
    while j < len(text) and text[j] != quote and text[j] != "\n":
        j += 2 if quote == '"' and text[j] == "\\" else 1
    if j >= len(text) or text[j] != quote:
        raise ValueError("literal not terminated")
    body = text[i + 1 : j]
    return (_unquote(body) if quote == '"' else body), j + 1


def _tokens(text: str) -> Iterator[_Token]:
    """Tokens of `text`; a lexing problem becomes an `error` token where it starts."""
    i, line, line_start = 0, 1, 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            if text[i] == "\n":
                line, line_start = line + 1, i + 1
            i += 1
        col = i - line_start + 1
        if i >= len(text):
            yield _Token("end", "", line, col)
            return
        char = text[i]
        if char in '"`':
            try:
                value, end = _string_at(text, i)
            except ValueError as exc:
                yield _Token("error", str(exc), line, col)
                return
            yield _Token("string", text[i:end], line, col, value)
            i = end
            continue
        attribute = _attribute_at(text, i)
        if attribute is not None:
            scope, name, end = attribute
            yield _Token("attribute", text[i:end], line, col, (scope, name))
            i = end
            continue
        number = _NUMBER.match(text, i)
        if number:
            digits, unit = number.group(1), number.group(2)
            if unit:
                yield _Token("duration", number.group(0), line, col, round(float(digits) * _DURATION_UNITS[unit]))
            elif "." in digits:
                yield _Token("float", digits, line, col, float(digits))
            else:
                yield _Token("integer", digits, line, col, int(digits))
            i = number.end()
            continue
        word = _WORD.match(text, i)
        if word:
            name = word.group(0)
            kind = "intrinsic" if name in _INTRINSICS else "keyword" if name in _KEYWORDS else "identifier"
            yield _Token(kind, name, line, col)
            i = word.end()
            continue
        punct = next((p for p in _PUNCT if text.startswith(p, i)), None)
        if punct is None:
            yield _Token("error", f"syntax error: unexpected {char}", line, col)
            return
        yield _Token("punct", punct, line, col)
        i += len(punct)


@dataclass(frozen=True)
class Attribute:
    """`resource.x`, `span.x`, `.x` or an intrinsic (`kind`, `status`, ...)."""

    scope: str
    """resource, span, any or intrinsic."""
    name: str

    @property
    def key(self) -> str:
        """Label key in metrics answers (as written, intrinsics by their short name)."""
        if self.scope == "intrinsic":
            return self.name
        return f".{self.name}" if self.scope == "any" else f"{self.scope}.{self.name}"

    @property
    def search_key(self) -> str | None:
        """Attribute key in search answers: no scope; only `status` and `kind` of the intrinsics."""
        if self.scope == "intrinsic":
            return self.name if self.name in ("status", "kind") else None
        return self.name


Value = tuple[str, Any]
"""A typed value: (string|int|float|bool|kind|status|duration|nil, python value)."""


@dataclass(frozen=True)
class Comparison:
    attribute: Attribute
    op: str
    value: Value


@dataclass(frozen=True)
class Logical:
    op: str
    """`&&` or `||`."""
    left: Expr
    right: Expr


Expr = Comparison | Logical


@dataclass(frozen=True)
class Metric:
    function: str
    by: tuple[Attribute, ...] = ()
    quantiles: tuple[float, ...] = ()


@dataclass(frozen=True)
class Structural:
    """`{ filter } <op> { right }`: the spans matching `right` whose ancestor (or parent) matches `filter`."""

    op: str
    right: Expr | None


@dataclass(frozen=True)
class Query:
    filter: Expr | None
    select: tuple[Attribute, ...] = ()
    metric: Metric | None = None
    hints: dict[str, Value] = field(default_factory=dict)
    structural: Structural | None = None

    def attributes(self) -> list[Attribute]:
        """Attributes the filter (both sides of a structural operator) looks at, in order, without repeats."""
        seen: dict[Attribute, None] = {}
        for comparison in self.comparisons():
            seen.setdefault(comparison.attribute, None)
        return list(seen)

    def comparisons(self) -> list[Comparison]:
        out: list[Comparison] = []

        def walk(expr: Expr | None) -> None:
            if isinstance(expr, Comparison):
                out.append(expr)
            elif isinstance(expr, Logical):
                walk(expr.left)
                walk(expr.right)

        walk(self.filter)
        if self.structural is not None:
            walk(self.structural.right)
        return out


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._next = next(self._tokens)

    def _peek(self) -> _Token:
        if self._next.kind == "error":
            where = f"line {self._next.line}, col {self._next.col}"
            raise TraceQLError(f"parse error at {where}: {self._next.text}")
        return self._next

    def _take(self) -> _Token:
        token = self._peek()
        if token.kind != "end":
            self._next = next(self._tokens)
        return token

    def _fail(self, expecting: str | None = None) -> TraceQLError:
        token = self._peek()
        message = f"parse error at line {token.line}, col {token.col}: syntax error: unexpected {token.label}"
        return TraceQLError(message + (f", expecting {expecting}" if expecting else ""))

    def _is(self, text: str) -> bool:
        token = self._peek()
        return token.kind in ("punct", "keyword") and token.text == text

    def _accept(self, text: str) -> bool:
        if self._is(text):
            self._take()
            return True
        return False

    def _expect(self, text: str, *, only_choice: bool = True) -> None:
        if not self._accept(text):
            raise self._fail(text if only_choice else None)

    def _spanset(self) -> Expr | None:
        self._expect("{", only_choice=False)
        expr = None if self._accept("}") else self._or()
        if expr is not None:
            self._expect("}", only_choice=False)
        return expr

    def query(self) -> Query:
        expr = self._spanset()
        structural = None
        token = self._peek()
        if token.kind == "punct" and token.text in _STRUCTURAL:
            op = self._take().text
            if not self._is("{"):
                raise self._fail("{ or (")
            structural = Structural(op, self._spanset())
        select: list[Attribute] = []
        metric: Metric | None = None
        while self._accept("|"):
            if self._accept("select"):
                select.extend(self._attribute_list())
            elif metric is None and self._peek().text in _METRIC_FUNCTIONS and self._peek().kind == "keyword":
                metric = self._metric()
            else:
                raise self._fail()
        hints: dict[str, Value] = {}
        if self._accept("with"):
            self._expect("(")
            while True:
                name = self._take()
                if name.kind not in ("identifier", "keyword"):
                    raise self._fail()
                self._expect("=")
                hints[name.text] = self._static()
                if not self._accept(","):
                    break
            self._expect(")", only_choice=False)
        if self._peek().kind != "end":
            raise self._fail()
        return Query(expr, tuple(select), metric, hints, structural)

    def _or(self) -> Expr:
        left = self._and()
        while self._accept("||"):
            left = Logical("||", left, self._and())
        return left

    def _and(self) -> Expr:
        left = self._primary()
        while self._accept("&&"):
            left = Logical("&&", left, self._primary())
        return left

    def _primary(self) -> Expr:
        if self._accept("("):
            expr = self._or()
            self._expect(")", only_choice=False)
            return expr
        attribute = self._attribute()
        token = self._peek()
        if token.kind != "punct" or token.text not in ("=", "!=", "=~", "!~", "<", "<=", ">", ">="):
            raise self._fail()
        op = self._take().text
        value = self._static()
        if op in ("=~", "!~"):
            if value[0] != "string":
                raise TraceQLError(f"invalid TraceQL: regex operators need a string, not {value[0]}")
            try:
                re.compile(value[1])
            except re.error as exc:
                raise TraceQLError(f"error parsing regexp: {exc}: `{value[1]}`") from None
        return Comparison(attribute, op, value)

    def _attribute(self) -> Attribute:
        token = self._peek()
        if token.kind == "attribute":
            self._take()
            scope, name = token.value
            return Attribute(scope, name)
        if token.kind == "intrinsic":
            self._take()
            return Attribute("intrinsic", _INTRINSICS[token.text])
        raise self._fail()

    def _attribute_list(self) -> list[Attribute]:
        self._expect("(")
        names = [self._attribute()]
        while self._accept(","):
            names.append(self._attribute())
        self._expect(")", only_choice=False)
        return names

    def _static(self) -> Value:
        token = self._peek()
        if token.kind in ("string", "integer", "float", "duration"):
            self._take()
            return (token.kind if token.kind != "integer" else "int", token.value)
        if token.kind == "keyword":
            if token.text in ("true", "false"):
                self._take()
                return ("bool", token.text == "true")
            if token.text == "nil":
                self._take()
                return ("nil", None)
            if token.text in _KINDS:
                self._take()
                return ("kind", token.text)
            if token.text in _STATUSES:
                self._take()
                return ("status", token.text)
        raise self._fail()

    def _metric(self) -> Metric:
        function = self._take().text
        self._expect("(")
        quantiles: list[float] = []
        if function == "quantile_over_time":
            attribute = self._attribute()
            if attribute != Attribute("intrinsic", "duration"):
                raise TraceQLError("this simulator supports quantile_over_time(duration, ...) only")
            self._expect(",")
            while True:
                token = self._take()
                if token.kind not in ("float", "integer"):
                    raise self._fail()
                quantiles.append(float(token.value))
                if not self._accept(","):
                    break
        self._expect(")")
        by: tuple[Attribute, ...] = ()
        if self._accept("by"):
            by = tuple(self._attribute_list())
        return Metric(function, by, tuple(quantiles))


def parse(text: str) -> Query:
    """Parse a TraceQL query of the supported subset; TraceQLError carries Tempo's message."""
    if text == "":
        raise TraceQLError("parse error : syntax error: unexpected $end")
    return _Parser(text).query()


def _value_of(item: _Stored, attribute: Attribute) -> Value | None:
    span = item.span
    if attribute.scope == "intrinsic":
        name = attribute.name
        if name == "kind":
            return ("kind", span.kind.value)
        if name == "status":
            return ("status", span.status.value)
        if name == "duration":
            return ("duration", span.end_ns - span.start_ns)
        text = {"name": item.name, "statusMessage": span.status_message, "span:id": span.span_id}.get(name)
        return ("string", text if text is not None else span.trace_id)
    if attribute.scope == "resource":
        raw = item.resource.get(attribute.name)
    elif attribute.scope == "span":
        raw = item.attributes.get(attribute.name)
    else:
        raw = item.attributes.get(attribute.name, item.resource.get(attribute.name))
    if raw is None:
        return None
    if isinstance(raw, bool):
        return ("bool", raw)
    if isinstance(raw, int):
        return ("int", raw)
    if isinstance(raw, float):
        return ("float", raw)
    return ("string", raw)


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _compare(left: Value | None, op: str, right: Value) -> bool:
    if right[0] == "nil":
        return (left is None) == (op == "=") if op in ("=", "!=") else False
    if left is None:
        return False
    (left_type, a), (right_type, b) = left, right
    numeric = ("int", "float")
    if not (left_type == right_type or (left_type in numeric and right_type in numeric)):
        return False
    if op in ("=~", "!~"):
        if left_type != "string":
            return False
        return (re.fullmatch(b, a) is not None) == (op == "=~")
    if left_type in ("kind", "status", "bool") and op not in ("=", "!="):
        return False
    return _ORDER[op](a, b)


def _compile(expr: Expr | None) -> Callable[[_Stored], bool]:
    if expr is None:
        return lambda _: True
    if isinstance(expr, Comparison):
        attribute, op, value = expr.attribute, expr.op, expr.value
        return lambda item: _compare(_value_of(item, attribute), op, value)
    left, right = _compile(expr.left), _compile(expr.right)
    if expr.op == "&&":
        return lambda item: left(item) and right(item)
    return lambda item: left(item) or right(item)


def _matcher(query: Query, trace_of: Callable[[str], list[_Stored]]) -> Callable[[_Stored], bool]:
    """Which spans a query selects; for `A >> B` (`>`, `&>>`) that looks up each span's trace."""
    left = _compile(query.filter)
    if query.structural is None:
        return left
    right = _compile(query.structural.right)
    op = query.structural.op
    cache: dict[str, tuple[dict[str, _Stored], set[str]]] = {}

    def trace(trace_id: str) -> tuple[dict[str, _Stored], set[str]]:
        found = cache.get(trace_id)
        if found is None:
            spans = {s.span.span_id: s for s in trace_of(trace_id)}
            below_left: set[str] = set()
            for item in spans.values():
                if right(item) and _has_ancestor(item, spans, left, direct=op == ">"):
                    below_left.add(item.span.span_id)
            if op == "&>>":
                below_left |= {
                    a.span.span_id
                    for a in spans.values()
                    if left(a) and any(_is_ancestor(a, spans[b], spans) for b in list(below_left))
                }
            found = cache[trace_id] = (spans, below_left)
        return found

    return lambda item: item.span.span_id in trace(item.span.trace_id)[1]


def _has_ancestor(item: _Stored, spans: dict[str, _Stored], match: Callable[[_Stored], bool], direct: bool) -> bool:
    parent_id = item.span.parent_span_id
    seen: set[str] = set()
    while parent_id is not None and parent_id in spans and parent_id not in seen:
        seen.add(parent_id)
        parent = spans[parent_id]
        if match(parent):
            return True
        if direct:
            return False
        parent_id = parent.span.parent_span_id
    return False


def _is_ancestor(ancestor: _Stored, item: _Stored, spans: dict[str, _Stored]) -> bool:
    return _has_ancestor(item, spans, lambda s: s is ancestor, direct=False)


# ================================================================================================
# Answers in Tempo's protobuf-JSON shapes
# ================================================================================================


def _number(value: float) -> float | int:
    """Go's JSON spelling: integral values without `.0`."""
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def _any_value(value: Value | None) -> dict[str, Any]:
    if value is None:
        return {}
    kind, raw = value
    if kind == "int":
        return {"intValue": str(raw)}
    if kind == "float":
        return {"doubleValue": raw}
    if kind == "bool":
        return {"boolValue": raw}
    if kind == "duration":
        return {"stringValue": go_duration(raw)}
    return {"stringValue": raw}


def _label(key: str, value: Value | None) -> dict[str, Any]:
    return {"key": key, "value": _any_value(value)}


def _trace_id_out(trace_id: str) -> str:
    """Tempo strips leading zeros from trace ids in its answers."""
    return trace_id.lstrip("0") or "0"


def go_duration(ns: int) -> str:
    """Go's `time.Duration.String()`: `135.62769ms`, `2s`, `24h0m0s`."""

    def fraction(value: int, unit: int) -> str:
        whole, rest = divmod(value, unit)
        digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}" if digits else str(whole)

    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{fraction(ns, 1_000)}µs"
    if ns < NS:
        return f"{sign}{fraction(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3600 * NS)
    minutes, rest = divmod(rest, 60 * NS)
    prefix = f"{hours}h{minutes}m" if hours else f"{minutes}m" if minutes else ""
    return f"{sign}{prefix}{fraction(rest, NS)}s"


def log2_quantile(p: float, durations_ns: Sequence[int]) -> float:
    """Tempo's `Log2Quantile` over power-of-two duration buckets, in seconds."""
    counts: dict[float, int] = {}
    for ns in durations_ns:
        bucket = float(1 << max(ns - 1, 1).bit_length()) / NS
        counts[bucket] = counts.get(bucket, 0) + 1
    buckets = sorted(counts.items())
    total_count = sum(counts.values())
    if not buckets or total_count == 0 or not 0 <= p <= 1:
        return 0.0
    wanted = max(1, math.ceil(p * total_count))
    total, index = 0, 0
    for index, (upper, count) in enumerate(buckets):  # noqa: B007 - index is used after the loop
        if total + count > wanted:
            break
        total += count
        if total == wanted:
            return upper
    interp = (wanted - total) / buckets[index][1]
    max_v = math.log2(buckets[index][0])
    min_v = math.log2(buckets[index - 1][0]) if index > 0 else max_v - 1
    return float(2 ** (min_v + (max_v - min_v) * interp))


@dataclass
class _Group:
    labels: list[dict[str, Any]]
    buckets: dict[int, list[_Stored]] = field(default_factory=dict)


def _groups(
    query: Query, spans: Iterable[_Stored], bucket_of: Callable[[int], int], matches: Callable[[_Stored], bool]
) -> tuple[dict[tuple[Any, ...], _Group], int]:
    assert query.metric is not None
    groups: dict[tuple[Any, ...], _Group] = {}
    looked_at = 0
    for item in spans:
        looked_at += 1
        if not matches(item):
            continue
        values = [_value_of(item, a) for a in query.metric.by]
        key = tuple(values)
        group = groups.get(key)
        if group is None:
            labels = (
                [_label(a.key, v) for a, v in zip(query.metric.by, values, strict=True)]
                if query.metric.by
                else ([] if query.metric.quantiles else [_label("__name__", ("string", query.metric.function))])
            )
            group = groups[key] = _Group(labels)
        group.buckets.setdefault(bucket_of(item.span.start_ns), []).append(item)
    return groups, looked_at


def _bucket_values(
    query: Query, buckets: dict[int, list[_Stored]], step_ns: int
) -> Iterator[tuple[list[Any], dict[int, float]]]:
    """(extra labels, value per bucket) for each output series of one group."""
    assert query.metric is not None
    function = query.metric.function
    if function == "quantile_over_time":
        for q in query.metric.quantiles:
            values = {
                b: log2_quantile(q, [s.span.end_ns - s.span.start_ns for s in items]) for b, items in buckets.items()
            }
            yield [_label("p", ("float", q))], values
        return
    scale = step_ns / NS if function == "rate" else 1.0
    yield [], {b: len(items) / scale for b, items in buckets.items()}


@dataclass
class _Series:
    labels: list[dict[str, Any]]
    values: dict[int, float]
    spans: dict[int, list[_Stored]]

    def sort_key(self) -> str:
        return json.dumps(self.labels, sort_keys=True)


def _evaluate(
    query: Query,
    spans: Iterable[_Stored],
    bucket_of: Callable[[int], int],
    step_ns: int,
    matches: Callable[[_Stored], bool],
) -> tuple[list[_Series], int]:
    groups, looked_at = _groups(query, spans, bucket_of, matches)
    series = [
        _Series(group.labels + extra, values, group.buckets)
        for group in groups.values()
        for extra, values in _bucket_values(query, group.buckets, step_ns)
    ]
    series.sort(key=_Series.sort_key)
    return series, looked_at


def _exemplar(query: Query, item: _Stored, value: float, timestamp_ms: int) -> dict[str, Any]:
    assert query.metric is not None
    keys: dict[str, Value | None] = {}
    for attribute in [*query.attributes(), *query.metric.by]:
        keys.setdefault(attribute.key, _value_of(item, attribute))
    if query.metric.function == "quantile_over_time":
        keys["duration"] = ("duration", item.span.end_ns - item.span.start_ns)
    labels = [_label(k, v) for k, v in keys.items() if v is not None]
    labels.append(_label("trace:id", ("string", _trace_id_out(item.span.trace_id))))
    return {"labels": labels, "value": _number(value), "timestampMs": str(timestamp_ms)}


# ================================================================================================
# Requests: parameters and validation as Tempo's query frontend does them
# ================================================================================================


class _BadRequest(Exception):
    """A 400 answer with Tempo's text/plain message."""


_PROM_DURATION: Final = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_PROM_UNITS: Final = {
    "ms": 10**6,
    "s": NS,
    "m": 60 * NS,
    "h": 3600 * NS,
    "d": 86400 * NS,
    "w": 7 * 86400 * NS,
    "y": 365 * 86400 * NS,
}
_GO_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def _parse_go_duration(text: str) -> int | None:
    body = text[1:] if text[:1] in "+-" else text
    parts = _GO_DURATION.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    ns = round(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))
    return -ns if text.startswith("-") else ns


def _parse_step(text: str) -> int:
    try:
        return round(float(text) * NS)
    except ValueError:
        pass
    ns = _parse_go_duration(text)
    if ns is None:
        raise _BadRequest(f'rpc error: code = Code(400) desc = cannot parse "{text}" to a valid duration')
    return ns


def _parse_timestamp(name: str, text: str, default_ns: int) -> int:
    if text == "":
        return default_ns
    try:
        if "." in text:
            return round(float(text) * NS)
        if text.lstrip("-").isdigit():
            return int(text) * NS if len(text) <= 10 else int(text)
        return round(datetime.fromisoformat(text).timestamp() * NS)
    except ValueError:
        raise _BadRequest(f"could not parse '{name}' parameter: cannot parse {text!r} as a timestamp") from None


def _bounds(params: dict[str, str], now_ns: int) -> tuple[int, int]:
    since_ns = DEFAULT_SINCE_NS
    since = params.get("since", "")
    if since:
        parts = _PROM_DURATION.findall(since)
        if not parts or "".join(n + u for n, u in parts) != since:
            raise _BadRequest(f"could not parse 'since' parameter: not a valid duration string: {since!r}")
        since_ns = sum(int(n) * _PROM_UNITS[u] for n, u in parts)
    end = _parse_timestamp("end", params.get("end", ""), now_ns)
    start = _parse_timestamp("start", params.get("start", ""), min(end, now_ns) - since_ns)
    return start, end


def default_step(start_ns: int, end_ns: int) -> int:
    """Tempo's `DefaultQueryRangeStep`: about 240 points, in whole 5 s (or 1 s) steps, at least 1 s."""
    baseline = (end_ns - start_ns) // 240
    interval = baseline // (5 * NS) * (5 * NS)
    if interval < 5 * NS:
        interval = baseline // NS * NS
    return max(interval, NS)


def _clamp_and_check(start: int, end: int, step: int, now_ns: int, cutoff_ns: int = QUERY_END_CUTOFF_NS) -> int:
    """Tempo's frontend checks, in its order; the end clamped to now - query_end_cutoff."""
    if start >= end:
        raise _BadRequest("end must be greater than start")
    latest = now_ns - cutoff_ns
    if end > latest:
        end = latest
        if start >= end:
            raise _BadRequest("query window falls entirely within query_end_cutoff")
    if end - start > MAX_DURATION_NS:
        raise _BadRequest(
            f"metrics query time range exceeds the maximum allowed duration of {go_duration(MAX_DURATION_NS)}"
        )
    if step <= 0 or (end - start) // step > MAX_INTERVALS:
        minimum = (end - start) // MAX_INTERVALS
        raise _BadRequest(
            f"step of {go_duration(step)} is too small, minimum step for given range is {go_duration(minimum)}"
        )
    return end


def _exemplar_limit(params: dict[str, str], query: Query) -> int:
    hint = query.hints.get("exemplars")
    if hint is not None and hint[0] == "int":
        limit = max(int(hint[1]), 0)
    elif hint is not None and hint == ("bool", False):
        limit = 0
    else:
        try:
            limit = int(params.get("exemplars", "0") or "0")
        except ValueError:
            limit = 0
        limit = limit or MAX_EXEMPLARS
    return min(limit, MAX_EXEMPLARS)


# ================================================================================================
# The server
# ================================================================================================


class Fault(StrEnum):
    HTTP_500 = "http-500"
    """Answer 500 with a text/plain message."""
    HTTP_400 = "http-400"
    """Refuse the query: 400 with a text/plain message, as Tempo refuses a query it cannot run."""
    HANG = "hang"
    """Do not answer until `hang_seconds` pass or the server stops."""
    GARBAGE = "garbage"
    """Answer 200 application/json with a body that is not JSON."""
    PARTIAL = "partial"
    """Answer normally but mark the result incomplete (`status: PARTIAL`, completedJobs < totalJobs)."""


_PUBLIC_PATHS: Final = ("/ready", "/api/echo", "/api/status/buildinfo")
_TAG_VALUES: Final = re.compile(r"^/api/v2/search/tag/(?P<tag>[^/]+)/values$")


class TempoServer(LocalHTTPServer):
    """Tempo-compatible HTTP API on 127.0.0.1 over an in-memory span store. Use as a context manager;
    requests held by a HANG fault are released on `stop()`."""

    name = "tempo-sim"

    def __init__(
        self,
        *,
        port: int = 0,
        retention_seconds: float = 3600.0,
        max_spans: int = 500_000,
        max_series: int = 1000,
        tenant: str | None = None,
        hang_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        query_end_cutoff_seconds: float = QUERY_END_CUTOFF_NS / NS,
    ) -> None:
        """`tenant`: when set, API calls need `X-Scope-OrgID` (401 without; another tenant sees no data).
        `query_end_cutoff_seconds`: Tempo's `query_end_cutoff` (30 s); tests with a fast clock lower it."""
        super().__init__(port=port)
        self.store = SpanStore(retention_seconds, max_spans, clock)
        self.cutoff_ns = round(query_end_cutoff_seconds * NS)
        self.max_series = max_series
        self.tenant = tenant
        self.hang_seconds = hang_seconds
        self._clock = clock
        self._fault: Fault | None = None
        self._fault_paths: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._requests: deque[RecordedRequest] = deque(maxlen=1000)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return get_handler(self.handle, self.name)

    def add_spans(self, spans: Iterable[Span]) -> None:
        """Thread-safe; spans older than the retention, or beyond `max_spans`, are dropped (oldest first)."""
        self.store.add(spans)

    def inject(self, fault: Fault | None, paths: Sequence[str] = ()) -> None:
        """Answer API calls (or only those under `paths`) with `fault`; None clears it."""
        with self._lock:
            self._fault = fault
            self._fault_paths = tuple(paths)

    def requests(self) -> list[RecordedRequest]:
        """The last 1000 requests received, oldest first."""
        with self._lock:
            return list(self._requests)

    # --- dispatch ---

    def _now_ns(self) -> int:
        return int(self._clock() * NS)

    def handle(self, raw_path: str, headers: dict[str, str]) -> Answer:
        request = RecordedRequest.parse(raw_path, headers)
        path, params = request.path, request.params
        with self._lock:
            self._requests.append(request)
            fault = self._fault if not self._fault_paths or path.startswith(self._fault_paths) else None
        if path == "/ready":
            return Answer.text("ready\n", 200)
        if path == "/api/echo":
            return Answer.text("echo\n", 200)
        if path == "/api/status/buildinfo":
            return Answer.json(BUILD_INFO)
        tag_match = _TAG_VALUES.match(path)
        if path not in ("/api/metrics/query_range", "/api/metrics/query", "/api/search") and not tag_match:
            return Answer.text("404 page not found\n", 404)
        if self.tenant is not None:
            org = headers.get("x-scope-orgid")
            if not org:
                return Answer.text("no org id\n", 401)
        else:
            org = None
        if fault is Fault.HTTP_500:
            return Answer.text("rpc error: code = Internal desc = simulated failure", 500)
        if fault is Fault.HTTP_400:
            return Answer.text("invalid TraceQL query: simulated refusal", 400)
        if fault is Fault.HANG:
            self.stopping.wait(self.hang_seconds)
            return Answer.text("simulated hang ended", 503)
        if fault is Fault.GARBAGE:
            return Answer(200, b'{"series": [{"labels": [{"key": "resource.k8s', "application/json")
        visible = self.tenant is None or org == self.tenant
        try:
            if path == "/api/metrics/query_range":
                payload = self._query_range(params, visible)
            elif path == "/api/metrics/query":
                payload = self._query_instant(params, visible)
            elif path == "/api/search":
                payload = self._search(params, visible)
            else:
                assert tag_match is not None
                payload = self._tag_values(unquote(tag_match.group("tag")), params, visible)
        except _BadRequest as exc:
            return Answer.text(str(exc), 400)
        if fault is Fault.PARTIAL:
            payload["metrics"]["completedJobs"] = 1
            payload["metrics"]["totalJobs"] = 2
            if "/metrics/" in path:
                payload["status"] = "PARTIAL"
                payload["message"] = "simulated partial result: 1 of 2 jobs completed"
        return Answer.json(payload)

    # --- endpoints ---

    def _spans_in(self, after_ns: int, until_ns: int, visible: bool) -> list[_Stored]:
        return self.store.starting_in(after_ns, until_ns) if visible else []

    def _metrics_block(self, looked_at: int) -> dict[str, Any]:
        block: dict[str, Any] = {"completedJobs": 1, "totalJobs": 1}
        if looked_at:
            block = {"inspectedBytes": str(looked_at * BYTES_PER_SPAN), **block}
        return block

    def _metrics_query(self, params: dict[str, str], *, prefix: str) -> Query:
        try:
            query = parse(params.get("q", params.get("query", "")))
        except TraceQLError as exc:
            raise _BadRequest(prefix + str(exc)) from None
        if query.metric is None:
            raise _BadRequest(prefix + "not a metrics query")
        return query

    def _limit_series(self, series: list[_Series], payload: dict[str, Any]) -> list[_Series]:
        if len(series) <= self.max_series:
            return series
        payload["status"] = "PARTIAL"
        payload["message"] = (
            f"Response exceeds maximum series limit of {self.max_series}, a partial response is returned. "
            "Warning: the accuracy of each individual value is not guaranteed."
        )
        return series[: self.max_series]

    def _query_range(self, params: dict[str, str], visible: bool) -> dict[str, Any]:
        now = self._now_ns()
        start, end = _bounds(params, now)
        step = _parse_step(params["step"]) if "step" in params else default_step(start, end)
        end = _clamp_and_check(start, end, step, now, self.cutoff_ns)
        query = self._metrics_query(params, prefix="")
        exemplars_left = _exemplar_limit(params, query)
        first = start - start % step
        last = end if end % step == 0 else end + step - end % step
        if first > step:
            first -= step
        latest = now - self.cutoff_ns
        if last > latest:
            last = latest - latest % step
        spans = self._spans_in(first, last, visible)
        matches = _matcher(query, self.store.trace)
        series, looked_at = _evaluate(query, spans, lambda t: (t - first - 1) // step, step, matches)
        payload: dict[str, Any] = {}
        series = self._limit_series(series, payload)
        out = []
        stamps = [first + (i + 1) * step for i in range((last - first) // step)]
        for one in series:
            samples = []
            for index, stamp in enumerate(stamps):
                sample: dict[str, Any] = {"timestampMs": str(stamp // 1_000_000)}
                value = one.values.get(index, 0.0)
                if value:
                    sample["value"] = _number(value)
                samples.append(sample)
            entry: dict[str, Any] = {"labels": one.labels, "samples": samples}
            exemplars = []
            for index in sorted(one.spans):
                if exemplars_left <= 0:
                    break
                exemplars.append(_exemplar(query, one.spans[index][0], one.values[index], stamps[index] // 1_000_000))
                exemplars_left -= 1
            if exemplars:
                entry["exemplars"] = exemplars
            out.append(entry)
        return {"series": out, "metrics": self._metrics_block(looked_at), **payload}

    def _query_instant(self, params: dict[str, str], visible: bool) -> dict[str, Any]:
        now = self._now_ns()
        start, end = _bounds(params, now)
        latest = now - self.cutoff_ns
        if end > latest > start:  # Tempo pulls an instant end back by whole seconds (cache-friendly)
            end -= math.ceil((end - latest) / NS) * NS
        end = _clamp_and_check(start, end, end - start, now, self.cutoff_ns)
        query = self._metrics_query(params, prefix="compiling query: ")
        matches = _matcher(query, self.store.trace)
        series, looked_at = _evaluate(query, self._spans_in(start, end, visible), lambda _: 0, end - start, matches)
        payload: dict[str, Any] = {}
        series = self._limit_series(series, payload)
        out = []
        for one in series:
            entry: dict[str, Any] = {"labels": one.labels}
            value = one.values.get(0, 0.0)
            if value:
                entry["value"] = _number(value)
            out.append(entry)
        answer: dict[str, Any] = {"series": out} if out else {}
        return {**answer, "metrics": self._metrics_block(looked_at), **payload}

    def _search(self, params: dict[str, str], visible: bool) -> dict[str, Any]:
        def seconds(name: str) -> int:
            text = params.get(name, "")
            if not text:
                return 0
            if not re.fullmatch(r"[+-]?\d+", text) or not -(2**31) <= int(text) < 2**31:
                raise _BadRequest(f'invalid {name}: strconv.ParseInt: parsing "{text}": invalid syntax')
            return int(text)

        def positive(name: str, default: int) -> int:
            text = params.get(name, "")
            if not text:
                return default
            if not re.fullmatch(r"[+-]?\d+", text):
                raise _BadRequest(f'invalid {name}: strconv.Atoi: parsing "{text}": invalid syntax')
            if int(text) <= 0:
                raise _BadRequest(f"invalid {name}: must be a positive number")
            return int(text)

        start, end = seconds("start"), seconds("end")
        text = params.get("q", "{}")
        try:
            query = parse(text)
        except TraceQLError as exc:
            raise _BadRequest(f"invalid TraceQL query: {exc}") from None
        if query.metric is not None:
            raise _BadRequest("invalid TraceQL query: metrics queries are not searches; use /api/metrics/query_range")
        limit = positive("limit", DEFAULT_SEARCH_LIMIT)
        per_set = positive("spss", DEFAULT_SPANS_PER_SPANSET)
        if (start or end) and end <= start:
            raise _BadRequest(f"http parameter start must be before end. received start={start} end={end}")
        candidates = (
            self.store.overlapping(start * NS, end * NS) if start or end else self.store.overlapping(None, None)
        )
        if not visible:
            candidates = []
        matches = _matcher(query, self.store.trace)
        matched: dict[str, list[_Stored]] = {}
        for item in candidates:
            if matches(item):
                matched.setdefault(item.span.trace_id, []).append(item)
        traces = []
        for trace_id, spans in matched.items():
            whole = self.store.trace(trace_id) or spans
            traces.append((min(s.span.start_ns for s in whole), trace_id, spans, whole))
        traces.sort(key=lambda t: t[0], reverse=True)
        return {
            "traces": [
                _trace_json(first, tid, spans, whole, query, per_set) for first, tid, spans, whole in traces[:limit]
            ],
            "metrics": self._metrics_block(len(candidates)),
        }

    def _tag_values(self, tag: str, params: dict[str, str], visible: bool) -> dict[str, Any]:
        try:
            attribute = _Parser(tag)._attribute()
        except TraceQLError:
            raise _BadRequest(f"invalid tag: {tag}") from None
        query_text = params.get("q", "{}")
        try:
            query = parse(query_text)
        except TraceQLError as exc:
            raise _BadRequest(f"invalid TraceQL query: {exc}") from None
        start, end = params.get("start"), params.get("end")
        try:
            window = (int(start) * NS, int(end) * NS) if start and end else (None, None)
        except ValueError:
            raise _BadRequest("invalid start or end: expected unix seconds") from None
        spans = self.store.overlapping(*window) if visible else []
        matches = _matcher(query, self.store.trace)
        found: dict[tuple[str, str], None] = {}
        for item in spans:
            value = _value_of(item, attribute) if matches(item) else None
            if value is not None:
                kind = {"kind": "keyword", "status": "keyword"}.get(value[0], value[0])
                text = (
                    go_duration(value[1])
                    if value[0] == "duration"
                    else str(value[1]).lower()
                    if value[0] == "bool"
                    else str(value[1])
                )
                found.setdefault((kind, text), None)
        tag_values = [{"type": kind, "value": text} for kind, text in sorted(found)]
        return {"tagValues": tag_values, "metrics": {"inspectedBytes": str(len(spans) * BYTES_PER_SPAN)}}


_SELECTABLE_INTRINSICS: Final = frozenset({"status", "kind", "statusMessage", "name"})
_NIL: Final = ("string", "nil")


def _span_json(item: _Stored, query: Query, trace: Sequence[_Stored] = ()) -> dict[str, Any]:
    """A matched span with the attributes Tempo shows: for a plain filter those it looks at; for a
    structural query those conditions (of either side) the span itself satisfies; then the selected
    ones. A selected attribute the span lacks is the string `nil` when another span of its trace has
    it, else left out (as recorded: `http.response.status_code` on a DB span, no `db.system.name` on a
    trace without DB spans)."""
    span = item.span
    out: dict[str, Any] = {
        "spanID": span.span_id,
        "startTimeUnixNano": str(span.start_ns),
        "durationNanos": str(span.end_ns - span.start_ns),
    }
    attributes: dict[str, Value] = {}
    if query.structural is None:
        shown = [(a, True) for a in query.attributes()]
    else:
        shown = [(c.attribute, _compile(c)(item)) for c in query.comparisons()]
    for attribute, satisfied in shown:
        key = attribute.search_key
        value = _value_of(item, attribute) if key and satisfied else None
        if key and value is not None:
            attributes.setdefault(key, value)
    for attribute in query.select:
        if attribute.scope == "intrinsic" and attribute.name not in _SELECTABLE_INTRINSICS:
            continue
        key = attribute.name
        value = _value_of(item, attribute)
        if value is not None and value[0] in ("kind", "status"):
            value = ("string", value[1])
        if value is None and not any(_value_of(other, attribute) is not None for other in trace):
            continue
        attributes.setdefault(key, value if value is not None else _NIL)
    if attributes:
        out["attributes"] = [_label(k, v) for k, v in attributes.items()]
    return out


def _trace_json(
    first_ns: int, trace_id: str, matched: list[_Stored], whole: list[_Stored], query: Query, per_set: int
) -> dict[str, Any]:
    roots = [s for s in whole if s.span.parent_span_id is None]
    root = min(roots, key=lambda s: s.span.start_ns) if roots else None
    last_end = max(s.span.end_ns for s in whole)
    stats: dict[str, dict[str, int]] = {}
    for item in whole:
        entry = stats.setdefault(item.span.service, {"spanCount": 0})
        entry["spanCount"] += 1
        if item.span.status is SpanStatus.ERROR:
            entry["errorCount"] = entry.get("errorCount", 0) + 1
    ordered = sorted(matched, key=lambda s: s.span.start_ns)
    span_set = {"spans": [_span_json(s, query, whole) for s in ordered[:per_set]], "matched": len(matched)}
    out: dict[str, Any] = {
        "traceID": _trace_id_out(trace_id),
        "rootServiceName": root.span.service if root else "<root span not yet received>",
    }
    if root and root.name:
        out["rootTraceName"] = root.name
    out["startTimeUnixNano"] = str(first_ns)
    duration_ms = (last_end - first_ns) // 1_000_000
    if duration_ms:
        out["durationMs"] = duration_ms
    out.update({"spanSet": span_set, "spanSets": [span_set], "serviceStats": stats})
    return out
