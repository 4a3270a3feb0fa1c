"""PromQL for the RED signals, built from escaped label matchers: pure functions, no I/O.

Every query groups by the workload labels (`k8s_namespace_name`, `k8s_deployment_name`,
`k8s_replicaset_name`, plus `le` for latency buckets) so that ONE query per signal and window serves
every canary and baseline of a tick; `canary.sources.mimir` splits the rows per target.

Presets:
- `obi`: OBI's `http_server_request_duration_seconds_*` and `rpc_server_duration_seconds_*` together;
  errors are HTTP 5xx and gRPC codes 2, 4, 12, 13, 14, 15. `MetricNames` holds the names, which lack
  the `_seconds` suffix when OTLP was ingested into Mimir without suffixes.
- `spanmetrics`: Tempo's metrics-generator `traces_spanmetrics_calls_total` and
  `traces_spanmetrics_latency_bucket` for `span_kind="SPAN_KIND_SERVER"`; errors have
  `status_code="STATUS_CODE_ERROR"`; the service label is `service`.
- `custom`: the user's templates (`QueryTemplates`) with placeholders `$window` (e.g. `2m`),
  `$selector` (the namespace matcher, escaped, e.g. `k8s_namespace_name=~"shop|cart"`) and `$service`
  (an escaped regex alternation of the services, for use inside `=~"..."`; `.*` when the batch has
  so many services that the query would be too long).

Label values are regex-escaped and then PromQL-string-escaped, so a hostile name can only ever be
matched literally.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from string import Template
from typing import Final
from urllib.parse import quote

from canary.config.slo import Metrics, MetricsPreset, QueryTemplates
from canary.config.units import format_duration

NAMESPACE: Final = "k8s_namespace_name"
DEPLOYMENT: Final = "k8s_deployment_name"
REPLICASET: Final = "k8s_replicaset_name"
WORKLOAD_LABELS: Final = (NAMESPACE, DEPLOYMENT, REPLICASET)
GROUPING: Final = ", ".join(WORKLOAD_LABELS)

HTTP_ERROR_CODES: Final = "5.."
GRPC_ERROR_CODES: Final = "2|4|12|13|14|15"
"""UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS."""

MAX_QUERY_BYTES: Final = 6000
"""URL-encoded query length above which the per-service filter is dropped and only namespaces filter
the query: the Prometheus API takes the query in the URL, and proxies commonly cap URLs near 8 KiB."""

PLACEHOLDERS: Final = frozenset({"window", "selector", "service"})


class RedSeries(StrEnum):
    """The series of the RED method each preset query reads."""

    REQUESTS = "requests"
    ERRORS = "errors"
    LATENCY_BUCKETS = "latency_buckets"


@dataclass(frozen=True)
class MetricNames:
    """OBI metric base names; `with_seconds()` is the Prometheus naming, `without_seconds()` OTLP's."""

    http: str
    rpc: str

    @staticmethod
    def with_seconds() -> MetricNames:
        return MetricNames("http_server_request_duration_seconds", "rpc_server_duration_seconds")

    @staticmethod
    def without_seconds() -> MetricNames:
        return MetricNames("http_server_request_duration", "rpc_server_duration")


SPANMETRICS_CALLS: Final = "traces_spanmetrics_calls_total"
SPANMETRICS_BUCKETS: Final = "traces_spanmetrics_latency_bucket"


# --- escaping -----------------------------------------------------------------------------------


def promql_string(value: str) -> str:
    """`value` as a double-quoted, all-ASCII PromQL string literal: backslash, quote, control and
    non-ASCII characters escaped."""
    return '"' + promql_string_body(value) + '"'


def promql_string_body(value: str) -> str:
    """The inside of `promql_string(value)`, for a template that supplies the quotes itself."""
    out = []
    for char in value:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # a lone surrogate is not valid UTF-8 and can match no real label
        elif code > 0x7F:
            # Escaped so the query stays ASCII: Prometheus' lexer rejects U+FFFD even when well-formed.
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def regex_literal(value: str) -> str:
    """A RE2 regex matching exactly `value` (Prometheus anchors `=~` matchers)."""
    return re.escape(value)


def regex_any(values: Iterable[str]) -> str:
    """A regex alternation matching exactly one of `values` (sorted, deduplicated, empty ones left out)."""
    return "|".join(regex_literal(v) for v in sorted({v for v in values if v}))


def matcher(label: str, values: Iterable[str]) -> str:
    """`label=~"a|b"` matching exactly the given values, each escaped (empty values are left out)."""
    return f"{label}=~{promql_string(regex_any(values))}"


def window_literal(seconds: float) -> str:
    """A PromQL range such as `2m`, `90s` or `1500ms`."""
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms"
    return format_duration(millis / 1000)


