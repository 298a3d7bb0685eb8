"""Prebuilt Core statements for the hot write paths, one set per dialect.

Building a SQLAlchemy statement (and its cache key) costs tens of microseconds; on a finalize transaction of
six statements that was most of the time. These are built once per dialect with bind parameters and reused, so
SQLAlchemy only looks up its compiled form.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from notebook_orch.store.dialect import json_object, upsert
from notebook_orch.store.records import EV_MATERIALIZED, LIVE_STATUSES, RUNNING
from notebook_orch.store.schema import (
    events,
    materializations,
    partition_locks,
    partition_state,
    pool_slots,
    pool_waits,
    runs,
)


class Statements:
    def __init__(self, conn: Connection) -> None:
        m = materializations
        self.insert_run = runs.insert()
        self.insert_locks = partition_locks.insert()
        locks = partition_locks
        self.lock_holders = (
            sa.select(locks.c.asset, locks.c.partition, locks.c.run_id)
            .where(sa.tuple_(locks.c.asset, locks.c.partition).in_(sa.bindparam("keys", expanding=True)))
            .order_by(locks.c.asset, locks.c.partition)
        )
        self.run_targets = (
            sa.select(locks.c.asset, locks.c.partition)
            .where(locks.c.run_id == sa.bindparam("run_id"))
            .order_by(locks.c.asset, locks.c.partition)
        )
        self.release_locks = partition_locks.delete().where(partition_locks.c.run_id == sa.bindparam("run_id"))
        # SET columns come from the parameter names given at execution (heartbeat_at, or status/ended_at/...).
        self.update_running = runs.update().where(runs.c.run_id == sa.bindparam("rid"), runs.c.status == RUNNING)
        # Heartbeats and failures also reach a run WAITING for a pool slot; only a RUNNING run can succeed.
        self.update_live = runs.update().where(runs.c.run_id == sa.bindparam("rid"),
                                               runs.c.status.in_(LIVE_STATUSES))
        self.release_slots = pool_slots.delete().where(pool_slots.c.run_id == sa.bindparam("run_id"))
        self.release_waits = pool_waits.delete().where(pool_waits.c.run_id == sa.bindparam("run_id"))
        self.insert_event = events.insert()
        self.insert_materializations = DriverInsert(conn, m, MATERIALIZATION_COLUMNS)
        # One row (a finalize): a single INSERT ... RETURNING beats executemany plus two id lookups.
        self.insert_materialization = m.insert().returning(m.c.id)
        self.max_materialization_id = sa.select(sa.func.coalesce(sa.func.max(m.c.id), 0))
        self.materialization_ids_since = sa.select(m.c.id).where(_just_inserted()).order_by(m.c.id)
        self.upsert_state = _state_from_materializations(conn)
        self.materialized_events = _events_from_materializations(conn)
        self.mark_failed = _mark_failed(conn)


# Column order of the tuples codec.materialization_values builds.
MATERIALIZATION_COLUMNS = (
    "asset", "partition", "run_id", "code_version", "data_version", "deps_signature", "inputs", "inputs_seq",
    "row_count", "schema", "null_rates", "checks", "duration_s", "storage_path", "io", "created_at",
)


class DriverInsert:
    """An INSERT compiled once for a dialect and fed plain value tuples through the driver's ``executemany``.

    The bulk path's rows hold only str/int/float/None, which every driver takes as they are, so SQLAlchemy's
    per-row parameter processing (about 15 us a row, a third of the ingest cost) is skipped; the one typed
    value (a datetime, the same for the whole batch) goes through the column type's own bind processor once,
    via ``bind``.
    """

    def __init__(self, conn: Connection, table: sa.Table, columns: tuple[str, ...]) -> None:
        dialect = conn.dialect
        # inline(): no implicit RETURNING of the new keys (PostgreSQL) - callers select the ids they need.
        compiled = table.insert().inline().compile(dialect=dialect, column_keys=list(columns))
        self.sql = compiled.string
        self.columns = columns
        self.positional = compiled.positional
        if self.positional and list(compiled.positiontup or ()) != list(columns):
            raise AssertionError(f"unexpected parameter order {compiled.positiontup}")
        self._processors = {
            name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        }

    def bind(self, column: str, value: Any) -> Any:
        """``value`` as the driver wants it for ``column`` (apply once, then reuse for every row)."""
        process = self._processors[column]
        return value if process is None else process(value)

    def execute(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        params: list[Any] = rows if self.positional else [dict(zip(self.columns, row)) for row in rows]
        conn.exec_driver_sql(self.sql, params)


def _just_inserted() -> sa.ColumnElement[bool]:
    # "This run's rows after the id we saw before inserting" are exactly the rows just inserted: on SQLite the
    # write lock makes them ours alone; on PostgreSQL ids come from a sequence, so rows inserted after we read
    # the max are above it, and another transaction's rows carry another run id.
    m = materializations
    return sa.and_(m.c.id > sa.bindparam("after"), m.c.run_id == sa.bindparam("run_id"))


def _state_from_materializations(conn: Connection) -> Any:
    m, ps = materializations, partition_state
    columns = [
        ps.c.asset, ps.c.partition, ps.c.materialization_id, ps.c.code_version, ps.c.deps_signature,
        ps.c.data_version, ps.c.data_seq, ps.c.inputs_seq, ps.c.last_status, ps.c.last_run_id, ps.c.materialized_at,
    ]
    source = (
        sa.select(
            m.c.asset, m.c.partition, m.c.id, m.c.code_version, m.c.deps_signature, m.c.data_version, m.c.id,
            m.c.inputs_seq, sa.bindparam("status", type_=sa.String), m.c.run_id,
            sa.bindparam("materialized_at", type_=sa.Float),
        )
        .where(_just_inserted())  # a WHERE is required anyway: SQLite's INSERT ... SELECT ... ON CONFLICT
        .order_by(m.c.id)
    )
    stmt = upsert(conn, ps).from_select(columns, source)
    new = stmt.excluded
    # data_seq: where the current data version first appeared. Identical data keeps it, so downstream stays fresh.
    same_data = sa.and_(ps.c.materialization_id.is_not(None), ps.c.data_version == new.data_version)
    return stmt.on_conflict_do_update(
        index_elements=[ps.c.asset, ps.c.partition],
        set_={
            "materialization_id": new.materialization_id,
            "code_version": new.code_version,
            "deps_signature": new.deps_signature,
            "data_version": new.data_version,
            "data_seq": sa.case((same_data, ps.c.data_seq), else_=new.data_seq),
            "inputs_seq": new.inputs_seq,
            "last_status": new.last_status,
            "last_run_id": new.last_run_id,
            "materialized_at": new.materialized_at,
        },
    )


def _events_from_materializations(conn: Connection) -> Any:
    m = materializations
    payload = json_object(
        conn, ("materialization_id", m.c.id), ("data_version", m.c.data_version), ("row_count", m.c.row_count)
    )
    return events.insert().from_select(
        [events.c.kind, events.c.run_id, events.c.asset, events.c.partition, events.c.timestamp, events.c.payload],
        sa.select(sa.literal(EV_MATERIALIZED), m.c.run_id, m.c.asset, m.c.partition, m.c.created_at, payload)
        .where(_just_inserted())
        .order_by(m.c.id),
    )


def _mark_failed(conn: Connection) -> Any:
    ps = partition_state
    stmt = upsert(conn, ps)
    # A partition that was never materialized gets a state row with no materialization: "attempted, failed".
    # One that was keeps its materialization fields: its last good data is still there.
    return stmt.on_conflict_do_update(
        index_elements=[ps.c.asset, ps.c.partition],
        set_={"last_status": stmt.excluded.last_status, "last_run_id": stmt.excluded.last_run_id},
    )


def statements(conn: Connection) -> Statements:
    """The prebuilt statements for ``conn``'s dialect and driver (DriverInsert holds driver-level SQL)."""
    key = (conn.dialect.name, conn.dialect.driver)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS.setdefault(key, Statements(conn))
    return found


# Filled on first use, never at import (building needs a dialect).
_STATEMENTS: dict[tuple[str, str], Statements] = {}
