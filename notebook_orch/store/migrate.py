"""Schema evolution with Alembic: ``open_store`` brings an older store up to date, in one transaction, and refuses
a newer one.

A store records its version twice: Alembic's version table, ``notebook_orch_alembic_version`` (the revision,
``0001``, ``0002``, ...), and our ``schema_version`` row (the same number, plus which package wrote it; stores from
before Alembic have only this one, at version 1, and are stamped with the baseline revision ``0001``). Opening:

1. A read transaction checks both. At the head revision: done - the common path imports no Alembic at all.
2. Newer than this package (a higher number, or a revision it does not know): ``SchemaVersionError``, nothing
   written.
3. Otherwise ONE write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: transactional DDL under the event-log
   advisory lock, so concurrent openers and writers wait) re-checks, runs every missing revision and records the
   new version. Any failure rolls all of it back.

SQLite cannot ALTER most things, so revisions use ``op.batch_alter_table`` (copy into a new table, drop, rename).
Dropping a table that others reference fails with foreign keys enforced, and that setting cannot change inside a
transaction: the migration connection turns enforcement off before BEGIN, runs ``PRAGMA foreign_key_check``
before committing (a violation rolls everything back) and turns it on again - SQLite's documented procedure for
schema changes.

New revision: ``python -m notebook_orch.store.migrate revision -m "add code_versions"`` (docs/store-migrations.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from notebook_orch.errors import SchemaVersionError, StoreDamaged
from notebook_orch.store import schema
from notebook_orch.store.constants import ALEMBIC_TABLE, revision_id
from notebook_orch.store.engine import reason
from notebook_orch.store.event_log import lock_event_log

PACKAGE_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The schema version stores had before Alembic came: it equals the baseline revision.
PRE_ALEMBIC_VERSION = 1


@dataclass(frozen=True)
class Migrations:
    """Where the revisions live and which schema version is head (tests point this at a copy with extras)."""

    location: Path = PACKAGE_MIGRATIONS
    head: int = schema.SCHEMA_VERSION

    @property
    def head_revision(self) -> str:
        return revision_id(self.head)


@dataclass(frozen=True)
class SchemaState:
    version: int | None  # schema_version row; None: no such table (a new store)
    revision: str | None  # ALEMBIC_TABLE; None: no such table (new, or from before Alembic)


def read_state(conn: Connection, shown: str = "") -> SchemaState:
    """Both version marks; ``StoreDamaged`` when schema_version exists but does not hold exactly one version."""
    inspector = sa.inspect(conn)
    revision = None
    version = _read_version(conn, shown) if inspector.has_table(schema.schema_version.name) else None
    if inspector.has_table(ALEMBIC_TABLE):
        revisions = conn.exec_driver_sql(f"SELECT version_num FROM {ALEMBIC_TABLE}").scalars().all()
        if len(revisions) > 1:
            raise _damaged(shown, f"its {ALEMBIC_TABLE} table holds {len(revisions)} revisions instead of one")
        revision = revisions[0] if revisions else None
    return SchemaState(version, revision)


_DAMAGED_FIX = ("Restore the file from a backup, or move it aside (nothing was changed) and let notebook_orch "
                "create a new store; the values under the data folder stay, but the run history is in the old file")


def _damaged(shown: str, what: str) -> StoreDamaged:
    return StoreDamaged(f"The metadata store at {shown!r} is damaged: {what}. {_DAMAGED_FIX}.")


def damaged_file(shown: str, path: Any, exc: BaseException) -> StoreDamaged:
    """A SQLite file that SQLite itself cannot read: not a database, truncated, or corrupted."""
    orig = getattr(exc, "orig", None) or exc
    return _damaged(shown, f"{path} is not a SQLite database, or is truncated or corrupted (SQLite says: {orig})")


def damaged_rows(shown: str, exc: BaseException) -> StoreDamaged:
    """A read met a row it cannot decode (a date that is not a date, a list that is not JSON ...)."""
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return _damaged(shown, f"a row cannot be read ({detail})")


def _read_version(conn: Connection, shown: str) -> int:
    try:
        rows = conn.execute(sa.text(f"SELECT version FROM {schema.schema_version.name}")).all()
    except sa.exc.DBAPIError as exc:  # its columns were altered
        raise _damaged(shown, f"its schema_version table cannot be read ({reason(exc)})") from exc
    if len(rows) != 1:
        raise _damaged(shown, f"its schema_version table holds {len(rows)} rows instead of one")
    version = rows[0][0]
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise _damaged(shown, f"its schema_version table holds {version!r} instead of a version number")
    return version


def _check_tables(conn: Connection, shown: str) -> None:
    """Every table and column of this schema version is there (one catalog read per table: ~1 ms in all)."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    missing = [t.name for t in schema.metadata.sorted_tables if t.name not in present]
    if missing:
        raise _damaged(shown, f"table(s) {', '.join(missing)} are missing")
    for table in schema.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        lost = [c.name for c in table.columns if c.name not in columns]
        if lost:
            raise _damaged(shown, f"table {table.name} lacks column(s) {', '.join(lost)}")


