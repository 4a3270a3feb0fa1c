"""LogQL text for the Loki source, with every value escaped so that no name can change a query. Pure.

The log labels are those the MOP stack's Alloy sets on pod logs (`stack/lib/mop/alloy.libsonnet`):
`namespace`, `pod`, `container`, `app`. A workload's pods are picked by name: a ReplicaSet's pods are
`<replicaset>-<suffix>`, a Deployment's `<deployment>-<template hash>-<suffix>`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from canary.samples import Workload
from canary.sources.traceql import quote

ERROR_LEVELS = "error|fatal|critical|panic"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def regex_literal(text: str) -> str:
    """`text` as an RE2 pattern matching itself (its metacharacters escaped)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def pods_selector(workload: Workload) -> str:
    """The stream selector of `workload`'s pods."""
    if workload.replicaset is not None:
        pods = regex_literal(workload.replicaset) + "-[a-z0-9]+"
    else:
        pods = regex_literal(workload.deployment) + "-[a-z0-9]+-[a-z0-9]+"
    return "{namespace=" + quote(workload.namespace) + ", pod=~" + quote(pods) + "}"


def _ids(trace_ids: Sequence[str]) -> str:
    ids = [t for t in trace_ids if _TRACE_ID.fullmatch(t)]
    if not ids:
        raise ValueError("a LogQL trace-id filter needs at least one 32-hex-digit trace id")
    return "|".join(ids)


def lines_with_trace_ids(workload: Workload, trace_ids: Sequence[str]) -> str:
    """Lines that hold one of the trace ids in their text (`trace_id=...` logfmt, JSON, ...)."""
    return f"{pods_selector(workload)} |~ {quote(_ids(trace_ids))}"


def lines_with_trace_id_metadata(workload: Workload, trace_ids: Sequence[str]) -> str:
    """Lines whose structured metadata `trace_id` is one of the ids (OTLP logs)."""
    return f"{pods_selector(workload)} | trace_id=~{quote(_ids(trace_ids))}"


def error_lines(workload: Workload) -> str:
    """Lines at error level or worse, by Loki's `detected_level`."""
    return f"{pods_selector(workload)} | detected_level=~{quote(ERROR_LEVELS)}"
