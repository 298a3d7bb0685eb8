"""Schema evolution with Alembic, on SQLite and PostgreSQL: stores written by notebook_orch 0.1.0 (frozen dumps in
fixtures/, made by that version's code) open and are migrated in one transaction; newer stores are refused; the
revisions and the models agree; a failing revision changes nothing; a revision that rebuilds a referenced table
works on SQLite (batch mode)."""

from __future__ import annotations

import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import T0, mat

from notebook_orch import __version__
from notebook_orch.errors import SchemaVersionError, StoreOpenError
from notebook_orch.store import SCHEMA_VERSION, migrate, open_store
from notebook_orch.store import engine as engine_mod

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_databases").fresh()


def replay_v1(url: str) -> None:
    """Load the 0.1.0 store dump for ``url``'s backend into its (empty) database."""
    backend = sa.engine.make_url(url).get_backend_name()
    script = (FIXTURES / f"schema_v1.{backend}.sql").read_text()
    if backend == "sqlite":
        with sqlite3.connect(sa.engine.make_url(url).database) as raw:
            raw.executescript(script)
        return
    import psycopg

    parts = sa.engine.make_url(url)
    with psycopg.connect(host=parts.host, port=parts.port, user=parts.username, dbname=parts.database) as raw:
        raw.execute(script)  # a whole pg_dump script: without parameters psycopg sends it as one simple query
        raw.commit()