def _check_no_tables(conn: Connection, shown: str) -> None:
    """A database without a schema version may hold other applications' tables, but none of ours."""
    ours = set(schema.metadata.tables) & set(sa.inspect(conn).get_table_names())
    if ours:
        raise _damaged(shown, f"it has notebook_orch's table(s) {', '.join(sorted(ours))} but no schema_version "
                              "table, so its schema version is unknown")


def ensure_schema(engine: Engine, shown: str, *, migrations: Migrations | None = None) -> None:
    """Create a new store's tables, migrate an older one, refuse a newer one (module docstring)."""
    from notebook_orch.store.engine import read_txn

    migrations = migrations or Migrations()
    with read_txn(engine) as conn:
        state = read_state(conn, shown)
        if _is_current(state, migrations, shown):
            _check_tables(conn, shown)
            return
    with _migration_txn(engine) as conn:
        state = read_state(conn, shown)  # again, now that we hold the lock: another process may have done it
        if not _is_current(state, migrations, shown):
            if state.version is None:
                _check_no_tables(conn, shown)
            try:
                upgrade(conn, state, migrations)
            except Exception as exc:
                # A table or column the old version had is gone: the migration cannot run, and the transaction
                # rolls back, so the file stays as it was.
                if not _missing_schema_part(exc):
                    raise
                raise _damaged(shown, f"upgrading it from schema version {state.version} to {migrations.head} "
                                      f"failed because part of its schema is missing ({_first_line(exc)})") from None


def _missing_schema_part(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc)
    return isinstance(exc, (sa.exc.NoSuchTableError, sa.exc.NoSuchColumnError)) or (
        "no such table" in text or "no such column" in text or "does not exist" in text)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _is_current(state: SchemaState, migrations: Migrations, shown: str) -> bool:
    """True at head; raises ``SchemaVersionError`` for a store this package cannot open or migrate."""
    from notebook_orch import __version__

    numbered = state.revision is not None and state.revision.isdigit()
    newest = max(state.version or 0, int(state.revision) if numbered else 0)
    if newest > migrations.head:
        raise SchemaVersionError(
            f"The metadata store at {shown!r} has schema version {newest}, newer than version {migrations.head} "
            f"that notebook_orch {__version__} understands. Upgrade notebook_orch (pip install -U notebook_orch) "
            "to open it; nothing was changed."
        )
    if state.revision is not None and not numbered:
        raise SchemaVersionError(
            f"The metadata store at {shown!r} is at Alembic revision {state.revision!r}, which notebook_orch "
            f"{__version__} does not know (its revisions are numbered 0001..{migrations.head_revision}). It was "
            "written by another notebook_orch build or another tool; nothing was changed."
        )
    if state.revision is None and state.version not in (None, PRE_ALEMBIC_VERSION):
        raise SchemaVersionError(
            f"The metadata store at {shown!r} has schema version {state.version}, which notebook_orch cannot "
            f"migrate to version {migrations.head}. Open it with the notebook_orch version that wrote it and "
            "export what you need, or start a new store; nothing was changed."
        )
    return state.revision == migrations.head_revision and state.version == migrations.head


