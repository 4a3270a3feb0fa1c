"""The judge: pure functions that turn a Measurement and an SLO into a Verdict. No I/O."""
