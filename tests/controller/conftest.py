from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controller.harness import Cluster, cluster


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One simulated cluster per test module; each test works in its own namespace."""
    with cluster(Path(tmp_path_factory.mktemp("cluster"))) as c:
        yield c
