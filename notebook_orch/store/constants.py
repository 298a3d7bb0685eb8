"""The store's numbers that code without SQLAlchemy needs too (sqlite_read.py, the read path of ``nbo status``)."""

from __future__ import annotations

# Bump when the tables change (after writing the Alembic revision of that number: docs/store-migrations.md);
# ``open_store`` refuses stores written by a newer version and migrates older ones.
SCHEMA_VERSION = 9

# Every table of this schema version (schema.py; tests/store/test_table_names.py keeps the two equal): the read path
# of ``nbo status`` reads a file only when they are all there, so a store with a table gone is explained by
# ``open_store`` for every command.
TABLES = frozenset({
    "alerts", "auto_pauses", "code_versions", "events", "materializations", "partition_locks", "partition_state",
    "pending_joins", "pool_slots", "pool_waits", "runs", "schedule_ticks", "scheduler_cursor", "scheduler_lease",
    "schedules", "schema_version", "sla_verdicts", "sla_watch", "state_cache",
})

# Our own name for Alembic's version table: a PostgreSQL database shared with an application that uses Alembic
# itself already has an "alembic_version", holding that application's revision.
ALEMBIC_TABLE = "notebook_orch_alembic_version"

# SQLite's busy timeout: how long a connection waits for another's write lock before "database is locked".
BUSY_TIMEOUT_MS = 30_000

# How long a snapshot waits for the write lock to refresh its cache before giving up on that refresh.
CACHE_WAIT_MS = 200


def revision_id(version: int) -> str:
    """The Alembic revision that produces schema ``version`` (``0006``)."""
    return f"{version:04d}"
