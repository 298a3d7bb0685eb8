"""Fixtures for the store contract suite: one ``store`` per backend.

Backends are the params of ``store_url``: a real SQLite file, and a real PostgreSQL server that this session starts
itself on 127.0.0.1 (``initdb`` into a temporary folder, removed afterwards; see notebook_orch/store/pg_server.py),
or the server ``NBO_TEST_POSTGRES_URL`` points at (a scratch database: its ``public`` schema is emptied per test).
Without PostgreSQL binaries the PostgreSQL params skip, and the terminal summary says so in capitals.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from notebook_orch.store import MetadataStore, open_store
from notebook_orch.store.pg_server import PostgresUnavailable, TemporaryPostgres

BACKENDS = ["sqlite", "postgresql"]
PG_SKIP = "PostgreSQL unavailable"


class PgDatabases:
    """Hands out empty PostgreSQL databases on one server: ``fresh()`` empties the shared scratch database,
    ``create(name)`` makes a new one (for tests that need several at once)."""

    def __init__(self, base_url: str, server: TemporaryPostgres | None) -> None:
        self.base_url = base_url
        self.server = server

    def fresh(self) -> str:
        import psycopg
        import sqlalchemy as sa

        url = sa.engine.make_url(self.base_url)
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database,
            autocommit=True,
        ) as conn:
            conn.execute("SET lock_timeout = '10s'")  # a test that leaked a connection fails loudly, not forever
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return self.base_url

    def create(self, name: str) -> str:
        if self.server is None:
            pytest.skip("needs a server this session started (NBO_TEST_POSTGRES_URL points at a single database)")
        self.server.drop_database(name)
        return self.server.create_database(name)


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    external = os.environ.get("NBO_TEST_POSTGRES_URL")
    if external:
        yield PgDatabases(external, None)
        return
    try:
        server = TemporaryPostgres().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"{PG_SKIP}: {exc}")
    try:
        yield PgDatabases(server.create_database("contract"), server)
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: os.PathLike) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/store.db"
    return request.getfixturevalue("pg_databases").fresh()


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when the PostgreSQL half of the store suite did not run, and how many of its tests did."""
    def on_pg(report: pytest.TestReport) -> bool:
        return "postgresql" in report.nodeid

    stats = terminalreporter.stats
    passed = [r for r in stats.get("passed", []) if on_pg(r) and r.when == "call"]
    skipped = [r for r in stats.get("skipped", []) if on_pg(r) and PG_SKIP in str(r.longrepr)]
    if skipped:
        reason = str(skipped[0].longrepr[2]) if isinstance(skipped[0].longrepr, tuple) else str(skipped[0].longrepr)
        terminalreporter.write_sep("!", "POSTGRESQL WAS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            f"{len(skipped)} store tests did NOT run on PostgreSQL: {reason.splitlines()[0]}", red=True, bold=True
        )
    elif passed:
        terminalreporter.write_line(f"store suite on PostgreSQL: {len(passed)} tests passed", green=True)
