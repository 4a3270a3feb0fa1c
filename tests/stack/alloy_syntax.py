"""A structural check of Alloy configuration text: balanced delimiters, and every component reference
(`otelcol.exporter.otlp.tempo.input`) naming a component block defined in the same file with an
export that component type has."""

from __future__ import annotations

import re

# Component namespaces whose references we check, and the exports each kind of component has.
_NAMESPACES = ("otelcol", "prometheus", "discovery", "loki", "remote")
_ALT = "|".join(_NAMESPACES)
_REFERENCE = re.compile(rf"\b((?:{_ALT})(?:\.[a-z0-9_]+)+)\.([A-Za-z0-9_]+)\.([a-z_]+)\b")
_BLOCK = re.compile(rf"^\s*((?:{_ALT})\.[a-z0-9_.]+)\s+\"([^\"]+)\"\s*\{{", re.MULTILINE)
_BLANKED_BLOCK = re.compile(rf"^\s*((?:{_ALT})\.[a-z0-9_.]+)\s+\"\"\s*\{{", re.MULTILINE)
_PAIRS = {"}": "{", "]": "[", ")": "("}


def exports_of(component: str) -> set[str]:
    if component.startswith("otelcol."):
        return {"input"}
    if component == "remote.kubernetes.configmap":
        return {"data"}
    if component.startswith("discovery."):
        return {"targets", "output"}
    if component in {"prometheus.remote_write", "prometheus.relabel", "loki.write", "loki.process", "loki.relabel"}:
        return {"receiver"}
    return set()


def strip_strings_and_comments(text: str) -> str:
    """The text with string contents blanked (kept as "") and `//` comments removed."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif c in '"`':
            end = i + 1
            while end < n and text[end] != c:
                if c == '"' and text[end] == "\\":
                    end += 1
                if text[end] == "\n" and c == '"':
                    raise SyntaxError(f"unterminated string at offset {i}")
                end += 1
            if end >= n:
                raise SyntaxError(f"unterminated string at offset {i}")
            out.append('""')
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check(text: str) -> list[str]:
    """Problems found, empty when the text is well formed."""
    try:
        code = strip_strings_and_comments(text)
    except SyntaxError as exc:
        return [str(exc)]
    problems: list[str] = []
    stack: list[tuple[str, int]] = []
    for line_no, line in enumerate(code.splitlines(), 1):
        for c in line:
            if c in "{[(":
                stack.append((c, line_no))
            elif c in "}])":
                if not stack or stack[-1][0] != _PAIRS[c]:
                    problems.append(f"line {line_no}: unbalanced {c!r}")
                    return problems
                stack.pop()
    if stack:
        problems.append(f"line {stack[-1][1]}: {stack[-1][0]!r} never closed")
    defined = {(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)}
    for m in _REFERENCE.finditer(code):
        component, label, export = m.groups()
        if (component, label) not in defined:
            problems.append(f"{m.group(0)}: no component {component} {label!r} is defined")
        elif export not in exports_of(component):
            problems.append(f"{m.group(0)}: {component} has no export {export!r}")
    return problems


def graph(text: str) -> dict[str, set[str]]:
    """Where each component sends its data: `component.label` -> the components its body references
    (`otelcol.processor.batch.traces.input` -> `otelcol.processor.batch.traces`)."""
    code = strip_strings_and_comments(text)
    names = [f"{m.group(1)}.{m.group(2)}" for m in _BLOCK.finditer(text)]
    starts = [m.start() for m in _BLANKED_BLOCK.finditer(code)]
    assert len(names) == len(starts), "component blocks and their labels do not line up"
    edges: dict[str, set[str]] = {}
    for start, name in zip(starts, names, strict=True):
        opening = code.index("{", start)
        depth, end = 0, opening
        for end in range(opening, len(code)):
            depth += {"{": 1, "}": -1}.get(code[end], 0)
            if depth == 0:
                break
        edges[name] = {f"{m.group(1)}.{m.group(2)}" for m in _REFERENCE.finditer(code[opening:end])}
    return edges


def reachable(edges: dict[str, set[str]], start: str, avoid: str = "") -> set[str]:
    """Every component data from `start` can reach, not passing through `avoid`."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in edges.get(node, set()):
            if nxt not in seen and nxt != avoid:
                seen.add(nxt)
                todo.append(nxt)
    return seen
