"""The judge: pure functions that turn a Measurement and an SLO into a Verdict. No I/O."""

from canary.judge.verdict import DEFAULT_ALPHA, judge

__all__ = ["DEFAULT_ALPHA", "judge"]
