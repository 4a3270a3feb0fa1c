"""Root-cause evidence for a rollback: which routes, which downstream call, which traces and log lines.

`EvidenceCollector` (collect.py) asks Tempo and Loki a bounded number of queries (queries.py) and
returns an `Evidence` (model.py); `enrich.py` runs it after a rollback, off the reconcile path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from canary import lazy

if TYPE_CHECKING:
    from canary.evidence.collect import EvidenceCollector, collect_quietly
    from canary.evidence.model import Downstream, Evidence, LogRef, RollbackEvidence, RouteStat, TraceRef

_EXPORTS = {
    "EvidenceCollector": "canary.evidence.collect",
    "collect_quietly": "canary.evidence.collect",
    "Downstream": "canary.evidence.model",
    "Evidence": "canary.evidence.model",
    "LogRef": "canary.evidence.model",
    "RollbackEvidence": "canary.evidence.model",
    "RouteStat": "canary.evidence.model",
    "TraceRef": "canary.evidence.model",
}
"""Public name -> the submodule that defines it, imported on first use (importing the package imports no
submodule, so `import canary.X.y` costs only what `y` needs)."""

__all__ = [
    "Downstream",
    "Evidence",
    "EvidenceCollector",
    "LogRef",
    "RollbackEvidence",
    "RouteStat",
    "TraceRef",
    "collect_quietly",
]


__getattr__ = lazy.exports(__name__, _EXPORTS)
