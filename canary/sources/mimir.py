"""RED metrics per canary and baseline from Mimir (or Prometheus) through `prometheus-api-client`.

One `fetch_red` call sends ONE instant query per signal (requests, errors, latency buckets) and per
distinct window for all targets, each grouped by namespace/deployment/replicaset, and splits the rows
client-side: a workload without a ReplicaSet (canary mode) sums all rows of its Deployment; one with
a ReplicaSet (guard mode) takes that ReplicaSet's rows; the baseline sums its workloads' rows.

The source never raises for backend trouble: timeouts, refused connections, HTTP errors, Mimir limit
errors (`err-mimir-*`) and malformed answers become a `BackendError` in the result.
"""

from __future__ import annotations

import ast
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from urllib3.util.retry import Retry

from canary import __version__
from canary.config.slo import Metrics, MetricsPreset
from canary.samples import (
    Backend,
    BackendError,
    BackendErrorKind,
    LatencyHistogram,
    Pair,
    QueryRecord,
    RedSample,
    Target,
    Workload,
)
from canary.sources import limits
from canary.sources.base import BatchResult
from canary.sources.promql import (
    DEPLOYMENT,
    NAMESPACE,
    REPLICASET,
    Filter,
    MetricNames,
    QueryBuilder,
    RedSeries,
    naming_from,
    template_problems,
    window_literal,
)

log = logging.getLogger(__name__)

DETECT_LOOKBACK_SECONDS = 3600.0
"""How far back `detect()` looks for OBI metric names."""
MAX_GET_BYTES = 4096
"""Encoded query parameters above which `/api/v1/query` is sent as a POST form (URL limits of proxies)."""
DISCOVERY_LOOKBACK_SECONDS = 3600.0
"""`discover_replicasets` orders ReplicaSets by first appearance within max(window, this)."""


class MimirSettings(BaseModel):
    """How to reach Mimir: URL incl. `/prometheus`, tenant, auth, TLS, timeout and the metrics preset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """Base URL including the prefix, e.g. `https://mimir.example/prometheus`."""
    tenant: str | None = None
    """Sent as `X-Scope-OrgID`."""
    bearer_token: SecretStr | None = None
    username: str | None = None
    """Basic auth user (with `password`); not together with `bearer_token`."""
    password: SecretStr | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    """PEM bundle to verify the server certificate with, instead of the system's."""
    cert_file: Path | None = None
    """Client certificate (PEM) presented to a server that requires one (mTLS), with `key_file`."""
    key_file: Path | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    metrics: Metrics = Metrics()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
            raise ValueError(f"expected an http(s) URL such as https://mimir.example/prometheus, got {value!r}")
        return value.rstrip("/")

    @field_validator("tenant", "username")
    @classmethod
    def _header_safe(cls, value: str | None) -> str | None:
        if value is not None and (not value or re.search(r"[\x00-\x1f\x7f]", value)):
            raise ValueError("must be non-empty and free of control characters (it is sent in an HTTP header)")
        return value

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} does not exist or is not a file")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MimirSettings:
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("use either bearer_token or username/password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file is set but verify_tls is false: the CA would not be used")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        if self.metrics.preset is MetricsPreset.CUSTOM and self.metrics.queries is not None:
            problems = template_problems(self.metrics.queries)
            if problems:
                raise ValueError("metrics." + "; metrics.".join(problems))
        return self


T = TypeVar("T")


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metric: dict[str, str]
    value: tuple[float, str]


class _Rows(BaseModel):
    rows: list[_Row]


