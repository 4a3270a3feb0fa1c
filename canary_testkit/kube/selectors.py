"""Label and field selectors, parsed and matched as the API server does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from canary_testkit.kube.errors import bad_request

_PREFIX = r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
LABEL_KEY = re.compile(rf"^{_PREFIX}[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    """One of `=`, `!=`, `in`, `notin`, `exists`, `!`."""
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _check_key(key: str, text: str) -> str:
    if not LABEL_KEY.match(key) or len(key.rpartition("/")[2]) > 63:
        raise bad_request(f'unable to parse requirement: invalid label key "{key}" in selector "{text}"')
    return key


def _check_value(value: str, text: str) -> str:
    if not LABEL_VALUE.match(value) or len(value) > 63:
        raise bad_request(f'unable to parse requirement: invalid label value "{value}" in selector "{text}"')
    return value


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse `a=b,c!=d,e in (f,g),h notin (i),j,!k`; raise a 400 Status naming the bad part."""
    if not text or not text.strip():
        return []
    requirements: list[Requirement] = []
    for part in _split_top_level(text):
        if not part:
            raise bad_request(f'unable to parse requirement: empty requirement in selector "{text}"')
        set_match = re.fullmatch(r"(\S+)\s+(in|notin)\s*\((.*)\)", part)
        if set_match:
            key = _check_key(set_match.group(1), text)
            values = tuple(_check_value(v.strip(), text) for v in set_match.group(3).split(",") if v.strip())
            if not values:
                raise bad_request(f'unable to parse requirement: "{part}" needs at least one value')
            requirements.append(Requirement(key, set_match.group(2), values))
            continue
        op_match = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(\S*)", part)
        if op_match:
            key = _check_key(op_match.group(1), text)
            op = "!=" if op_match.group(2) == "!=" else "="
            requirements.append(Requirement(key, op, (_check_value(op_match.group(3), text),)))
            continue
        if part.startswith("!"):
            requirements.append(Requirement(_check_key(part[1:].strip(), text), "!"))
            continue
        if re.fullmatch(r"\S+", part):
            requirements.append(Requirement(_check_key(part, text), "exists"))
            continue
        raise bad_request(f'unable to parse requirement: "{part}" in selector "{text}"')
    return requirements


def labels_match(requirements: list[Requirement], obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


def selector_from_label_selector(selector: dict[str, Any] | None) -> list[Requirement]:
    """A `LabelSelector` object (matchLabels + matchExpressions) as requirements."""
    if not selector:
        return []
    requirements = [Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(f"unsupported matchExpressions operator {expr.get('operator')!r}")
        requirements.append(Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())))
    return requirements


def format_label_selector(selector: dict[str, Any] | None) -> str:
    """The string form of a `LabelSelector`, as in `status.selector` of a Scale."""
    parts = []
    for r in selector_from_label_selector(selector):
        if r.op == "=":
            parts.append(f"{r.key}={r.values[0]}")
        elif r.op in ("in", "notin"):
            parts.append(f"{r.key} {r.op} ({','.join(r.values)})")
        else:
            parts.append(r.key if r.op == "exists" else f"!{r.key}")
    return ",".join(parts)


# -- field selectors -----------------------------------------------------------------------------

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_EXTRA_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "events"): (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("events.k8s.io", "events"): (
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "reason",
        "reportingController",
        "type",
    ),
    ("", "pods"): ("spec.nodeName", "spec.serviceAccountName", "status.phase"),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("apps", "replicasets"): ("status.replicas",),
}


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    value: str
    equal: bool

    def matches(self, obj: dict[str, Any]) -> bool:
        current: Any = obj
        for part in self.path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if self.path == "source" and isinstance(obj.get("source"), dict):
            current = obj["source"].get("component")
        text = "" if current is None else str(current)
        return (text == self.value) == self.equal


def parse_field_selector(text: str | None, group: str, plural: str) -> list[FieldRequirement]:
    """Parse `metadata.name=x,metadata.namespace!=y`; unknown fields get the API server's 400."""
    if not text or not text.strip():
        return []
    allowed = _COMMON_FIELDS + _EXTRA_FIELDS.get((group, plural), ())
    requirements = []
    for part in _split_top_level(text):
        match = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(.*)", part)
        if not match:
            raise bad_request(f'invalid field selector: "{part}" in "{text}"')
        path, op, value = match.groups()
        if path not in allowed:
            raise bad_request(f"field label not supported: {path} (for {plural}; supported: {', '.join(allowed)})")
        requirements.append(FieldRequirement(path, value, op != "!="))
    return requirements


def fields_match(requirements: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    return all(r.matches(obj) for r in requirements)
