"""Opening a store: SQLite settings, the schema version, and URLs that cannot be opened (nothing on disk changes)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import T0, mat

import notebook_orch.store.engine as engine_mod
from notebook_orch.errors import SchemaVersionError, StoreOpenError
from notebook_orch.store import SCHEMA_VERSION, open_store
from notebook_orch.store.schema import metadata

OWN_TABLES = {"schema_version", "runs", "materializations", "partition_state", "partition_locks", "events",
              "state_cache", "schedules", "schedule_ticks", "scheduler_lease", "scheduler_cursor", "pending_joins",
              "code_versions", "sla_watch", "sla_verdicts", "alerts", "pool_slots", "pool_waits", "auto_pauses"}


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders): "nothing changed" means equal trees.

    A WAL database's -shm file is SQLite's shared-memory read index, rewritten by every reader: its presence
    counts, not its bytes.
    """
    return {
        str(p.relative_to(folder)): (None if p.is_dir() or p.name.endswith("-shm") else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def test_opening_a_new_sqlite_file_creates_its_folder_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "store.db"
    with open_store(f"sqlite:///{path}") as store:
        assert path.is_file()
        assert store.url == f"sqlite:///{path}"
    with sqlite3.connect(path) as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert OWN_TABLES <= names
        assert raw.execute("SELECT id, version FROM schema_version").fetchall() == [(1, SCHEMA_VERSION)]
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # persistent: really on


def test_the_store_connections_use_wal_normal_sync_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        with store._engine.connect() as conn:  # noqa: SLF001 - checking the connection settings themselves
            pragmas = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                       ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30_000, "foreign_keys": 1}


def test_the_tables_live_on_the_packages_own_metadata() -> None:
    from sqlmodel import SQLModel

    assert OWN_TABLES == set(metadata.tables)
    assert not OWN_TABLES & set(SQLModel.metadata.tables)


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    with open_store(url) as store:
        run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
        store.finalize_success(run.run_id, [mat("a", "p")], now=T0)
    with open_store(url) as store:
        assert store.get_run(run.run_id).status == "SUCCESS"  # type: ignore[union-attr]
        assert store.latest_materialization("a", "p").data_version == "d1"  # type: ignore[union-attr]


def test_an_in_memory_store_works() -> None:
    with open_store("sqlite://") as store:
        run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
        store.finalize_success(run.run_id, [mat("a", "p")], now=T0)
        assert store.snapshot().assets["a"].data_version == ("d1",)


def test_a_store_from_a_newer_schema_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 98,))
    before = tree(tmp_path)

    with pytest.raises(SchemaVersionError) as caught:
        open_store(f"sqlite:///{path}")

    message = str(caught.value)
    assert f"schema version {SCHEMA_VERSION + 98}" in message and f"version {SCHEMA_VERSION} " in message
    assert "Upgrade notebook_orch" in message and str(path) in message
    assert tree(tmp_path) == before


def test_a_store_from_an_older_version_without_a_migration_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as raw:  # from before the baseline: no Alembic revision, schema version 0
        raw.execute("DROP TABLE notebook_orch_alembic_version")
        raw.execute("UPDATE schema_version SET version = 0")
    before = tree(tmp_path)
    with pytest.raises(SchemaVersionError, match="has schema version 0, which notebook_orch cannot migrate"):
        open_store(f"sqlite:///{path}")
    assert tree(tmp_path) == before


def test_two_processes_opening_a_new_store_at_once_both_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    code = f"from notebook_orch.store import open_store; open_store({url!r}).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    with open_store(url) as store:
        assert store.last_event_id() == 0


@pytest.mark.parametrize(
    ("make_url", "expected"),
    [
        (lambda d: "nosuchdb://host/db", "unknown database scheme 'nosuchdb'"),
        (lambda d: "just some words", "not a database URL"),
        (lambda d: f"sqlite:///{d}", "is a directory, not a database file"),
        (lambda d: f"sqlite:///{d}/notes.txt", "file is not a database"),
        (lambda d: f"sqlite:///{d}/notes.txt/store.db", "Cannot open the metadata store"),
        (lambda d: "sqlite:////proc/nbo-test-no-such/store.db", "cannot create the folder /proc/nbo-test-no-such"),
    ],
    ids=["bad-scheme", "not-a-url", "directory", "not-a-database", "parent-is-a-file", "unwritable"],
)
def test_an_unopenable_url_raises_store_open_error_and_changes_nothing(tmp_path: Path, make_url, expected) -> None:  # noqa: ANN001
    (tmp_path / "notes.txt").write_text("these are not the tables you are looking for\n" * 100)
    before = tree(tmp_path)
    url = make_url(tmp_path)

    with pytest.raises(StoreOpenError) as caught:
        open_store(url)

    assert expected in str(caught.value)
    assert url in str(caught.value)
    assert "sqlite:///" in str(caught.value)  # the fix shows what a URL looks like
    assert tree(tmp_path) == before


def test_a_failure_after_creating_folders_removes_them_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(engine: sa.Engine, shown: str, **_: object) -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE half (x)")  # touch the file, then fail like a full disk would
            conn.commit()
        raise sa.exc.OperationalError("CREATE TABLE runs", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(engine_mod, "ensure_schema", broken)
    with pytest.raises(StoreOpenError, match="disk I/O error"):
        open_store(f"sqlite:///{tmp_path}/new/sub/store.db")
    assert list(tmp_path.iterdir()) == []


def test_server_urls_fail_cleanly_without_showing_the_password() -> None:
    with pytest.raises(StoreOpenError) as caught:
        open_store("postgresql://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_importing_the_store_creates_no_engine_and_no_file(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import gc, os
        import notebook_orch.store, notebook_orch.store.snapshot, notebook_orch.store.statements
        from sqlalchemy.engine import Engine
        from notebook_orch.store import statements
        assert not [o for o in gc.get_objects() if isinstance(o, Engine)], "an engine exists after import"
        assert statements._STATEMENTS == {}
        assert os.listdir(".") == [], os.listdir(".")
        """
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=60)
