"""The store's side of ``nbo doctor``: the rows it compares with the value folders, in one consistent read, and
the one repair that is a store write (releasing a lock whose run is not running).

Anti-joins over the big tables run in SQL; only runs, materializations (id, key, run, value path), partition_state
ids and locks come back whole — a doctor pass is occasional, and 100,000 materializations are a few MB.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from notebook_orch.core.integrity import MaterializationFacts, RunFacts, StoreFacts
from notebook_orch.core.specs import SOURCE_IO
from notebook_orch.store.schema import events, materializations, partition_locks, partition_state, runs

_EVENT_SAMPLE = 20


def read_facts(conn: Connection) -> StoreFacts:
    run_facts = {}
    for r in conn.execute(sa.select(runs.c.run_id, runs.c.status, runs.c.started_at, runs.c.heartbeat_at,
                                    runs.c.assets, runs.c.partition_keys)):
        targets = tuple((a, p) for a in json.loads(r.assets) for p in json.loads(r.partition_keys))
        run_facts[r.run_id] = RunFacts(r.run_id, r.status, r.heartbeat_at or r.started_at, targets)
    m = materializations
    # An external source's materialization points at the source's own folder, not at a value of ours: no value
    # file to check (None, as for imported history).
    mats = [MaterializationFacts(row.id, row.asset, row.partition, row.run_id, row.data_version,
                                 None if row.io == SOURCE_IO else row.storage_path)
            for row in conn.execute(sa.select(m.c.id, m.c.asset, m.c.partition, m.c.run_id, m.c.data_version,
                                              m.c.storage_path, m.c.io).order_by(m.c.id))]
    s = partition_state
    latest = {(row.asset, row.partition): row.materialization_id
              for row in conn.execute(sa.select(s.c.asset, s.c.partition, s.c.materialization_id))}
    locks = [(row.asset, row.partition, row.run_id) for row in conn.execute(sa.select(partition_locks))]
    orphan = (sa.select(events.c.id, events.c.run_id)
              .where(events.c.run_id.is_not(None))
              .where(~sa.exists().where(runs.c.run_id == events.c.run_id)))
    count = conn.execute(sa.select(sa.func.count()).select_from(orphan.subquery())).scalar_one()
    sample = [(row.id, row.run_id) for row in conn.execute(orphan.order_by(events.c.id).limit(_EVENT_SAMPLE))]
    return StoreFacts(run_facts, mats, latest, locks, sample, count)


def database_damage(conn: Connection) -> list[str]:
    """What the database's own check reports (SQLite ``PRAGMA quick_check``); empty when healthy or not SQLite."""
    if conn.dialect.name != "sqlite":
        return []
    rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check")]
    return [] if rows == ["ok"] else rows[:10]


def release_lock(conn: Connection, asset: str, partition: str, run_id: str) -> bool:
    """Delete the lock of (asset, partition) if ``run_id`` still holds it and is not live (RUNNING or WAITING for a
    pool slot). True if deleted."""
    t = partition_locks
    not_running = ~sa.exists().where(runs.c.run_id == run_id).where(runs.c.status.in_(("RUNNING", "WAITING")))
    result = conn.execute(sa.delete(t).where(t.c.asset == asset, t.c.partition == partition, t.c.run_id == run_id)
                          .where(not_running))
    return bool(result.rowcount)