# --- selectors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """Which series a batched query looks at: the targets' namespaces and services."""

    namespaces: frozenset[str]
    services: frozenset[str]

    def selector(self, service_label: str | None) -> str:
        """Escaped label matchers (no braces): the namespaces, and the services under `service_label`."""
        parts = [matcher(NAMESPACE, self.namespaces)]
        if service_label is not None and self.services:
            parts.append(matcher(service_label, self.services))
        return ", ".join(parts)

    def namespaces_only(self) -> Filter:
        return Filter(namespaces=self.namespaces, services=frozenset())


def _sum_increase(metric: str, matchers: str, window: str, by: str) -> str:
    return f"sum by ({by}) (increase({metric}{{{matchers}}}[{window}]))"


def _union(parts: list[str], by: str) -> str:
    """Sum of several aggregated vectors that may each lack some groups.

    `a or b` alone would drop b's value for groups present in a; tagging each part with its own
    `canary_part` label first keeps them apart until the outer sum adds them up.
    """
    if len(parts) == 1:
        return parts[0]
    tagged = " or ".join(f'label_replace({p}, "canary_part", "{i}", "", "")' for i, p in enumerate(parts))
    return f"sum by ({by}) ({tagged})"


# --- queries ------------------------------------------------------------------------------------


class QueryBuilder:
    """The three batched RED queries of one metrics preset."""

    def __init__(self, metrics: Metrics, names: MetricNames | None = None) -> None:
        self.metrics = metrics
        self.names = names or MetricNames.with_seconds()

    @property
    def service_label(self) -> str | None:
        if self.metrics.preset is MetricsPreset.OBI:
            return "service_name"
        if self.metrics.preset is MetricsPreset.SPANMETRICS:
            return "service"
        return None

    def query(self, signal: RedSeries, flt: Filter, window_seconds: float) -> str:
        """The PromQL for `signal` over `window_seconds`, for every workload that `flt` selects; filtered
        by namespaces only when the service filter would make it longer than MAX_QUERY_BYTES encoded."""
        query = self._query(signal, flt, window_seconds)
        if len(quote(query)) > MAX_QUERY_BYTES and flt.services:
            return self._query(signal, flt.namespaces_only(), window_seconds)
        return query

    def _query(self, signal: RedSeries, flt: Filter, window_seconds: float) -> str:
        window = window_literal(window_seconds)
        if self.metrics.preset is MetricsPreset.CUSTOM:
            assert self.metrics.queries is not None  # guaranteed by Metrics' validator
            return render_template(self.metrics.queries, signal, flt, window)
        selector = flt.selector(self.service_label)
        by = GROUPING + (", le" if signal is RedSeries.LATENCY_BUCKETS else "")
        if self.metrics.preset is MetricsPreset.SPANMETRICS:
            server = f'{selector}, span_kind="SPAN_KIND_SERVER"'
            if signal is RedSeries.REQUESTS:
                return _sum_increase(SPANMETRICS_CALLS, server, window, by)
            if signal is RedSeries.ERRORS:
                return _sum_increase(SPANMETRICS_CALLS, f'{server}, status_code="STATUS_CODE_ERROR"', window, by)
            return _sum_increase(SPANMETRICS_BUCKETS, server, window, by)
        http, rpc = self.names.http, self.names.rpc
        if signal is RedSeries.REQUESTS:
            parts = [_sum_increase(f"{http}_count", selector, window, by),
                     _sum_increase(f"{rpc}_count", selector, window, by)]
        elif signal is RedSeries.ERRORS:
            http_errors = f'{selector}, http_response_status_code=~"{HTTP_ERROR_CODES}"'
            rpc_errors = f'{selector}, rpc_grpc_status_code=~"{GRPC_ERROR_CODES}"'
            parts = [_sum_increase(f"{http}_count", http_errors, window, by),
                     _sum_increase(f"{rpc}_count", rpc_errors, window, by)]
        else:
            parts = [_sum_increase(f"{http}_bucket", selector, window, by),
                     _sum_increase(f"{rpc}_bucket", selector, window, by)]
        return _union(parts, by)

    def route_p99_query(self, flt: Filter, window_seconds: float) -> str | None:
        """p99 HTTP request duration (seconds) per workload, method and route over the window (OBI only)."""
        if self.metrics.preset is not MetricsPreset.OBI:
            return None
        by = f"{GROUPING}, http_request_method, http_route"
        buckets = _sum_increase(f"{self.names.http}_bucket", flt.selector(self.service_label),
                                window_literal(window_seconds), f"{by}, le")
        return f"histogram_quantile(0.99, {buckets})"

    def route_query(self, flt: Filter, window_seconds: float, *, errors: bool) -> str | None:
        """HTTP requests (or 5xx answers) per workload, method and route (OBI's `http_route`) over the
        window, for root-cause evidence; None for presets whose series carry no route."""
        if self.metrics.preset is not MetricsPreset.OBI:
            return None
        selector = flt.selector(self.service_label)
        if errors:
            selector += f', http_response_status_code=~"{HTTP_ERROR_CODES}"'
        by = f"{GROUPING}, http_request_method, http_route"
        return _sum_increase(f"{self.names.http}_count", selector, window_literal(window_seconds), by)

    def presence_query(self, namespace: str, deployment: str, lookback_seconds: float) -> str:
        """Per ReplicaSet of one Deployment, when its request series were first and last seen (unix
        seconds) in the lookback, as rows tagged `canary_stat="first"` / `"last"`, sampled at
        lookback/120 (at least 1 s) and at the query time.

        For `obi` and `spanmetrics` these are the raw counter samples' timestamps; for `custom`, the
        steps at which the requests template (with `$window` = `1m`) returns a row for the ReplicaSet.
        """
        lookback = window_literal(lookback_seconds)
        step = window_literal(max(1.0, round(lookback_seconds / 120)))
        flt = f"{matcher(NAMESPACE, [namespace])}, {matcher(DEPLOYMENT, [deployment])}"
        if self.metrics.preset is MetricsPreset.CUSTOM:
            assert self.metrics.queries is not None
            requests = Template(self.metrics.queries.requests).substitute(window="1m", selector=flt, service=".+")
            inner = f"timestamp({requests})"
        elif self.metrics.preset is MetricsPreset.SPANMETRICS:
            inner = f'timestamp({SPANMETRICS_CALLS}{{{flt}, span_kind="SPAN_KIND_SERVER"}})'
        else:
            inner = " or ".join(f"timestamp({name}_count{{{flt}}})" for name in (self.names.http, self.names.rpc))
        # A series younger than one step has no subquery point yet: its sample at the query time stands in
        # (so a canary that started seconds ago is found, and "last seen" is exact, not a step behind).
        first = f"min by ({REPLICASET}) (min_over_time(({inner})[{lookback}:{step}]) or ({inner}))"
        last = f"max by ({REPLICASET}) (({inner}) or max_over_time(({inner})[{lookback}:{step}]))"
        return (
            f'label_replace({first}, "canary_stat", "first", "", "") '
            f'or label_replace({last}, "canary_stat", "last", "", "")'
        )

    def naming_probe(self) -> str:
        """A `match[]` selector for the `__name__` values that tell OBI's two namings apart."""
        both = "|".join(
            f"{n}_count" for names in (MetricNames.with_seconds(), MetricNames.without_seconds())
            for n in (names.http, names.rpc)
        )
        return f'{{__name__=~"{both}"}}'