class _Signals:
    """The three signals' rows of one window, indexed by (namespace, deployment)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self.errors: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self.buckets: dict[tuple[str, str], dict[str, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))

    def add(self, signal: RedSeries, rows: Iterable[_Row]) -> None:
        """Index the rows; ValueError naming the first series whose value or `le` is not a sane count."""
        for row in rows:
            value = _count(row.value[1])
            if value is None:
                raise ValueError(f"{signal.value} series {_labels(row.metric)} has value {row.value[1]!r}, "
                                 "expected a finite count >= 0")
            ns, dep, rs = (row.metric.get(label, "") for label in (NAMESPACE, DEPLOYMENT, REPLICASET))
            if signal is RedSeries.REQUESTS:
                self.requests[(ns, dep)][rs] = value
            elif signal is RedSeries.ERRORS:
                self.errors[(ns, dep)][rs] = value
            else:
                le = _finite(row.metric.get("le", ""), allow_inf=True)
                if le is None:
                    raise ValueError(f"bucket series {_labels(row.metric)} has no valid le label")
                self.buckets[(ns, dep)][rs][le] = value

    def sample(self, workloads: Sequence[Workload]) -> RedSample | None:
        """The RED sample of the workloads together, or None when none of them has request series."""
        counts = list(_select(self.requests, workloads))
        if not counts:
            return None
        requests = sum(counts)
        errors = min(sum(_select(self.errors, workloads)), requests)
        merged: dict[float, float] = defaultdict(float)
        for buckets in _select(self.buckets, workloads):
            for le, count in buckets.items():
                merged[le] += count
        return RedSample(requests=requests, errors=errors, latency=_histogram(merged))


def _select(index: dict[tuple[str, str], dict[str, T]], workloads: Sequence[Workload]) -> Iterable[T]:
    for w in workloads:
        per_rs = index.get((w.namespace, w.deployment), {})
        if w.replicaset is None:
            yield from per_rs.values()
        elif w.replicaset in per_rs:
            yield per_rs[w.replicaset]


def _labels(metric: dict[str, str]) -> str:
    text = "{" + ", ".join(f"{k}={v!r}" for k, v in sorted(metric.items())) + "}"
    return text if len(text) <= 200 else text[:200] + "...}"


def _count(text: str) -> float | None:
    """A count from a row's value: finite, >= 0 and plausible; None otherwise."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if limits.plausible(value) else None


def _finite(text: str, allow_inf: bool = False) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or (math.isinf(value) and not (allow_inf and value > 0)) or value < 0:
        return None
    return value


def _histogram(merged: dict[float, float]) -> LatencyHistogram | None:
    """Cumulative buckets sorted by le and made monotonic (as histogram_quantile does); None without +Inf."""
    if math.inf not in merged:
        return None
    buckets, running = [], 0.0
    for le in sorted(merged):
        running = max(running, merged[le])
        buckets.append((le, running))
    return LatencyHistogram(buckets=tuple(buckets))


# --- errors ---------------------------------------------------------------------------------------

_STATUS = re.compile(r"^HTTP Status Code (\d+) \((b(['\"]).*\3)\)$", re.DOTALL)
_MIMIR_ERROR_ID = re.compile(r"err-mimir-[a-z0-9-]+")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def _http_error(exc: PrometheusApiClientException) -> tuple[BackendErrorKind, str]:
    """Kind and reason from prometheus-api-client's `HTTP Status Code N (b'body')` message."""
    message = str(exc)
    match = _STATUS.match(message)
    if not match:
        return BackendErrorKind.HTTP, message[:300]
    try:
        body = ast.literal_eval(match.group(2)).decode("utf-8", "replace")
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        body = match.group(2)
    return _http_problem(int(match.group(1)), body)


def _body_detail(body: str) -> str:
    """The API's `error` text, or the body, on one short line."""
    try:
        parsed = limits.loads(body[:100_000])
        detail = str(parsed.get("error") or body) if isinstance(parsed, dict) else body
    except ValueError:
        detail = body
    return " ".join(detail[:2000].split())[:300] or "(empty body)"


def _http_problem(status: int, body: str) -> tuple[BackendErrorKind, str]:
    """Kind and reason of a non-200 answer: Mimir's limit id or the API's `error` text, quoted short."""
    detail = _body_detail(body)
    limit = _MIMIR_ERROR_ID.search(body[:100_000])
    if limit:
        return BackendErrorKind.LIMIT, f"HTTP {status}, Mimir limit {limit.group(0)}: {detail}"
    if status == 429:
        return BackendErrorKind.LIMIT, f"rate limited: HTTP {status}: {detail}"
    return BackendErrorKind.HTTP, f"HTTP {status}: {detail}"


