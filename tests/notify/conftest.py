from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from canary_testkit.slack import SlackSim


@pytest.fixture
def slack() -> Iterator[SlackSim]:
    with SlackSim(hang_limit=10) as sim:
        yield sim


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()
