from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes.client import ApiClient

from canary_testkit.kube import KubeSim


@pytest.fixture
def sim() -> Iterator[KubeSim]:
    with KubeSim(rollout_step_seconds=0.05, bookmark_interval=0.5) as s:
        yield s


@pytest.fixture
def api(sim: KubeSim) -> ApiClient:
    return sim.api_client()