def _connection_reason(url: str, exc: requests.RequestException) -> str:
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        short = re.search(r"\[SSL[^\]]*\][^'\")]*", text)
        return f"TLS with {url} failed: {short.group(0) if short else text[:200]}"
    errno = _ERRNO.search(text)
    return f"cannot connect to {url}: {errno.group(1).strip() if errno else text[:200]}"


# --- the source -----------------------------------------------------------------------------------


class _Failure(Exception):
    """Internal: carries a BackendError out of the request helpers (never leaves this module)."""

    def __init__(self, error: BackendError) -> None:
        super().__init__(str(error))
        self.error = error


class MimirSource:
    """`MetricsSource` over Mimir's Prometheus API. Call `detect()` once at start-up."""

    def __init__(self, settings: MimirSettings, max_body_bytes: int = limits.MAX_BODY_BYTES) -> None:
        self.settings = settings
        self.max_body_bytes = max_body_bytes
        self.builder = QueryBuilder(settings.metrics)
        self.detect_error: BackendError | None = None
        """The last `detect()` failure; `fetch_red` retries detection while this is set."""
        headers = {"User-Agent": f"mop-canary/{__version__}"}
        if settings.tenant:
            headers["X-Scope-OrgID"] = settings.tenant
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        auth = None
        if settings.username is not None and settings.password is not None:
            auth = (settings.username, settings.password.get_secret_value())
        session = requests.Session()
        session.verify = str(settings.ca_file) if settings.ca_file else settings.verify_tls
        if settings.cert_file is not None and settings.key_file is not None:
            session.cert = (str(settings.cert_file), str(settings.key_file))
        self._client = PrometheusConnect(
            url=settings.url,
            headers=headers,
            disable_ssl=not settings.verify_tls,
            # One quick reconnect; never re-send a query that timed out or failed (the next tick will).
            retry=Retry(total=2, connect=1, read=False, status=0, other=0, redirect=3, backoff_factor=0.1,
                        raise_on_status=False),  # a 429/503 comes back as an answer: see _query_api
            auth=auth,
            session=session,
            timeout=settings.timeout_seconds,  # requests takes float seconds
        )

    @property
    def names(self) -> MetricNames:
        """The OBI metric names in use (`_seconds` suffix or not)."""
        return self.builder.names

    def close(self) -> None:
        self._client.close()

    # --- start-up ---

    def detect(self, end: datetime | None = None) -> None:
        """Find out whether OBI's metric names carry the `_seconds` suffix and adapt the queries.

        Looks at the `__name__` values of the hour before `end` (default now). With `_seconds` names,
        or none at all, the Prometheus naming stays; with only suffix-less names (OTLP into Mimir), the
        queries switch to them. A backend error is logged and kept in `detect_error`, never raised;
        `fetch_red` then retries detection before its queries. Only the `obi` preset has two namings.
        """
        self._detect(end)

    def _detect(self, end: datetime | None) -> QueryRecord | None:
        if self.settings.metrics.preset is not MetricsPreset.OBI:
            return None
        stop = _unix(end or datetime.now(UTC))
        probe = self.builder.naming_probe()
        params = {"match[]": probe, "start": f"{stop - DETECT_LOOKBACK_SECONDS:.3f}", "end": f"{stop:.3f}"}
        query = f"label __name__ values for {probe}"
        values, record = self._call(query, lambda: self._client.get_label_values("__name__", params=params))
        if record.error is not None:
            self.detect_error = record.error
            log.warning("could not detect OBI metric names, using %s_*: %s", self.names.http, record.error)
            return record
        self.detect_error = None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            error = self._error(query, BackendErrorKind.MALFORMED, "label values are not a list of strings")
            self.detect_error = error
            return record.model_copy(update={"error": error})
        naming = naming_from(values)
        if naming is not None and naming != self.builder.names:
            log.info("OBI metrics are named %s_* and %s_*: adapting the queries", naming.http, naming.rpc)
            self.builder = QueryBuilder(self.settings.metrics, naming)
        return record.model_copy(update={"series": len(values)})

    # --- MetricsSource ---

    def fetch_red(self, targets: Sequence[Target], end: datetime) -> BatchResult[RedSample]:
        """RED samples for every target's canary and baseline over its window ending at `end`."""
        records: list[QueryRecord] = []
        if not targets:
            return BatchResult()
        if self.detect_error is not None:
            detected = self._detect(end)
            if detected is not None:
                records.append(detected)
        by_window: dict[float, list[Target]] = defaultdict(list)
        for target in targets:
            by_window[target.window].append(target)
        values: dict[str, Pair[RedSample]] = {}
        errors: dict[str, BackendError] = {}
        for window, group in by_window.items():
            error = self._fetch_group(window, group, end, records, values)
            if error is not None:
                errors.update({target.key: error for target in group})
        if errors and len(by_window) == 1:
            return BatchResult(error=next(iter(errors.values())), queries=tuple(records))
        return BatchResult(values=values, target_errors=errors, queries=tuple(records))

    def _fetch_group(
        self, window: float, group: list[Target], end: datetime, records: list[QueryRecord],
        values: dict[str, Pair[RedSample]],
    ) -> BackendError | None:
        """The three queries of one window for its targets; the error that spoils this group, if any.
        A failing group never touches the others: each window's targets get their own answer."""
        flt = Filter(
            namespaces=frozenset(w.namespace for t in group for w in (t.canary, *t.baseline)),
            services=frozenset(t.service for t in group),
        )
        signals = _Signals()
        for signal in RedSeries:
            try:
                query = self.builder.query(signal, flt, window)
            except (ValueError, KeyError, OverflowError) as exc:
                return self._error("", BackendErrorKind.MALFORMED, f"cannot build the {signal.value} query: {exc}")
            rows, record = self._instant(query, end)
            if record.error is None:
                try:
                    signals.add(signal, rows)
                except ValueError as exc:
                    record = record.model_copy(update={"error": self._error(query, BackendErrorKind.MALFORMED,
                                                                            str(exc))})
            records.append(record)
            if record.error is not None:
                return record.error
        for target in group:
            values[target.key] = Pair(
                canary=signals.sample([target.canary]),
                baseline=signals.sample(target.baseline) if target.baseline else None,
            )
        return None

    def route_p99(self, target: Target, end: datetime) -> tuple[list[tuple[dict[str, str], float]], QueryRecord] | None:
        """p99 latency (seconds) per workload and route over `target`'s window; None without route labels."""
        flt = Filter(
            namespaces=frozenset(w.namespace for w in (target.canary, *target.baseline)),
            services=frozenset([target.service]),
        )
        query = self.builder.route_p99_query(flt, target.window)
        if query is None:
            return None
        rows, record = self._instant(query, end)
        return [(row.metric, value) for row in rows if (value := _finite(row.value[1])) is not None], record

    def route_counts(
        self, target: Target, end: datetime
    ) -> tuple[list[tuple[dict[str, str], float]], list[tuple[dict[str, str], float]], list[QueryRecord]] | None:
        """HTTP requests and 5xx answers per workload and route over `target`'s window (OBI's `http_route`),
        as (labels, count) rows, and the records (an error in the last one stops there). None when the
        metrics preset has no route label."""
        flt = Filter(
            namespaces=frozenset(w.namespace for w in (target.canary, *target.baseline)),
            services=frozenset([target.service]),
        )
        out: list[list[tuple[dict[str, str], float]]] = []
        records: list[QueryRecord] = []
        for errors in (False, True):
            query = self.builder.route_query(flt, target.window, errors=errors)
            if query is None:
                return None
            rows, record = self._instant(query, end)
            records.append(record)
            if record.error is not None:
                return [], [], records
            out.append([(row.metric, value) for row in rows if (value := _finite(row.value[1])) is not None])
        return out[0], out[1], records

    # --- CLI helper ---

    def discover_replicasets(
        self, namespace: str, deployment: str, end: datetime, window: float
    ) -> tuple[list[str], BackendError | None]:
        """The ReplicaSets of one Deployment that have request series in the `window` before `end`,
        OLDEST FIRST: the last one is the newest, i.e. the canary; the others are its baseline.

        Order: by the time each ReplicaSet's series first appeared within max(window, 1 h) before
        `end` (sampled every 1/120 of that), then by the time they were last seen, then by name.
        A ReplicaSet whose series predate the lookback ties with the others on first appearance.
        Returns ([], error) when the backend fails.
        """
        seen, error = self.replicaset_times(namespace, deployment, end, max(window, DISCOVERY_LOOKBACK_SECONDS))
        since = _unix(end) - window
        present = [rs for rs, (_, last) in seen.items() if last >= since]
        return sorted(present, key=lambda rs: (seen[rs][0], seen[rs][1], rs)), error

    def replicaset_times(
        self, namespace: str, deployment: str, end: datetime, lookback: float
    ) -> tuple[dict[str, tuple[float, float]], BackendError | None]:
        """(first, last) unix seconds at which each ReplicaSet of one Deployment had request series in
        the `lookback` before `end` (sampled every 1/120 of it); ({}, error) when the backend fails."""
        query = self.builder.presence_query(namespace, deployment, lookback)
        rows, record = self._instant(query, end)
        if record.error is not None:
            return {}, record.error
        first: dict[str, float] = {}
        last: dict[str, float] = {}
        for row in rows:
            rs = row.metric.get(REPLICASET, "")
            stamp = _finite(row.value[1])
            if not rs or stamp is None:
                continue
            (first if row.metric.get("canary_stat") == "first" else last)[rs] = stamp
        return {rs: (first[rs], last.get(rs, -math.inf)) for rs in first}, None

    # --- I/O ---

    def _instant(self, query: str, end: datetime) -> tuple[list[_Row], QueryRecord]:
        """One instant query, bounded by the query's (and tick's) deadline and the body cap; a 200 that
        carries `warnings` (e.g. a partial response) is an error, never a result with missing series."""
        params = {"query": query, "time": f"{_unix(end):.3f}",
                  "timeout": window_literal(self.settings.timeout_seconds)}
        started = time.monotonic()
        try:
            data = self._query_api(query, params)
            rows = _Rows(rows=data).rows
        except _Failure as failure:
            return [], QueryRecord(backend=Backend.MIMIR, query=query, seconds=time.monotonic() - started,
                                   error=failure.error)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"][1:])
            reason = f"unexpected result shape at data.result.{where}: {first['msg']}"
            return [], QueryRecord(backend=Backend.MIMIR, query=query, seconds=time.monotonic() - started,
                                   error=self._error(query, BackendErrorKind.MALFORMED, reason))
        return rows, QueryRecord(backend=Backend.MIMIR, query=query, seconds=time.monotonic() - started,
                                 series=len(rows))

    def _query_api(self, query: str, params: dict[str, str]) -> Any:
        """`data.result` of `/api/v1/query`, sent as a POST form when the query is too long for a URL."""
        deadline = limits.query_deadline(self.settings.timeout_seconds)
        url = f"{self.settings.url}/api/v1/query"
        post = len(urlencode(params)) > MAX_GET_BYTES
        for attempt in (1, 2):
            status, body, wait = self._send(query, url, params, post, deadline)
            if status == 429 or (status == 503 and wait is not None):
                reason = f"rate limited: HTTP {status}" + (f", Retry-After {wait:g}s" if wait is not None else "")
                honoured = wait is not None and wait <= limits.MAX_RETRY_AFTER and wait < limits.left(deadline)
                if attempt == 1 and honoured and wait is not None:
                    log.info("Mimir %s; retrying once within the deadline", reason)
                    time.sleep(wait)
                    continue
                detail = _body_detail(body.decode("utf-8", "replace"))
                raise _Failure(self._error(query, BackendErrorKind.LIMIT, f"{reason}: {detail}"))
            break
        text = body.decode("utf-8", "replace")
        if status != 200:
            kind, reason = _http_problem(status, text)
            raise _Failure(self._error(query, kind, reason))
        try:
            answer = limits.loads(body)
        except ValueError as exc:
            reason = f"the answer is not JSON: {exc}"
            raise _Failure(self._error(query, BackendErrorKind.MALFORMED, reason[:300])) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), dict) or "result" not in answer["data"]:
            reason = "the answer is JSON but not a Prometheus API response (missing data.result)"
            raise _Failure(self._error(query, BackendErrorKind.MALFORMED, reason))
        warnings = answer.get("warnings")
        if warnings:
            shown = "; ".join(str(w) for w in warnings)[:300] if isinstance(warnings, list) else str(warnings)[:300]
            reason = f"incomplete answer (warnings: {shown}): not judged on possibly missing series"
            raise _Failure(self._error(query, BackendErrorKind.LIMIT, reason))
        return answer["data"]["result"]

    def _send(
        self, query: str, url: str, params: dict[str, str], post: bool, deadline: float
    ) -> tuple[int, bytes, float | None]:
        """(status, body, Retry-After seconds) of one request; every failure becomes a _Failure."""
        remaining = limits.left(deadline)
        if remaining <= 0:
            raise _Failure(self._error(query, BackendErrorKind.TIMEOUT, self._late()))
        client = self._client
        try:
            response = client._session.request(
                "POST" if post else "GET", url, params=None if post else params, data=params if post else None,
                headers=client.headers, auth=client.auth, verify=client._session.verify, cert=client._session.cert,
                timeout=(min(remaining, 10.0), remaining), stream=True,
            )
            try:
                body = limits.read_body(lambda: response.raw.read1(65536, decode_content=True), deadline,
                                        self.max_body_bytes, f"{'POST' if post else 'GET'} /api/v1/query")
            finally:
                response.close()
        except limits.LimitExceeded as exc:
            kind = BackendErrorKind.TIMEOUT if exc.timeout else BackendErrorKind.LIMIT
            raise _Failure(self._error(query, kind, str(exc))) from None
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
            raise _Failure(self._error(query, BackendErrorKind.TIMEOUT, self._late())) from None
        except requests.RequestException as exc:
            reason = _connection_reason(self.settings.url, exc)
            raise _Failure(self._error(query, BackendErrorKind.CONNECTION, reason)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = f"connection to {self.settings.url} broke: {str(exc)[:200]}"
            raise _Failure(self._error(query, BackendErrorKind.CONNECTION, reason)) from None
        return response.status_code, body, limits.retry_after(response.headers.get("Retry-After"))

    def _late(self) -> str:
        return f"no answer from {self.settings.url} within {self.settings.timeout_seconds:g}s (or the tick's deadline)"

    def _call(self, query: str, call: Callable[[], Any]) -> tuple[Any, QueryRecord]:
        """Run one API call; every failure becomes the record's BackendError."""
        started = time.monotonic()
        error: BackendError | None = None
        result: Any = None
        try:
            result = call()
        except (requests.exceptions.JSONDecodeError, RecursionError) as exc:
            error = self._error(query, BackendErrorKind.MALFORMED, f"the answer is not JSON: {str(exc)[:200]}")
        except (KeyError, TypeError) as exc:
            reason = f"the answer is JSON but not a Prometheus API response (missing {exc})"
            error = self._error(query, BackendErrorKind.MALFORMED, reason)
        except requests.exceptions.Timeout:
            reason = f"no answer from {self.settings.url} within {self.settings.timeout_seconds:g}s"
            error = self._error(query, BackendErrorKind.TIMEOUT, reason)
        except requests.RequestException as exc:
            error = self._error(query, BackendErrorKind.CONNECTION, _connection_reason(self.settings.url, exc))
        except PrometheusApiClientException as exc:
            kind, reason = _http_error(exc)
            error = self._error(query, kind, reason)
        seconds = time.monotonic() - started
        return result, QueryRecord(backend=Backend.MIMIR, query=query, seconds=seconds, error=error)

    @staticmethod
    def _error(query: str, kind: BackendErrorKind, reason: str) -> BackendError:
        return BackendError(backend=Backend.MIMIR, query=query, kind=kind, reason=reason)


def _unix(moment: datetime) -> float:
    """Unix seconds; a naive datetime is taken as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
