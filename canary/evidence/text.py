"""Evidence as plain text lines, for `canary analyze -o text` and `canary status NS/NAME`. Pure."""

from __future__ import annotations

from canary.evidence.model import Evidence


def evidence_lines(evidence: Evidence, traces: int = 3, logs: int = 3) -> list[str]:
    """Where, the failing downstream calls, example traces, log lines and notes; one item per line."""
    out: list[str] = []
    if evidence.routes:
        out.append(f"routes (canary vs baseline, from {evidence.routes_source or '?'}):")
        out += [f"  {'REGRESSED' if r.regressed else 'healthy  '} {r.text()}" for r in evidence.routes]
    if evidence.downstream:
        out.append("failing downstream (below failing requests):")
        out += [f"  {d.text()}" for d in evidence.downstream]
    if evidence.traces:
        out.append("failing traces:")
        out += [f"  {t.trace_id}" + (f"  {t.cause}" if t.cause else "") for t in evidence.traces[:traces]]
    if evidence.logs:
        out.append("log lines (canary pods):")
        out += [f"  {ref.at:%H:%M:%S} {ref.pod or '?'}: {ref.line}" for ref in evidence.logs[:logs]]
    out += [f"note: {note}" for note in evidence.notes]
    if not out:
        out.append("no root-cause evidence")
    return out
