"""Fixtures for the store contract suite: one ``store`` per backend.

Backends are the params of ``store_url``: a real SQLite file always; PostgreSQL when
``NBO_TEST_POSTGRES_URL`` points at a scratch database (every test starts from empty tables there).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from notebook_orch.store import MetadataStore, open_store

_BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("NBO_TEST_POSTGRES_URL") else [])


@pytest.fixture(params=_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: os.PathLike) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/store.db"
    url = os.environ["NBO_TEST_POSTGRES_URL"]
    _drop_store_tables(url)
    return url


def _drop_store_tables(url: str) -> None:
    import sqlalchemy as sa

    from notebook_orch.store.schema import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()
