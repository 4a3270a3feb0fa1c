"""TraceQL text for the Tempo source, with every label value escaped so that no name can change a query.

Pure functions, no I/O. One query pair (all server spans, error server spans) serves every target of a
tick: each target adds a clause `service && namespace && deployment in (...)`, and the series are
grouped only by the labels that tell the targets' workloads apart (see `group_by`).

Gotchas this module encodes:
- `kind = server` is the span-kind intrinsic; `span.kind` would look up a span *attribute* named
  `kind`, which OBI does not set, and silently match nothing.
- A value interpolated between quotes without escaping can close the string: with the deployment name
  `x" || resource.k8s.deployment.name != "` the query would select every deployment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from canary.samples import Target, Workload

SERVICE: Final = "resource.service.name"
NAMESPACE: Final = "resource.k8s.namespace.name"
DEPLOYMENT: Final = "resource.k8s.deployment.name"
REPLICASET: Final = "resource.k8s.replicaset.name"

SERVER_SPANS: Final = "kind = server"
ERROR_SPANS: Final = "status = error"

_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(value: str) -> str:
    """`value` as a TraceQL (Go syntax) double-quoted string literal.

    Backslash, double quote and the usual control characters get their backslash escapes, other
    control characters `\\uXXXX`; a lone surrogate (not valid text anywhere) becomes U+FFFD.
    """
    out = ['"']
    for char in value:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _eq(attribute: str, value: str) -> str:
    return f"{attribute} = {quote(value)}"


def _any_of(attribute: str, values: Iterable[str]) -> str:
    terms = [_eq(attribute, v) for v in sorted(set(values))]
    return terms[0] if len(terms) == 1 else "(" + " || ".join(terms) + ")"


def workloads(target: Target) -> tuple[Workload, ...]:
    return (target.canary, *target.baseline)


def group_by(targets: Sequence[Target]) -> tuple[str, ...]:
    """The grouping labels needed to split the answer per workload, and no more.

    The deployment always; the namespace only when the targets span several namespaces (otherwise
    the filter pins it); the ReplicaSet only when some target compares ReplicaSets (guard mode).
    Fewer labels mean fewer series for Tempo to build and send.
    """
    labels = [DEPLOYMENT]
    all_workloads = [w for t in targets for w in workloads(t)]
    if len({w.namespace for w in all_workloads}) > 1:
        labels.insert(0, NAMESPACE)
    if any(w.replicaset is not None for w in all_workloads):
        labels.append(REPLICASET)
    return tuple(labels)


def selector(targets: Sequence[Target]) -> str:
    """Spans of every target's canary and baseline workloads: one clause per (service, namespace)."""
    deployments: dict[tuple[str, str], set[str]] = {}
    for target in targets:
        for workload in workloads(target):
            deployments.setdefault((target.service, workload.namespace), set()).add(workload.deployment)
    clauses = [
        f"{_eq(SERVICE, service)} && {_eq(NAMESPACE, namespace)} && {_any_of(DEPLOYMENT, names)}"
        for (service, namespace), names in sorted(deployments.items())
    ]
    if not clauses:
        raise ValueError("a TraceQL selector needs at least one target")
    return clauses[0] if len(clauses) == 1 else "(" + " || ".join(f"({c})" for c in clauses) + ")"


def rate_query(targets: Sequence[Target], *, errors: bool) -> str:
    """`{ <targets> && kind = server [&& status = error] } | rate() by (<group_by>)`."""
    conditions = [selector(targets), SERVER_SPANS]
    if errors:
        conditions.append(ERROR_SPANS)
    return "{ " + " && ".join(conditions) + " } | rate() by (" + ", ".join(group_by(targets)) + ")"


def failing_spans_query(target: Target) -> str:
    """The canary's failing server spans, for `/api/search` and for a Grafana Explore link."""
    canary = target.canary
    conditions = [_eq(SERVICE, target.service), _eq(NAMESPACE, canary.namespace), _eq(DEPLOYMENT, canary.deployment)]
    if canary.replicaset is not None:
        conditions.append(_eq(REPLICASET, canary.replicaset))
    conditions += [SERVER_SPANS, ERROR_SPANS]
    return "{ " + " && ".join(conditions) + " }"