def table_rows(url: str) -> dict[str, list[tuple]]:
    """Every table's rows, sorted: 'nothing changed' compares these."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
        found = {n: sorted(map(tuple, conn.execute(sa.text(f'SELECT * FROM "{n}"'))), key=repr) for n in names}
    engine.dispose()
    return found


def columns(url: str, table: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = [c["name"] for c in sa.inspect(conn).get_columns(table)]
    engine.dispose()
    return names


def test_the_package_head_revision_is_the_schema_version() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.PACKAGE_MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert script.get_heads() == [migrate.revision_id(SCHEMA_VERSION)]
    assert [r.revision for r in script.walk_revisions()][-1] == "0001"
    assert (migrate.PACKAGE_MIGRATIONS / "script.py.mako").is_file()


def test_every_revision_run_from_empty_builds_exactly_the_models_tables(empty_url: str) -> None:
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        migrate.upgrade(conn, migrate.SchemaState(None, None), migrate.Migrations(), create_new=False)
        assert migrate.schema_differences(conn) == []
        assert migrate.read_state(conn) == migrate.SchemaState(SCHEMA_VERSION, migrate.revision_id(SCHEMA_VERSION))
    engine.dispose()


def test_a_new_store_is_created_from_the_models_and_stamped_at_head(empty_url: str) -> None:
    open_store(empty_url).close()
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:
        assert migrate.schema_differences(conn) == []
        assert migrate.read_state(conn) == migrate.SchemaState(SCHEMA_VERSION, migrate.revision_id(SCHEMA_VERSION))
    engine.dispose()


def test_a_store_written_by_0_1_0_is_migrated_on_open_and_keeps_everything(empty_url: str) -> None:
    replay_v1(empty_url)
    before = table_rows(empty_url)
    assert migrate.ALEMBIC_TABLE not in before and before["schema_version"][0][:3] == (1, 1, "0.1.0")

    open_store(empty_url).close()

    after = table_rows(empty_url)
    assert after[migrate.ALEMBIC_TABLE] == [(migrate.revision_id(SCHEMA_VERSION),)]
    assert after["schema_version"][0][:3] == (1, SCHEMA_VERSION, __version__)
    assert {t: rows for t, rows in after.items() if t in before and t != "schema_version"} == {
        t: rows for t, rows in before.items() if t != "schema_version"
    }
    # Tables added by later revisions start empty.
    assert {t: rows for t, rows in after.items() if t not in before and t != migrate.ALEMBIC_TABLE} == {
        t: [] for t in after if t not in before and t != migrate.ALEMBIC_TABLE
    }
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:
        assert migrate.schema_differences(conn) == []
    engine.dispose()

    with open_store(empty_url) as store:
        # Its history reads as before.
        assert {r.run_id: r.status for r in store.list_runs()} == {
            "run-ok": "SUCCESS", "run-bad": "FAILED", "run-ok2": "SUCCESS", "run-live": "RUNNING"
        }
        assert store.get_run("run-bad").error_cell == 2
        clean = store.latest_materialization("clean", "2026-01-01")
        assert clean.data_version == "d9" and [(i.asset, i.data_version) for i in clean.inputs] == [("raw", "d1")]
        assert store.running() == {("report", "all"): "run-live"}
        assert [e.id for e in store.events_after(0)] == list(range(1, 12))
        snap = store.snapshot()
        assert snap == store.snapshot(use_cache=False) and snap.event_id == 11
        assert snap.assets["raw"].data_version == ("d1", "d2")
        # And it keeps working: ids continue where 0.1.0 left them.
        [record] = store.finalize_success("run-live", [mat("report", "all")], now=T0)
        assert record.id == 4 and store.last_event_id() == 13


def test_a_store_at_a_newer_revision_is_refused_and_left_untouched(empty_url: str) -> None:
    open_store(empty_url).close()
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {migrate.ALEMBIC_TABLE} SET version_num = '0099'"))
    engine.dispose()
    before = table_rows(empty_url)

    with pytest.raises(SchemaVersionError) as caught:
        open_store(empty_url)

    message = str(caught.value)
    assert "schema version 99, newer than version" in message and "Upgrade notebook_orch" in message
    assert "nothing was changed" in message
    assert table_rows(empty_url) == before


def test_a_store_at_an_unknown_revision_is_refused(empty_url: str) -> None:
    open_store(empty_url).close()
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {migrate.ALEMBIC_TABLE} SET version_num = 'ae1027a6acf'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="Alembic revision 'ae1027a6acf', which notebook_orch"):
        open_store(empty_url)


# -- revisions written for these tests, on top of a copy of the package's --------------------------------------

# Each body gets its revision ids from migrations_with: the next numbers after the package's head.
ADD_PRIORITY = '''
revision = "{rev}"
down_revision = "{down}"

import sqlalchemy as sa
from alembic import op


def upgrade():
    # "runs" is referenced by materializations and partition_locks: SQLite must rebuild it with those in place.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_runs_priority", ["priority"])
    op.execute("UPDATE runs SET priority = attempt")
'''

BROKEN = '''
revision = "{rev}"
down_revision = "{down}"

from alembic import op


def upgrade():
    op.execute("UPDATE no_such_table SET x = 1")
'''


def migrations_with(tmp_path: Path, *extra: str) -> migrate.Migrations:
    location = tmp_path / "migrations"
    shutil.copytree(migrate.PACKAGE_MIGRATIONS, location, ignore=shutil.ignore_patterns("__pycache__"))
    for i, body in enumerate(extra, start=SCHEMA_VERSION + 1):
        text = body.replace("{rev}", migrate.revision_id(i)).replace("{down}", migrate.revision_id(i - 1))
        (location / "versions" / f"{i:04d}_test.py").write_text(textwrap.dedent(text))
    return migrate.Migrations(location=location, head=SCHEMA_VERSION + len(extra))


def test_a_revision_that_rebuilds_a_referenced_table_migrates_a_0_1_0_store(empty_url: str, tmp_path: Path) -> None:
    replay_v1(empty_url)
    engine = engine_mod.create_store_engine(empty_url, migrations=migrations_with(tmp_path, ADD_PRIORITY))
    with engine.connect() as conn:
        head = SCHEMA_VERSION + 1
        assert migrate.read_state(conn) == migrate.SchemaState(head, migrate.revision_id(head))
        rows = conn.execute(sa.text("SELECT run_id, priority FROM runs ORDER BY run_id")).all()
        assert rows == [("run-bad", 1), ("run-live", 1), ("run-ok", 1), ("run-ok2", 2)]
        if conn.dialect.name == "sqlite":  # enforcement back on, and every reference still resolves
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    engine.dispose()
    assert "priority" in columns(empty_url, "runs")


def test_a_failing_revision_rolls_back_every_step_including_the_stamp(empty_url: str, tmp_path: Path) -> None:
    replay_v1(empty_url)
    before = table_rows(empty_url)
    with pytest.raises(StoreOpenError, match="no_such_table"):
        engine_mod.create_store_engine(empty_url, migrations=migrations_with(tmp_path, ADD_PRIORITY, BROKEN))
    assert table_rows(empty_url) == before  # no Alembic version table, none of the new tables, schema version 1
    assert "priority" not in columns(empty_url, "runs")
    with open_store(empty_url) as store:  # and the package's own head still opens it
        assert store.get_run("run-ok").status == "SUCCESS"


def test_the_revision_command_writes_the_next_revision_from_the_models(tmp_path: Path) -> None:
    location = migrations_with(tmp_path).location
    path = migrate.new_revision("nothing changed", location=location)
    assert path.name == f"{migrate.revision_id(SCHEMA_VERSION + 1)}_nothing_changed.py"
    text = path.read_text()
    assert f'revision = "{migrate.revision_id(SCHEMA_VERSION + 1)}"' in text.replace("'", '"')
    assert f'down_revision = "{migrate.revision_id(SCHEMA_VERSION)}"' in text.replace("'", '"')
    assert "def upgrade() -> None:" in text and "create_table" not in text  # models equal head: nothing to do


def test_a_database_shared_with_another_alembic_application_opens_and_leaves_its_tables_alone(empty_url: str) -> None:
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('ae1027a6acf')"))
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(sa.text("INSERT INTO customers VALUES (1, 'Ada')"))
    engine.dispose()
    theirs = {t: rows for t, rows in table_rows(empty_url).items()}

    with open_store(empty_url) as store:
        run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
        store.finalize_success(run.run_id, [mat("a", "p")], now=T0)
    open_store(empty_url).close()  # and it opens again, at head

    after = table_rows(empty_url)
    assert {t: after[t] for t in theirs} == theirs
    assert after[migrate.ALEMBIC_TABLE] == [(migrate.revision_id(SCHEMA_VERSION),)]


def test_processes_opening_a_0_1_0_store_at_once_migrate_it_once(empty_url: str) -> None:
    import subprocess
    import sys

    replay_v1(empty_url)
    code = (
        "from notebook_orch.store import open_store\n"
        f"with open_store({empty_url!r}) as s:\n"
        "    assert s.get_run('run-ok').status == 'SUCCESS'\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    rows = table_rows(empty_url)
    assert rows[migrate.ALEMBIC_TABLE] == [(migrate.revision_id(SCHEMA_VERSION),)]
    assert len(rows["schema_version"]) == 1 and rows["schema_version"][0][1] == SCHEMA_VERSION
