"""Write transactions' bodies. Each function runs inside ONE transaction its caller opened (engine.write_txn).

SQLAlchemy Core throughout: these are the hot paths, where building ORM objects cost more than the SQL.
Derived rows (partition_state, MATERIALIZED events) are written set-based with INSERT ... SELECT from the
materialization rows just inserted, so the database does that work instead of Python.

Every function that appends events (or moves partition locks) starts with ``lock_event_log``: on PostgreSQL that
serializes those transactions so event ids follow commit order (event_log.py says why); on SQLite it is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from notebook_orch.errors import PartitionLocked, StoreError
from notebook_orch.store import codec
from notebook_orch.store.event_log import lock_event_log
from notebook_orch.store.ids import posix
from notebook_orch.store.records import (
    CANCELED,
    EV_PARTITION_CANCELED,
    EV_PARTITION_FAILED,
    EV_RUN_CANCELED,
    EV_RUN_FAILED,
    EV_RUN_STARTED,
    EV_RUN_SUCCESS,
    EV_RUN_WAITING,
    FAILED,
    LIVE_STATUSES,
    RUN_KINDS,
    RUNNING,
    SAME_RUN,
    SUCCESS,
    WAITING,
    CheckResult,
    ConsumedInput,
    MaterializationRecord,
    NewMaterialization,
    RunRecord,
)
from notebook_orch.store.schema import code_versions, partition_state, pool_slots, pool_waits, runs
from notebook_orch.store.statements import MATERIALIZATION_COLUMNS, statements

# Keep IN lists and multi-row statements well below SQLite's 32,766 bound-parameter limit.
_CHUNK = 2_000

Target = tuple[str, str]


def unique_targets(targets: Iterable[Target]) -> list[Target]:
    return list(dict.fromkeys((str(a), str(p)) for a, p in targets))


def _ordered_unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# -- runs ----------------------------------------------------------------------------------------------------------


def start_run(
    conn: Connection,
    *,
    run_id: str,
    notebook: str | None,
    targets: list[Target],
    kind: str,
    attempt: int,
    now: datetime,
    pools: dict[str, int] | None = None,
) -> RunRecord:
    """Insert the run and lock its targets. With ``pools`` (pool -> limit) it also takes a slot in each: when one
    is full the run is recorded WAITING instead of RUNNING (it keeps its locks) and ``take_pool_slots`` moves it
    on later."""
    if kind not in RUN_KINDS:
        raise StoreError(f"Run kind {kind!r} is not one of {', '.join(RUN_KINDS)}; pass one of those.")
    if attempt < 1:
        raise StoreError(f"Run attempt {attempt} is not allowed: attempts count from 1.")
    lock_event_log(conn)  # before the lock check: the check and the insert must see no concurrent start
    # Counted under the same lock as the insert below (SQLite's write lock, PostgreSQL's event-log lock): two starts
    # cannot both see the last free slot. Runs already waiting count as ahead of this one: a newcomer never takes a
    # slot an older waiter is queued for (first come, first served; no starvation by a stream of newer runs).
    full = blocked_pools(conn, pools, ticket=None) if pools else []
    status = WAITING if full else RUNNING
    record = RunRecord(
        run_id=run_id,
        notebook=notebook,
        assets=tuple(_ordered_unique(a for a, _ in targets)),
        partition_keys=tuple(_ordered_unique(p for _, p in targets)),
        status=status,
        kind=kind,
        started_at=now,
        attempt=attempt,
    )
    # The lock check below cannot race: SQLite's transaction holds the write lock (BEGIN IMMEDIATE), PostgreSQL's
    # the event-log advisory lock. The primary key of partition_locks stays the backstop.
    st = statements(conn)
    conn.execute(
        st.insert_run,
        {
            "run_id": run_id, "notebook": notebook, "assets": codec.dumps(record.assets),
            "partition_keys": codec.dumps(record.partition_keys), "status": status, "kind": kind,
            "started_at": now, "attempt": attempt,
        },
    )
    held = lock_holders(conn, targets)
    if held:
        (asset, partition), holder = next(iter(held.items()))
        raise PartitionLocked(asset, partition, holder)
    if targets:
        conn.execute(st.insert_locks, [{"asset": a, "partition": p, "run_id": run_id} for a, p in targets])
    payload: dict[str, Any] = {"notebook": notebook, "kind": kind, "attempt": attempt,
                               "targets": [list(t) for t in targets]}
    if full:
        payload["waiting_for"] = full
        _queue(conn, run_id, pools or {}, now=now)
        append_event(conn, EV_RUN_WAITING, run_id=run_id, now=now, payload=payload)
        return record
    if pools:
        _insert_slots(conn, run_id, pools, now=now)
    append_event(conn, EV_RUN_STARTED, run_id=run_id, now=now, payload=payload)
    return record


# -- concurrency pools (core/pools.py) ------------------------------------------------------------------------------


def pool_usage(conn: Connection, pools: Iterable[str] | None = None) -> dict[str, int]:
    """Slots held per pool (only pools with a holder; ``pools`` limits the count to those)."""
    query = sa.select(pool_slots.c.pool, sa.func.count()).group_by(pool_slots.c.pool)
    if pools is not None:
        query = query.where(pool_slots.c.pool.in_(list(pools)))
    return {pool: int(n) for pool, n in conn.execute(query)}


def full_pools(conn: Connection, pools: dict[str, int]) -> list[dict[str, Any]]:
    """The pools among ``pools`` with no free slot: ``[{"pool", "limit", "in_use"}]`` in name order."""
    used = pool_usage(conn, pools)
    return [{"pool": p, "limit": limit, "in_use": used.get(p, 0)} for p, limit in sorted(pools.items())
            if used.get(p, 0) >= limit]


def waiters_ahead(conn: Connection, pools: Iterable[str], *, ticket: int | None) -> dict[str, int]:
    """Per pool, how many WAITING runs queued before ``ticket`` (None: every waiter, i.e. a newcomer's view)."""
    query = sa.select(pool_waits.c.pool, sa.func.count()).where(pool_waits.c.pool.in_(list(pools)))
    if ticket is not None:
        query = query.where(pool_waits.c.ticket < ticket)
    return {pool: int(n) for pool, n in conn.execute(query.group_by(pool_waits.c.pool))}


def blocked_pools(conn: Connection, pools: dict[str, int], *, ticket: int | None) -> list[dict[str, Any]]:
    """The pools among ``pools`` a run cannot take a slot in now: the slots held plus one kept for each waiter
    queued ahead of it reach the limit. ``[{"pool", "limit", "in_use", "ahead"}]`` in name order; empty: it may
    start. Each older waiter keeps one slot per pool it needs, so it is never overtaken, and a pool it does not
    need stays open to newer runs (no head-of-line blocking across pools)."""
    used = pool_usage(conn, pools)
    ahead = waiters_ahead(conn, pools, ticket=ticket)
    return [{"pool": p, "limit": limit, "in_use": used.get(p, 0), "ahead": ahead.get(p, 0)}
            for p, limit in sorted(pools.items()) if used.get(p, 0) + ahead.get(p, 0) >= limit]


def _queue(conn: Connection, run_id: str, pools: dict[str, int], *, now: datetime) -> None:
    """Give a run that must wait its ticket: one past the newest waiter's, taken under the write lock."""
    newest = conn.execute(sa.select(sa.func.max(pool_waits.c.ticket))).scalar()
    ticket = int(newest or 0) + 1
    conn.execute(pool_waits.insert(), [{"pool": p, "run_id": run_id, "ticket": ticket, "since": now}
                                       for p in sorted(pools)])


def ticket_of(conn: Connection, run_id: str) -> int | None:
    """The run's place in the pool queue (None: it has none, e.g. a run left WAITING by an older version, which
    then queues behind every ticketed waiter)."""
    value = conn.execute(sa.select(sa.func.min(pool_waits.c.ticket)).where(pool_waits.c.run_id == run_id)).scalar()
    return None if value is None else int(value)


def _insert_slots(conn: Connection, run_id: str, pools: dict[str, int], *, now: datetime) -> None:
    conn.execute(pool_slots.insert(), [{"pool": p, "run_id": run_id, "acquired_at": now} for p in sorted(pools)])


def take_pool_slots(conn: Connection, run_id: str, pools: dict[str, int], *, now: datetime) -> str:
    """A WAITING run takes a slot in every pool of ``pools`` and becomes RUNNING (RUN_STARTED), or, while one is
    full or kept for a waiter queued before it, stays WAITING (nothing written). Returns the run's status
    afterwards; a run no longer WAITING (canceled, reaped) is left as it is."""
    lock_event_log(conn)
    row = conn.execute(sa.select(runs.c.status, runs.c.notebook, runs.c.kind, runs.c.attempt)
                       .where(runs.c.run_id == run_id)).first()
    if row is None:
        raise StoreError(f"Run {run_id} does not exist, so it cannot take a pool slot. Start it with start_run first.")
    if row.status != WAITING or blocked_pools(conn, pools, ticket=ticket_of(conn, run_id)):
        return str(row.status)
    conn.execute(pool_waits.delete().where(pool_waits.c.run_id == run_id))
    _insert_slots(conn, run_id, pools, now=now)
    conn.execute(statements(conn).update_live, {"rid": run_id, "status": RUNNING, "heartbeat_at": now})
    append_event(conn, EV_RUN_STARTED, run_id=run_id, now=now,
                 payload={"notebook": row.notebook, "kind": row.kind, "attempt": row.attempt,
                          "targets": [list(t) for t in run_targets(conn, run_id)], "waited": True})
    return RUNNING


def lock_holders(conn: Connection, targets: Sequence[Target]) -> dict[Target, str]:
    """Which of ``targets`` are locked, by which run."""
    held: dict[Target, str] = {}
    for i in range(0, len(targets), _CHUNK):
        rows = conn.execute(statements(conn).lock_holders, {"keys": list(targets[i : i + _CHUNK])})
        held.update(((a, p), r) for a, p, r in rows)
    return held


def heartbeat(conn: Connection, run_id: str, *, now: datetime) -> None:
    result = conn.execute(statements(conn).update_live, {"rid": run_id, "heartbeat_at": now})
    if result.rowcount != 1:
        raise _not_running(conn, run_id, "take a heartbeat")


def _end_run(conn: Connection, stmt: Any, run_id: str, action: str, values: dict[str, Any]) -> None:
    """Move a RUNNING run to its final status, or raise (and so roll the whole transaction back)."""
    result = conn.execute(stmt, {"rid": run_id, **values})
    if result.rowcount != 1:
        raise _not_running(conn, run_id, action)


def _not_running(conn: Connection, run_id: str, action: str) -> StoreError:
    row = conn.execute(sa.select(runs.c.status, runs.c.error).where(runs.c.run_id == run_id)).first()
    if row is None:
        return StoreError(f"Run {run_id} does not exist, so it cannot {action}. Start it with start_run first.")
    why = f" ({row.error})" if row.error else ""
    return StoreError(
        f"Run {run_id} is {row.status}{why}, not RUNNING, so it cannot {action}; nothing was written. "
        "A run that missed its heartbeats is reaped as FAILED: start a new run to retry."
    )


def _release_locks(conn: Connection, run_id: str) -> None:
    """The run's partition locks, its pool slots and its places in pool queues: a run that ended (or was reaped)
    holds none."""
    st = statements(conn)
    conn.execute(st.release_locks, {"run_id": run_id})
    conn.execute(st.release_slots, {"run_id": run_id})
    conn.execute(st.release_waits, {"run_id": run_id})


def run_targets(conn: Connection, run_id: str) -> list[Target]:
    rows = conn.execute(statements(conn).run_targets, {"run_id": run_id})
    return [(a, p) for a, p in rows]


# -- success --------------------------------------------------------------------------------------------------------


def finalize_success(
    conn: Connection,
    run_id: str,
    new: Sequence[NewMaterialization],
    *,
    output_path: str | None,
    now: datetime,
) -> list[MaterializationRecord]:
    lock_event_log(conn)
    _end_run(
        conn, statements(conn).update_running, run_id, "be finalized",
        {"status": SUCCESS, "ended_at": now, "output_path": output_path},
    )
    new = list(new)
    ids: list[int] = []
    start = 0
    # An input with materialization id SAME_RUN (0) was published earlier in this run: record what precedes it,
    # then point the input at that materialization and its data_seq, all inside this one transaction.
    for i, m in enumerate(new):
        if any(c.materialization_id == SAME_RUN for c in m.inputs):
            ids += record_materializations(conn, run_id, new[start:i], now=now)
            new[i] = replace(m, inputs=tuple(_resolve_same_run(conn, run_id, c) for c in m.inputs))
            start = i
    ids += record_materializations(conn, run_id, new[start:], now=now)
    _release_locks(conn, run_id)
    append_event(conn, EV_RUN_SUCCESS, run_id=run_id, now=now, payload={"materializations": len(ids)})
    return [_record_of(mid, run_id, m, now) for mid, m in zip(ids, new)]


def _resolve_same_run(conn: Connection, run_id: str, c: ConsumedInput) -> ConsumedInput:
    if c.materialization_id != SAME_RUN:
        return c
    ps = partition_state
    row = conn.execute(
        sa.select(ps.c.materialization_id, ps.c.data_version, ps.c.data_seq, ps.c.last_run_id)
        .where(ps.c.asset == c.asset, ps.c.partition == c.partition)
    ).first()
    if row is None or row.last_run_id != run_id or row.data_version != c.data_version:
        raise StoreError(
            f"Run {run_id} says it read {c.asset}[{c.partition}] from earlier in the same run, but this run "
            "recorded no such materialization before it; list a run's materializations in the order they ran."
        )
    return ConsumedInput(c.asset, c.partition, row.materialization_id, row.data_version, row.data_seq)


def record_materializations(
    conn: Connection, run_id: str, new: Sequence[NewMaterialization], *, now: datetime
) -> list[int]:
    """Insert ``new``, upsert partition_state and append MATERIALIZED events; returns the ids in input order."""
    lock_event_log(conn)
    st = statements(conn)
    insert = st.insert_materializations
    created_at = insert.bind("created_at", now)
    rows = [codec.materialization_values(m, i, run_id, created_at) for i, m in enumerate(new)]
    ids: list[int] = []
    derive = {"run_id": run_id, "status": SUCCESS, "materialized_at": posix(now)}
    for chunk in _unique_key_chunks(rows):
        if len(chunk) == 1:
            values = dict(zip(MATERIALIZATION_COLUMNS, chunk[0]), created_at=now)  # SQLAlchemy binds the datetime
            new_id = conn.execute(st.insert_materialization, values).scalar_one()
            after, chunk_ids = new_id - 1, [new_id]
        else:
            after = conn.execute(st.max_materialization_id).scalar_one()
            insert.execute(conn, chunk)
            chunk_ids = list(conn.execute(st.materialization_ids_since, {"after": after, "run_id": run_id}).scalars())
        if len(chunk_ids) != len(chunk):
            raise StoreError(
                f"Recording materializations of run {run_id}: expected {len(chunk)} new rows, found "
                f"{len(chunk_ids)}. Is another process recording materializations for the same run id?"
            )
        # Ids grow in insertion order, so they pair with the rows in order.
        ids.extend(chunk_ids)
        # partition_state and the MATERIALIZED events derive set-based from the rows just inserted.
        derive["after"] = after
        conn.execute(st.upsert_state, derive)
        conn.execute(st.materialized_events, derive)
    record_code_sources(conn, new, now=now)
    return ids


def record_code_sources(conn: Connection, new: Sequence[NewMaterialization], *, now: datetime) -> None:
    """Keep the normalized source of each (asset, code version) the first time a materialization brings it."""
    sources = {(m.code_version, m.asset): m.code_source for m in new if m.code_source is not None}
    if not sources:
        return
    from notebook_orch.store.dialect import upsert

    stmt = upsert(conn, code_versions).on_conflict_do_nothing(index_elements=["code_version", "asset"])
    conn.execute(stmt, [{"code_version": v, "asset": a, "normalized_source": src, "created_at": now}
                        for (v, a), src in sources.items()])


def _unique_key_chunks(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Split so no (asset, partition) repeats within a chunk.

    One upsert statement may not touch a row twice on PostgreSQL, and data_seq must compare each
    materialization with the one just before it; rows stay in input order.
    """
    if len(rows) <= _CHUNK and len({(row[0], row[1]) for row in rows}) == len(rows):
        return [rows] if rows else []  # the usual case, decided without a Python loop per row
    chunks: list[list[tuple[Any, ...]]] = [[]]
    seen: set[Target] = set()
    for row in rows:
        key = (row[0], row[1])  # asset, partition: the first two columns
        if key in seen or len(chunks[-1]) >= _CHUNK:
            chunks.append([])
            seen = set()
        seen.add(key)
        chunks[-1].append(row)
    return [c for c in chunks if c]


def _record_of(mid: int, run_id: str, m: NewMaterialization, now: datetime) -> MaterializationRecord:
    return MaterializationRecord(
        id=mid, asset=m.asset, partition=m.partition, run_id=run_id, code_version=m.code_version,
        data_version=m.data_version, deps_signature=m.deps_signature, inputs=tuple(m.inputs), row_count=m.row_count,
        schema=dict(m.schema), null_rates=dict(m.null_rates), checks=tuple(m.checks), duration_s=m.duration_s,
        storage_path=m.storage_path, io=m.io, created_at=now,
    )


# -- failure --------------------------------------------------------------------------------------------------------


def finalize_failure(
    conn: Connection,
    run_id: str,
    *,
    error: str,
    error_cell: int | None,
    error_source: str | None,
    failed_targets: Sequence[Target] | None,
    status: str,
    checks: Sequence[CheckResult],
    output_path: str | None,
    now: datetime,
) -> None:
    if status not in (FAILED, CANCELED):
        raise StoreError(f"finalize_failure takes status FAILED or CANCELED, not {status!r}.")
    lock_event_log(conn)
    targets = run_targets(conn, run_id) if failed_targets is None else unique_targets(failed_targets)
    _end_run(
        conn, statements(conn).update_live, run_id, "be finalized",
        {
            "status": status, "ended_at": now, "error": error, "error_cell": error_cell, "error_source": error_source,
            "output_path": output_path, "checks": codec.checks_json(checks),
        },
    )
    _mark_failed(conn, run_id, targets, status=status, error=error, checks=checks, now=now)
    _release_locks(conn, run_id)
    kind = EV_RUN_CANCELED if status == CANCELED else EV_RUN_FAILED
    append_event(conn, kind, run_id=run_id, now=now, payload={"error": _summary(error), "error_cell": error_cell})


def _summary(error: str) -> str:
    """First line of an error, short: event payloads repeat it per partition; the run row keeps it whole."""
    line = error.strip().splitlines()[0] if error.strip() else ""
    return line if len(line) <= 300 else line[:297] + "..."


def _mark_failed(
    conn: Connection,
    run_id: str,
    targets: Sequence[Target],
    *,
    status: str,
    error: str,
    checks: Sequence[CheckResult],
    now: datetime,
) -> None:
    """Record the targets' last attempt as ``status`` (FAILED or CANCELED). A target with a value keeps it: a
    failed or canceled attempt does not take away what an earlier run made (statements._mark_failed)."""
    if not targets:
        return
    st = statements(conn)
    conn.execute(
        st.mark_failed,
        [
            {"asset": a, "partition": p, "materialization_id": None, "code_version": None, "deps_signature": None,
             "data_version": None, "data_seq": 0, "inputs_seq": 0, "last_status": status, "last_run_id": run_id,
             "materialized_at": None}
            for a, p in targets
        ],
    )
    payload = codec.dumps({"error": _summary(error), "checks": [[c.expr, c.passed, c.detail] for c in checks]})
    kind = EV_PARTITION_CANCELED if status == CANCELED else EV_PARTITION_FAILED
    conn.execute(
        st.insert_event,
        [
            {"kind": kind, "run_id": run_id, "asset": a, "partition": p, "timestamp": now, "payload": payload}
            for a, p in targets
        ],
    )


def reap_stale_runs(conn: Connection, *, timeout_s: float, now: datetime) -> list[str]:
    """Fail every RUNNING run whose last sign of life is older than ``timeout_s``; return their ids."""
    lock_event_log(conn)
    cutoff = now - timedelta(seconds=timeout_s)
    last_seen = sa.func.coalesce(runs.c.heartbeat_at, runs.c.started_at)
    stale = conn.execute(
        sa.select(runs.c.run_id, runs.c.heartbeat_at, runs.c.started_at)
        .where(runs.c.status.in_(LIVE_STATUSES), last_seen < cutoff)
        .order_by(runs.c.started_at, runs.c.run_id)
    ).all()
    for run_id, heartbeat_at, started_at in stale:
        since = f"no heartbeat since {heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if heartbeat_at else (
            f"no heartbeat since it started at {started_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        finalize_failure(
            conn, run_id,
            error=f"heartbeat lost: {since} (timeout {timeout_s:g} s); the process running it probably died",
            error_cell=None, error_source=None, failed_targets=None, status=FAILED, checks=(), output_path=None,
            now=now,
        )
    return [r.run_id for r in stale]


# -- events ---------------------------------------------------------------------------------------------------------


def append_event(
    conn: Connection,
    kind: str,
    *,
    run_id: str | None,
    now: datetime,
    payload: dict[str, Any],
    asset: str | None = None,
    partition: str | None = None,
) -> None:
    lock_event_log(conn)
    conn.execute(
        statements(conn).insert_event,
        {"kind": kind, "run_id": run_id, "asset": asset, "partition": partition, "timestamp": now,
         "payload": codec.dumps(payload)},
    )
