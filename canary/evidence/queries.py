"""TraceQL for root-cause evidence, every value escaped (`canary.sources.traceql.quote`). Pure.

A bounded set per rollback, whatever the number of routes:
- `route_counts`: server spans (all, then failing) per workload and route, canary and baseline in one query;
- `downstream_counts`: failing spans below failing server spans (`>>`), grouped by the failing span's
  service, name and status message, once for the canary and once for the baseline;
- `failing_downstream_search`: example canary traces with the failing span (`select(...)`).

Gotchas (tests/fixtures/tempo-evidence/README.md): `status.message` is not TraceQL (`statusMessage` is);
in a structural query `by()` labels and search spans come from the right-hand (failing) span; names are
not unique across namespaces, so the namespace is always pinned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from canary.samples import Target, Workload
from canary.sources import traceql
from canary.sources.traceql import DEPLOYMENT, NAMESPACE, REPLICASET, SERVICE, quote

METHOD: Final = "span.http.request.method"
ROUTE: Final = "span.http.route"
SPAN_SERVICE: Final = "resource.service.name"
SPAN_NAME: Final = "name"
STATUS_MESSAGE: Final = "statusMessage"
FAILING: Final = "status = error"


def workload_clause(service: str, workload: Workload) -> str:
    terms = [
        f"{SERVICE} = {quote(service)}",
        f"{NAMESPACE} = {quote(workload.namespace)}",
        f"{DEPLOYMENT} = {quote(workload.deployment)}",
    ]
    if workload.replicaset is not None:
        terms.append(f"{REPLICASET} = {quote(workload.replicaset)}")
    return " && ".join(terms)


def workloads_clause(service: str, workloads: Sequence[Workload]) -> str:
    clauses = [workload_clause(service, w) for w in workloads]
    if not clauses:
        raise ValueError("a TraceQL clause needs at least one workload")
    return clauses[0] if len(clauses) == 1 else "(" + " || ".join(f"({c})" for c in clauses) + ")"


def route_group_by(target: Target) -> tuple[str, ...]:
    return (*traceql.group_by([target]), METHOD, ROUTE)


def route_counts(target: Target, *, errors: bool) -> str:
    """Server spans of the canary and its baseline per workload and route (`count_over_time`)."""
    conditions = [traceql.selector([target]), traceql.SERVER_SPANS]
    if errors:
        conditions.append(FAILING)
    return "{ " + " && ".join(conditions) + " } | count_over_time() by (" + ", ".join(route_group_by(target)) + ")"


def route_p99(target: Target) -> str:
    """p99 duration of the canary's and baseline's server spans per workload and route."""
    selector = "{ " + " && ".join([traceql.selector([target]), traceql.SERVER_SPANS]) + " }"
    return f"{selector} | quantile_over_time(duration, .99) by ({', '.join(route_group_by(target))})"


def slow_requests(target: Target, at_least_ms: int) -> str:
    """The canary's server spans that took at least `at_least_ms` milliseconds."""
    clause = workloads_clause(target.service, (target.canary,))
    return "{ " + " && ".join([clause, traceql.SERVER_SPANS, f"duration >= {max(1, at_least_ms)}ms"]) + " }"


def slow_requests_search(target: Target, at_least_ms: int) -> str:
    return f"{slow_requests(target, at_least_ms)} | select({ROUTE})"


def failing_requests(target: Target, workloads: Sequence[Workload]) -> str:
    """`{ <workloads> && kind = server && status = error }`."""
    return "{ " + " && ".join([workloads_clause(target.service, workloads), traceql.SERVER_SPANS, FAILING]) + " }"


def failing_below(target: Target, workloads: Sequence[Workload]) -> str:
    """Failing spans anywhere below the workloads' failing server spans."""
    return f"{failing_requests(target, workloads)} >> {{ {FAILING} }}"


def downstream_counts(target: Target, workloads: Sequence[Workload]) -> str:
    """Failing spans below failing requests, by the failing span's service, name and status message."""
    return f"{failing_below(target, workloads)} | count_over_time() by ({SPAN_SERVICE}, {SPAN_NAME}, {STATUS_MESSAGE})"


def failing_downstream_search(target: Target) -> str:
    """Canary traces with a failing span below a failing request, showing the failing span."""
    return f"{failing_below(target, (target.canary,))} | select({SPAN_SERVICE}, {STATUS_MESSAGE})"


def failing_requests_search(target: Target) -> str:
    """Canary traces with a failing request (when nothing failed below it), showing its route."""
    return f"{failing_requests(target, (target.canary,))} | select({ROUTE})"