def naming_from(names_found: Iterable[str]) -> MetricNames | None:
    """The OBI naming present in Mimir: `_seconds` when any such series exist, else the suffix-less
    OTLP names when those exist, else None (nothing to tell from)."""
    found = set(names_found)
    for naming in (MetricNames.with_seconds(), MetricNames.without_seconds()):
        if {f"{naming.http}_count", f"{naming.rpc}_count"} & found:
            return naming
    return None


# --- custom templates ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$(?:(\w+)|\{(\w+)\}|(\$))")


def render_template(templates: QueryTemplates, signal: RedSeries, flt: Filter, window: str) -> str:
    text = {
        RedSeries.REQUESTS: templates.requests,
        RedSeries.ERRORS: templates.errors,
        RedSeries.LATENCY_BUCKETS: templates.latency_buckets,
    }[signal]
    return Template(text).substitute(
        window=window,
        selector=flt.selector(None),
        service=promql_string_body(regex_any(flt.services)) if flt.services else ".*",
    )


def template_problems(templates: QueryTemplates) -> list[str]:
    """Why user templates cannot work, one sentence each naming the field; empty when they are fine."""
    problems = []
    for field, text in (
        ("requests", templates.requests),
        ("errors", templates.errors),
        ("latencyBuckets", templates.latency_buckets),
    ):
        if not Template(text).is_valid():
            problems.append(f"queries.{field}: a '$' that starts no placeholder (write $$ for a literal '$')")
            continue
        names = {m.group(1) or m.group(2) for m in _PLACEHOLDER.finditer(text) if not m.group(3)}
        unknown = sorted(names - PLACEHOLDERS)
        if unknown:
            problems.append(
                f"queries.{field}: unknown placeholder(s) {', '.join('$' + u for u in unknown)}; "
                "use $window, $selector and $service"
            )
        if "window" not in names:
            problems.append(f"queries.{field}: must use $window (the analysis window, e.g. increase(...[$window]))")
        missing = [label for label in WORKLOAD_LABELS if label not in text]
        if field == "latencyBuckets" and not re.search(r"\ble\b", text):
            missing.append("le")
        if missing:
            problems.append(
                f"queries.{field}: must group by {', '.join(missing)} "
                "(e.g. sum by (k8s_namespace_name, k8s_deployment_name, k8s_replicaset_name"
                + (", le" if field == "latencyBuckets" else "")
                + ") (...))"
            )
        if text.count("(") != text.count(")") or text.count("{") != text.count("}"):
            problems.append(f"queries.{field}: unbalanced parentheses or braces")
    return problems
