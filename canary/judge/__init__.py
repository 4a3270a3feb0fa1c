"""The judge: pure functions that turn a Measurement and an SLO into a Verdict. No I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canary import lazy

if TYPE_CHECKING:
    from canary.judge.verdict import DEFAULT_ALPHA, judge

_EXPORTS = {
    "DEFAULT_ALPHA": "canary.judge.verdict",
    "judge": "canary.judge.verdict",
}
"""Public name -> the submodule that defines it, imported on first use (importing the package imports no
submodule, so `import canary.X.y` costs only what `y` needs)."""

__all__ = ["DEFAULT_ALPHA", "judge"]


__getattr__ = lazy.exports(__name__, _EXPORTS)
