"""A real Dask cluster on 127.0.0.1 for each test (tests/_dask_cluster.py): one ``dask scheduler`` and two
``dask worker`` processes, torn down after the test (each process by its pid)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _dask_cluster import LocalDaskCluster


@pytest.fixture
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDaskCluster]:
    cluster = LocalDaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster
    finally:
        cluster.stop()
