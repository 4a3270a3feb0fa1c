"""Shared fixtures: real Prometheus servers (route prefix /prometheus) backfilled with OBI-shaped series.

Each server costs about a second to start, so they are session-scoped and started only when a test
asks for them (once per xdist worker). Tests must not write to them.

- `obi_prometheus`: the standard scenarios (`promdata.standard_scenarios()`) plus the hostile one, in
  OBI's Prometheus naming (`http_server_request_duration_seconds_*`, `rpc_server_duration_seconds_*`)
  AND as Tempo span metrics (`traces_spanmetrics_*`) for the same workloads.
- `otlp_prometheus`: the standard scenarios named as Mimir's OTLP ingestion writes them, without the
  `_seconds` suffix (`http_server_request_duration_count`, ...), and nothing else.

Query them with `end=fixture.rng.end_time`; `fixture.scenario("errors").target()` is the Target.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from canary_testkit.prometheus import PrometheusServer
from tests.promdata import (
    DataRange,
    LoadedPrometheus,
    hostile_scenario,
    scenarios_openmetrics,
    standard_scenarios,
)


@pytest.fixture(scope="session")
def obi_prometheus() -> Iterator[LoadedPrometheus]:
    rng = DataRange.ending_now()
    scenarios = (*standard_scenarios(), hostile_scenario())
    documents = [scenarios_openmetrics(scenarios, rng, "obi"), scenarios_openmetrics(scenarios, rng, "spanmetrics")]
    with PrometheusServer(openmetrics=documents) as server:
        yield LoadedPrometheus(server, rng, scenarios)


@pytest.fixture(scope="session")
def otlp_prometheus() -> Iterator[LoadedPrometheus]:
    rng = DataRange.ending_now()
    scenarios = standard_scenarios()
    with PrometheusServer(openmetrics=scenarios_openmetrics(scenarios, rng, "otlp")) as server:
        yield LoadedPrometheus(server, rng, scenarios)
