"""Reads for ``nbo status`` on a SQLite file through ``sqlite3`` alone: no SQLAlchemy, no SQLModel.

Importing those costs ~0.45 s, more than half of a cold ``nbo status`` on 1,000 assets. The SQL is state_read.py's,
the same the store runs through SQLAlchemy, so both paths read the same rows the same way (a test compares them).

This path only ever reads an existing store that is at this package's schema version; anything else — another
backend, a URL with options, a missing, older, newer or damaged file (or one another process found damaged, see
file_guard.py), any error at all — answers None, and the caller opens the store as usual (``open_store``), which
migrates, refuses or explains. Like
``MetadataStore.snapshot`` it refreshes the snapshot cache afterwards, best effort and brief.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from notebook_orch.store import state_read
from notebook_orch.store.constants import (
    ALEMBIC_TABLE,
    BUSY_TIMEOUT_MS,
    CACHE_WAIT_MS,
    SCHEMA_VERSION,
    TABLES,
    revision_id,
)
from notebook_orch.store.file_guard import damage_note
from notebook_orch.store.records import StoreSnapshot

_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL; None for anything SQLAlchemy might read differently (a driver
    name, query options, percent escapes, memory databases, ``file:`` URIs)."""
    if not url.startswith(_PREFIX):
        return None
    path = url[len(_PREFIX):]
    if not path or path == ":memory:" or path.startswith("file:") or any(c in path for c in "?#%"):
        return None
    return Path(path)


class SqliteReader:
    """A read-only view of a SQLite store at the current schema version. Build it with ``open_reader``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._db = state_read.Dbapi(conn.cursor)
        self._lock = threading.Lock()  # one connection: one transaction at a time (a widget's thread, say)

    def snapshot(self) -> StoreSnapshot:
        """As ``MetadataStore.snapshot()`` (cached, every asset). Raises ``sqlite3.Error`` or ``ValueError``."""
        with self._lock:
            with self._read():
                snapshot, update = state_read.take_all(self._db, use_cache=True)
            if update is not None:
                self._write_cache(update)
        return snapshot

    def consumed_versions(self, ids: Iterable[int]) -> dict[int, tuple[tuple[str, str, str], ...]]:
        """As ``MetadataStore.consumed_versions``. Raises ``sqlite3.Error``."""
        with self._lock, self._read():
            return state_read.consumed_versions(self._db, ids)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _read(self) -> _Txn:
        return _Txn(self._conn, "BEGIN")

    def _write_cache(self, update: state_read.CacheUpdate) -> None:
        # Best effort and brief, as in MetadataStore.snapshot: a busy database means the next snapshot rereads.
        self._conn.execute(f"PRAGMA busy_timeout = {CACHE_WAIT_MS}")
        try:
            with _Txn(self._conn, "BEGIN IMMEDIATE"):
                state_read.write_cache(self._db, update)
        except sqlite3.Error:
            pass
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


class _Txn:
    """One transaction on an autocommit connection: COMMIT on success, ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection, begin: str) -> None:
        self._conn = conn
        self._begin = begin

    def __enter__(self) -> None:
        self._conn.execute(self._begin)

    def __exit__(self, kind: object, *_: object) -> None:
        self._conn.execute("COMMIT" if kind is None else "ROLLBACK")


def open_reader(url: str) -> SqliteReader | None:
    """A reader for the store at ``url`` if it is an existing SQLite file at this schema version, else None."""
    path = sqlite_path(url)
    if path is None or not path.is_file() or damage_note(path).exists():  # damaged: the store says so (file_guard)
        return None
    try:
        # mode=rw: never create a file (open_store decides about new stores)
        conn = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        with _Txn(conn, "BEGIN"):
            version = conn.execute("SELECT version FROM schema_version").fetchall()
            revision = conn.execute(f"SELECT version_num FROM {ALEMBIC_TABLE}").fetchall()
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == [(SCHEMA_VERSION,)] and revision == [(revision_id(SCHEMA_VERSION),)] and TABLES <= tables:
            return SqliteReader(conn)
    except sqlite3.Error:
        pass
    conn.close()
    return None
