"""Load ServiceSLOs from YAML files (several documents each) and from labelled ConfigMaps.

Every problem becomes a ConfigError naming where it is (file or ConfigMap, document, object),
the field path and the reason; one bad document never hides the good ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from canary.config.slo import API_VERSION, KIND, MetricsPreset, ServiceSLO

SLO_CONFIGMAP_LABEL = "canary.mop.dev/slo-config"


class ConfigError(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    """File path or `ConfigMap ns/name key`."""
    document: int | None = None
    """0-based index of the YAML document in the source."""
    object: str | None = None
    """`namespace/name` of the object, when it could be read."""
    kind: str = "ServiceSLO"
    """Kind of `object`."""
    field: str = ""
    """Dotted field path, e.g. `spec.analysis.failedChecks`."""
    reason: str

    def __str__(self) -> str:
        where = self.source
        if self.document is not None:
            where += f" (document {self.document + 1})"
        if self.object:
            where += f" {self.kind} {self.object}"
        field = f" field {self.field}:" if self.field else ""
        return f"{where}:{field} {self.reason}"


class LoadResult(BaseModel):
    slos: list[ServiceSLO] = []
    errors: list[ConfigError] = []

    def extend(self, other: LoadResult) -> None:
        self.slos.extend(other.slos)
        self.errors.extend(other.errors)


def _field_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _object_name(doc: Mapping[str, Any], default_namespace: str | None) -> str | None:
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return None
    ns = meta.get("namespace") or default_namespace
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


MAX_DEPTH = 50
"""Deepest nesting of a ServiceSLO document (a real one nests about 5 deep)."""
_DOCUMENT_START = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML says they are an error; PyYAML keeps the last) and
    nesting deeper than MAX_DEPTH (PyYAML recurses once per level and would crash)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (YAML keys must be unique)", key_node.start_mark
                )
            if isinstance(key, str | int | float | bool):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_error(exc: Exception, source: str, document: int | None = None) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
    return ConfigError(source=source, document=document, reason=f"invalid YAML{at}: {problem}")


def _load_all(text: str, source: str) -> tuple[list[tuple[int, Any]], list[ConfigError]]:
    """(index, document) pairs; when the stream does not parse, each document on its own, so that one
    bad document never hides the good ones."""
    try:
        return list(enumerate(yaml.load_all(text, Loader=_StrictLoader))), []
    except (yaml.YAMLError, RecursionError) as exc:
        whole = _yaml_error(exc, source)
    parts = _DOCUMENT_START.split(text)
    if len(parts) == 1:
        return [], [whole]
    if not parts[0].strip() or all(line.lstrip().startswith(("#", "%")) or not line.strip()
                                   for line in parts[0].splitlines()):
        parts = parts[1:]  # text before the first `---` holds no document
    docs: list[tuple[int, Any]] = []
    errors: list[ConfigError] = []
    for index, part in enumerate(parts):
        try:
            docs.append((index, yaml.load(part, Loader=_StrictLoader)))
        except (yaml.YAMLError, RecursionError) as exc:
            errors.append(_yaml_error(exc, source, index))
    return docs, errors


def _query_problems(slo: ServiceSLO) -> list[tuple[str, str]]:
    """(field, reason) for custom queries that cannot work (no `$window`, a stray `$`, ...)."""
    metrics = slo.spec.metrics
    if metrics.preset is not MetricsPreset.CUSTOM or metrics.queries is None:
        return []
    from canary.sources.promql import template_problems  # the query language lives with the sources

    return [(field, reason) for field, _, reason in (p.partition(": ") for p in template_problems(metrics.queries))]


def parse_documents(text: str, source: str, default_namespace: str | None = None) -> LoadResult:
    """Parse every YAML document in `text`; documents of other kinds are skipped.

    With `default_namespace` (a ConfigMap's), a ServiceSLO counts only in that namespace: one that
    names another namespace is an error, never an SLO of that namespace."""
    result = LoadResult()
    docs, errors = _load_all(text, source)
    result.errors.extend(errors)
    for index, doc in docs:
        try:
            _parse_document(doc, index, source, default_namespace, result)
        except RecursionError:
            result.errors.append(ConfigError(source=source, document=index, reason="nested too deeply"))
    return result


def _parse_document(doc: Any, index: int, source: str, default_namespace: str | None, result: LoadResult) -> None:
    if doc is None:
        return
    if not isinstance(doc, Mapping):
        result.errors.append(
            ConfigError(source=source, document=index, reason=f"expected a mapping, got {type(doc).__name__}")
        )
        return
    if doc.get("kind") != KIND:
        if doc.get("apiVersion") == API_VERSION:
            result.errors.append(ConfigError(source=source, document=index, field="kind", reason=f"expected {KIND!r}"))
        return
    name = _object_name(doc, default_namespace)
    data = dict(doc)
    if default_namespace and isinstance(data.get("metadata"), Mapping):
        claimed = data["metadata"].get("namespace")
        if claimed is not None and claimed != default_namespace:
            result.errors.append(ConfigError(
                source=source, document=index, object=name, field="metadata.namespace",
                reason=f"{str(claimed)[:80]!r} is not this ConfigMap's namespace {default_namespace!r}: a ServiceSLO "
                       "counts only in the namespace of its ConfigMap",
            ))
            return
        data["metadata"] = {**data["metadata"], "namespace": default_namespace}
    mistakes, _ = lint_slo(doc, source, index, default_namespace)
    result.errors.extend(mistakes)  # valid values its author almost surely did not mean: refused all the same
    try:
        slo = ServiceSLO.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            reason = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                reason = "unknown field"
            result.errors.append(
                ConfigError(source=source, document=index, object=name, field=_field_path(err["loc"]), reason=reason)
            )
        return
    if mistakes:
        return
    problems = _query_problems(slo)
    if problems:
        result.errors.extend(
            ConfigError(source=source, document=index, object=slo.ref, field="spec.metrics." + field, reason=reason)
            for field, reason in problems
        )
        return
    if any(s.ref == slo.ref for s in result.slos):
        result.errors.append(ConfigError(
            source=source, document=index, object=slo.ref, field="metadata.name",
            reason="a ServiceSLO of this name is already defined above: names must be unique, the first one is used",
        ))
        return
    result.slos.append(slo)


_FRACTION_LIKE = 50.0
"""An availability objective below this many percent is almost surely a fraction (0.995 for 99.5%)."""


def mapping(value: object) -> Mapping[str, Any]:
    """`value` when it is a mapping, else an empty one (for reading documents of unknown shape)."""
    return value if isinstance(value, Mapping) else {}


def _bare_number(value: object) -> float | None:
    """The value when it is a number written without a unit (`500`, `"500"`, `0.995`), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def lint_slo(doc: Mapping[str, Any], source: str, document: int | None,
             default_namespace: str | None = None) -> tuple[list[ConfigError], list[ConfigError]]:
    """(errors, warnings) for values a valid ServiceSLO accepts but its author almost surely did not mean:
    a fraction-like availability (`0.995` is read as 0.995%) and unit-less durations (`latencyP99: 500` is
    read as 500 seconds). Refused: the first, and a unit-less `latencyP99`; warned: a unit-less interval or
    window (read as seconds)."""
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        return errors, warnings
    name = _object_name(doc, default_namespace)

    def finding(field: str, reason: str) -> ConfigError:
        return ConfigError(source=source, document=document, object=name, field=field, reason=reason)

    objectives = mapping(spec.get("objectives"))
    availability = _bare_number(objectives.get("availability"))
    if availability is not None and 0 <= availability < _FRACTION_LIKE:
        errors.append(finding(
            "spec.objectives.availability",
            f"{objectives['availability']!r} is read as {availability:g}% of requests succeeding (so "
            f"{100 - availability:g}% may fail); availability is a percentage: did you mean "
            f"{round(availability * 100, 6):g}?",
        ))
    latency = _bare_number(objectives.get("latencyP99"))
    if latency is not None:
        errors.append(finding(
            "spec.objectives.latencyP99",
            f"unit-less duration {objectives['latencyP99']!r} would be read as {latency:g} seconds; "
            f"write {latency:g}ms or {latency:g}s",
        ))
    analysis = mapping(spec.get("analysis"))
    for key in ("interval", "window"):
        value = _bare_number(analysis.get(key))
        if value is not None:
            warnings.append(finding(
                f"spec.analysis.{key}", f"unit-less duration {analysis[key]!r} is read as {value:g} seconds; "
                f"write {value:g}s to say so",
            ))
    return errors, warnings


def load_files(paths: Iterable[str | Path]) -> LoadResult:
    result = LoadResult()
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.errors.append(ConfigError(source=str(path), reason=f"cannot read: {exc}"))
            continue
        result.extend(parse_documents(text, str(path)))
    return result


def load_configmap(configmap: Mapping[str, Any]) -> LoadResult:
    """ServiceSLOs from every data key of a ConfigMap (a dict as the Kubernetes API returns it).

    SLOs without a namespace take the ConfigMap's.
    """
    meta = configmap.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name")
    result = LoadResult()
    for key, text in sorted((configmap.get("data") or {}).items()):
        result.extend(parse_documents(str(text), f"ConfigMap {ns}/{name} key {key}", default_namespace=ns))
    return result
