"""The judge: pure functions that turn a Measurement and an SLO into a Verdict. No I/O."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canary.judge.verdict import DEFAULT_ALPHA, judge

_EXPORTS = {
    "DEFAULT_ALPHA": "canary.judge.verdict",
    "judge": "canary.judge.verdict",
}
"""Public name -> the submodule that defines it, imported on first use (importing the package imports no
submodule, so `import canary.X.y` costs only what `y` needs)."""

__all__ = ["DEFAULT_ALPHA", "judge"]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
