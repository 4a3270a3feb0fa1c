"""Root-cause evidence for a rollback: which routes, which downstream call, which traces and log lines.

`EvidenceCollector` (collect.py) asks Tempo and Loki a bounded number of queries (queries.py) and
returns an `Evidence` (model.py); `enrich.py` runs it after a rollback, off the reconcile path.
"""

from canary.evidence.collect import EvidenceCollector, collect_quietly
from canary.evidence.model import Downstream, Evidence, LogRef, RollbackEvidence, RouteStat, TraceRef

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