@contextmanager
def _migration_txn(engine: Engine) -> Iterator[Connection]:
    from notebook_orch.store.engine import WRITE, write_txn

    if engine.dialect.name != "sqlite":
        with write_txn(engine) as conn:
            lock_event_log(conn)
            yield conn
        return
    with engine.connect() as conn:
        # Foreign-key enforcement off on this connection before BEGIN (it cannot change inside a transaction),
        # checked by hand before commit, on again afterwards.
        raw = conn.connection.driver_connection
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            conn.execution_options(**{WRITE: True})  # BEGIN IMMEDIATE: the database's write lock
            with conn.begin():
                yield conn
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise SchemaVersionError(
                        f"A migration left rows whose foreign keys point nowhere ({problems[:3]}); it was rolled "
                        "back and nothing was changed. This is a bug in that migration: please report it."
                    )
        finally:
            raw.execute("PRAGMA foreign_keys = ON")


def upgrade(conn: Connection, state: SchemaState, migrations: Migrations, *, create_new: bool = True) -> None:
    """Run the missing revisions on ``conn`` (inside its transaction) and record the new version.

    A new store gets the models' tables directly and is stamped at head, as Alembic's docs advise (and without
    importing Alembic: 0.5 s a process); tests/store/test_migrations.py checks that running every revision from
    empty builds exactly those tables.
    """
    if create_new and state.version is None and migrations.location == PACKAGE_MIGRATIONS:
        schema.metadata.create_all(conn)
        _alembic_version.create(conn, checkfirst=True)
        conn.execute(_alembic_version.delete())
        conn.execute(_alembic_version.insert().values(version_num=migrations.head_revision))
        _write_version(conn, migrations.head)
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = _config(migrations.location, conn)
    if state.revision is None and state.version == PRE_ALEMBIC_VERSION:
        context = MigrationContext.configure(conn, opts={"version_table": ALEMBIC_TABLE})
        context.stamp(ScriptDirectory.from_config(config), revision_id(PRE_ALEMBIC_VERSION))
    command.upgrade(config, migrations.head_revision)
    _write_version(conn, migrations.head)


# Alembic's own version table, as Alembic creates it (for stamping a new store without importing Alembic).
_alembic_version = sa.Table(
    ALEMBIC_TABLE, sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name=f"{ALEMBIC_TABLE}_pkc"),
)


def _config(location: Path, conn: Connection | None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(location))
    config.attributes["connection"] = conn
    return config


def _write_version(conn: Connection, version: int) -> None:
    from notebook_orch import __version__
    from notebook_orch.store.ids import utc_naive

    table = schema.schema_version
    conn.execute(table.delete())
    conn.execute(
        table.insert().values(id=1, version=version, package_version=__version__, updated_at=utc_naive(None))
    )


def schema_differences(conn: Connection) -> list[Any]:
    """What differs between the tables on ``conn`` and the models in schema.py (Alembic's autogenerate diff);
    empty when the migrations and the models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": ALEMBIC_TABLE})
    return [d for d in compare_metadata(context, schema.metadata) if not _is_alembic_table(d)]


def _is_alembic_table(diff: Any) -> bool:
    return isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == ALEMBIC_TABLE


def new_revision(message: str, *, location: Path = PACKAGE_MIGRATIONS) -> Path:
    """Write the next revision, autogenerated from the difference between head and schema.py's models."""
    from alembic import command

    from notebook_orch.store.engine import create_store_engine

    number = schema.SCHEMA_VERSION
    existing = sorted(p.name[:4] for p in (location / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    if existing and existing[-1] != revision_id(number):
        raise SystemExit(
            f"Head revision is {existing[-1]} but SCHEMA_VERSION is {number}: keep them equal (the revision's number "
            "is the version it produces). Bump SCHEMA_VERSION only after writing the revision."
        )
    folder = Path(tempfile.mkdtemp(prefix="nbo-revision-"))
    try:
        engine = create_store_engine(f"sqlite:///{folder / 'head.db'}")  # a store at head, by the migrations
        with engine.begin() as conn:
            script = command.revision(
                _config(location, conn), message=message, autogenerate=True, rev_id=revision_id(number + 1),
                head=revision_id(number),
            )
        engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Path(script.path)  # named REV_SLUG.py by Alembic's default file template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notebook_orch.store.migrate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="write the next revision from the models' difference to head")
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    path = new_revision(args.message)
    print(f"wrote {path}; review it, then set SCHEMA_VERSION = {int(path.name[:4])} "
          "in notebook_orch/store/constants.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
