"""Glob matching as OBI reads its discovery selectors (`k8s_namespace`, ...).

OBI compiles each selector with github.com/gobwas/glob: `*` any run of characters, `?` one character,
`[...]` a class, and `{a,b}` alternatives. fnmatch covers the first three; alternatives are expanded
first, as the glob library treats `{a,b}` as "a or b".
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

_ALTERNATIVES = re.compile(r"\{([^{}]*)\}")


def expand(pattern: str) -> list[str]:
    """`x{a,b}y` -> [`xay`, `xby`], innermost braces first."""
    match = _ALTERNATIVES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [p for option in match.group(1).split(",") for p in expand(head + option + tail)]


def matches(pattern: str, value: str) -> bool:
    return any(fnmatchcase(value, p) for p in expand(pattern))
