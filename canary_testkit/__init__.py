"""Simulated backends that run on 127.0.0.1 for the tests and `canary demo`."""
