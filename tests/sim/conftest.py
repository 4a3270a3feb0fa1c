"""Fixtures: a running simulated API server and real `kubernetes` clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from canary_testkit.kube import KubeSim


@pytest.fixture
def sim() -> Iterator[KubeSim]:
    with KubeSim(rollout_step_seconds=None, bookmark_interval=0.2) as running:
        yield running


@pytest.fixture
def api(sim: KubeSim) -> client.ApiClient:
    return sim.api_client()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)
