"""Read queries. Each runs inside a read transaction its caller opened (engine.read_txn) and returns records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from notebook_orch.store import codec
from notebook_orch.store.records import (
    EventRecord,
    MaterializationRecord,
    PoolWait,
    RunRecord,
)
from notebook_orch.store.schema import (
    code_versions,
    events,
    materializations,
    partition_locks,
    pool_slots,
    pool_waits,
    runs,
)

_CHUNK = 2_000


def code_sources(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The normalized source of each known (asset, code version) among ``keys``."""
    by_version: dict[str, set[str]] = {}
    for asset, version in keys:
        by_version.setdefault(version, set()).add(asset)
    versions = sorted(by_version)
    found: dict[tuple[str, str], str] = {}
    t = code_versions
    for i in range(0, len(versions), _CHUNK):
        query = sa.select(t.c.asset, t.c.code_version, t.c.normalized_source).where(
            t.c.code_version.in_(versions[i : i + _CHUNK]))
        for asset, version, source in conn.execute(query):
            if asset in by_version[version]:
                found[(asset, version)] = source
    return found


def pool_holders(conn: Connection) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {}
    query = sa.select(pool_slots.c.pool, pool_slots.c.run_id).order_by(pool_slots.c.pool, pool_slots.c.acquired_at)
    for pool, run_id in conn.execute(query):
        held.setdefault(pool, []).append(run_id)
    return held


def pool_waiters(conn: Connection) -> list[PoolWait]:
    """Every run queued for pool slots, first come first, with how many runs queue ahead of it in each pool."""
    w = pool_waits
    rows = conn.execute(sa.select(w.c.run_id, w.c.pool, w.c.ticket, w.c.since).order_by(w.c.ticket, w.c.pool)).all()
    by_run: dict[str, tuple[int, object, dict[str, int]]] = {}
    queued: dict[str, int] = {}  # pool -> waiters seen so far (rows come in ticket order)
    for run_id, pool, ticket, since in rows:
        entry = by_run.setdefault(run_id, (ticket, since, {}))
        entry[2][pool] = queued.get(pool, 0)
        queued[pool] = queued.get(pool, 0) + 1
    return [PoolWait(run_id=r, since=since, position=i + 1, ahead=ahead)  # type: ignore[arg-type]
            for i, (r, (_, since, ahead)) in enumerate(by_run.items())]


def get_run(conn: Connection, run_id: str) -> RunRecord | None:
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
    return None if row is None else codec.run_record(row)


def get_runs(conn: Connection, run_ids: Sequence[str]) -> list[RunRecord]:
    found = {}
    for i in range(0, len(run_ids), _CHUNK):
        for row in conn.execute(sa.select(runs).where(runs.c.run_id.in_(run_ids[i : i + _CHUNK]))):
            found[row.run_id] = codec.run_record(row)
    return [found[r] for r in run_ids if r in found]


def list_runs(
    conn: Connection, *, limit: int, status: str | None, asset: str | None, kind: str | None
) -> list[RunRecord]:
    query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
    if status is not None:
        query = query.where(runs.c.status == status)
    if kind is not None:
        query = query.where(runs.c.kind == kind)
    if asset is not None:
        # ``assets`` is a JSON list of names: match the quoted name, with LIKE's wildcards escaped.
        escaped = asset.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(runs.c.assets.like(f'%"{escaped}"%', escape="\\"))
    return [codec.run_record(row) for row in conn.execute(query)]


def latest_materialization(conn: Connection, asset: str, partition: str) -> MaterializationRecord | None:
    m = materializations
    row = conn.execute(
        sa.select(m).where(m.c.asset == asset, m.c.partition == partition).order_by(m.c.id.desc()).limit(1)
    ).first()
    return None if row is None else codec.materialization_record(row)


def materializations_of(
    conn: Connection, asset: str, partition: str | None, *, limit: int | None
) -> list[MaterializationRecord]:
    m = materializations
    query = sa.select(m).where(m.c.asset == asset).order_by(m.c.id.desc())
    if partition is not None:
        query = query.where(m.c.partition == partition)
    if limit is not None:
        query = query.limit(limit)
    return [codec.materialization_record(row) for row in conn.execute(query)]


def materializations_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, MaterializationRecord]:
    wanted = sorted(set(ids))
    found: dict[int, MaterializationRecord] = {}
    m = materializations
    for i in range(0, len(wanted), _CHUNK):
        for row in conn.execute(sa.select(m).where(m.c.id.in_(wanted[i : i + _CHUNK])).order_by(m.c.id)):
            found[row.id] = codec.materialization_record(row)
    return found


# Built once: an expanding IN keeps one cached compiled form whatever the number of ids.
def consumed_versions(conn: Connection, ids: Iterable[int]) -> dict[int, tuple[tuple[str, str, str], ...]]:
    """For each materialization id: the (asset, partition, data version) of every input it read."""
    from notebook_orch.store.snapshot import dbapi
    from notebook_orch.store.state_read import consumed_versions

    return consumed_versions(dbapi(conn), ids)


def events_after(conn: Connection, event_id: int, *, limit: int) -> list[EventRecord]:
    query = sa.select(events).where(events.c.id > event_id).order_by(events.c.id).limit(limit)
    return [codec.event_record(row) for row in conn.execute(query)]


def last_event_id(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0


def running(conn: Connection) -> dict[tuple[str, str], str]:
    rows = conn.execute(sa.select(partition_locks.c.asset, partition_locks.c.partition, partition_locks.c.run_id))
    return {(a, p): r for a, p, r in rows}


def events_by_id(conn: Connection, ids: list[int]) -> list[EventRecord]:
    query = sa.select(events).where(events.c.id.in_(ids)).order_by(events.c.id)
    return [codec.event_record(row) for row in conn.execute(query)]
