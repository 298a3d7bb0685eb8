"""``MetadataStore``: the store's public face. Every method is one transaction and hands out frozen records."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from notebook_orch.errors import PartitionLocked, StoreError
from notebook_orch.store import engine as engine_mod
from notebook_orch.store import reads, writes
from notebook_orch.store import snapshot as snapshot_mod
from notebook_orch.store.constants import CACHE_WAIT_MS
from notebook_orch.store.event_log import EventWaiter
from notebook_orch.store.file_guard import FileGuard
from notebook_orch.store.ids import new_run_id, utc_naive
from notebook_orch.store.records import (
    FAILED,
    WAITING,
    CheckResult,
    EventRecord,
    MaterializationRecord,
    NewMaterialization,
    PoolWait,
    RunRecord,
    StoreSnapshot,
)

if TYPE_CHECKING:
    from notebook_orch.core.integrity import StoreFacts
    from notebook_orch.store.scheduling import SchedulingStore
    from notebook_orch.store.sla import SlaStore

log = logging.getLogger("notebook_orch.store")


def open_store(url: str) -> MetadataStore:
    """Open (creating if new) the metadata store at a SQLAlchemy ``url``, e.g. ``sqlite:///.notebook_orch/store.db``.

    Raises ``StoreOpenError`` when the URL cannot be opened and ``SchemaVersionError`` when a newer notebook_orch
    wrote it; either way nothing on disk changes.
    """
    return MetadataStore(engine_mod.create_store_engine(url), url)


class MetadataStore:
    """Runs, materializations, the latest state per (asset, partition), partition locks and the event log.

    Build it with ``open_store``. Thread-safe (the engine pools connections); safe to use after ``fork``
    (the child opens its own connections). Options are keyword-only; ``now`` defaults to the current UTC time
    and exists so callers and tests control time.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self._pid = os.getpid()
        self._waiter = EventWaiter(engine)
        self.url = url
        found = engine_mod.sqlite_file(engine.url)
        # the process may change folder later
        self._guard = None if found is None or not found.exists() else FileGuard(found.absolute())
        # Counts the files this store has used: a follower of the event log compares it to notice a restore (the
        # restored file's events may end before the cursor it holds).
        self.file_generation = 0

    # -- plumbing -------------------------------------------------------------------------------------------------

    def _live_engine(self) -> Engine:
        if os.getpid() != self._pid:
            # A forked child must not use the parent's connections: drop them without closing the parent's.
            self._engine.dispose(close=False)
            self._waiter.forget()
            self._pid = os.getpid()
        if self._guard is not None and self._guard.state is not None:
            self._check_file()
        return self._engine

    def _check_file(self) -> None:
        """The SQLite file deleted, replaced, overwritten in place or found damaged under this open store
        (store/file_guard.py): refuse the operation with a clear error while it is; adopt a replacement once it
        opens as a store (a restore) and go on, saying so once. Failing the first operation on a restored file
        instead lost what a background writer was doing then (a daemon's triggered run never started)."""
        assert self._guard is not None
        changed = self._guard.check()
        if changed is None:
            return
        self._engine.dispose()
        self._waiter.forget()
        engine_mod.ensure_schema(self._engine, self._shown)  # StoreDamaged/StoreOpenError until a good file is back
        self.file_generation += 1
        how = "was restored after it was found damaged" if changed == "restored" else (
            "was replaced while this process was using it (restored from a backup, or another file copied over it)")
        log.warning("The store file %s %s; this process uses the new file from now on. Check it against the value "
                    "folders with nbo doctor: runs that ended meanwhile could not be recorded in it.",
                    self._guard.path, how)

    def _damage_found(self, exc: sa.exc.DBAPIError) -> None:
        """SQLite met a damaged page: check the whole file now, so the error names the file and what to do, and
        this process and the others stop writing to it (file_guard.py); returns when the file checks healthy."""
        if self._guard is not None and self._guard.state is not None and engine_mod.unreadable_file(exc):
            self._guard.deep_check(now=True)

    def check_file(self) -> None:
        """Raise ``StoreError`` if the store's file was deleted, replaced, overwritten or damaged since it was
        opened, including SQLite's ``quick_check`` when one is due (at most every few seconds, and ~1 % of the
        time at most). The scheduler daemon calls this every pass; other writers get the cheap checks on every
        operation. A no-op for other backends."""
        self._live_engine()
        if self._guard is not None and self._guard.state is not None:
            self._guard.deep_check()

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        try:
            with engine_mod.write_txn(self._live_engine()) as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            self._damage_found(exc)
            raise StoreError(
                f"The metadata store at {self._shown} could not {action}: {type(exc.orig).__name__}: {exc.orig}. "
                "Nothing was written; retry, and if the database is locked check for a process holding a long "
                "write transaction."
            ) from exc

    @contextmanager
    def _read(self, *, consistent: bool = False) -> Iterator[Connection]:
        try:
            with engine_mod.read_txn(self._live_engine(), consistent=consistent) as conn:
                yield conn
        except (ValueError, TypeError, KeyError) as exc:
            # Rows are decoded as they are read (dates, JSON lists, enums): a row that does not decode was written
            # by something else than this store, or the file is damaged. Reads change nothing, so say so plainly.
            from notebook_orch.store.migrate import damaged_rows

            raise damaged_rows(self._shown, exc) from exc
        except (sa.exc.DBAPIError, self._driver_error) as exc:
            # The snapshot's SQL runs on the driver's own cursor (state_read.py): its errors arrive unwrapped.
            self._damage_found(exc)
            orig = getattr(exc, "orig", exc)
            raise StoreError(
                f"The metadata store at {self._shown} could not be read: {type(orig).__name__}: {orig}. "
                "Nothing was changed. If the file is damaged (\"malformed\", \"not a database\"), stop notebook_orch, "
                "restore it from a backup and run nbo doctor; if it is locked, retry."
            ) from exc

    @property
    def _driver_error(self) -> type[Exception]:
        return self._engine.dialect.loaded_dbapi.Error

    @property
    def _shown(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection. The store may not be used afterwards."""
        self._waiter.close()
        self._engine.dispose()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MetadataStore({self._shown!r})"

    @property
    def scheduling(self) -> SchedulingStore:
        """Schedules, ticks, the scheduler daemon's lease and cursor, pending joins (store/scheduling.py)."""
        from notebook_orch.store.scheduling import SchedulingStore

        return SchedulingStore(self)

    @property
    def sla(self) -> SlaStore:
        """SLA verdicts and watermarks, the alert queue, and the reads of ``nbo metrics`` (store/sla.py)."""
        from notebook_orch.store.sla import SlaStore

        return SlaStore(self)

    # -- runs -----------------------------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        notebook: str | None,
        targets: Sequence[tuple[str, str]],
        kind: str,
        run_id: str | None = None,
        attempt: int = 1,
        now: datetime | None = None,
        pools: Mapping[str, int] | None = None,
    ) -> RunRecord:
        """Insert a RUNNING run, lock each (asset, partition) target and append RUN_STARTED — all or nothing.

        ``pools`` (pool -> limit, core/pools.run_pools): also take a slot in each; when any is full the run is
        recorded WAITING (with RUN_WAITING) still holding its targets, and ``take_pool_slots`` starts it later.
        Raises ``PartitionLocked`` naming the holder when another run holds any target.
        """
        run_id = run_id or new_run_id()
        wanted = writes.unique_targets(targets)
        try:
            with self._write("start a run") as conn:
                return writes.start_run(
                    conn, run_id=run_id, notebook=notebook, targets=wanted, kind=kind, attempt=attempt,
                    now=utc_naive(now), pools=dict(pools) if pools else None,
                )
        except StoreError as exc:
            if isinstance(exc, PartitionLocked) or not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
            # A concurrent start took a lock between our check and our insert (PostgreSQL), or the id is taken.
            with self._read() as conn:
                held = writes.lock_holders(conn, wanted)
                exists = reads.get_run(conn, run_id) is not None
            if held:
                (asset, partition), holder = next(iter(held.items()))
                raise PartitionLocked(asset, partition, holder) from exc
            if exists:
                raise StoreError(f"Run id {run_id} is already taken; omit run_id to get a fresh one.") from exc
            raise

    def take_pool_slots(self, run_id: str, pools: Mapping[str, int], *, now: datetime | None = None) -> str:
        """Move a WAITING run to RUNNING when every pool of ``pools`` has a free slot (taking them), in one
        transaction; returns its status afterwards (WAITING: still full; anything else: it ended meanwhile).

        A read looks first, so a waiter polling a full pool does not queue for the write lock each time."""
        wanted = dict(pools)
        with self._read() as conn:
            run = reads.get_run(conn, run_id)
            if run is not None and run.status == WAITING and writes.blocked_pools(
                    conn, wanted, ticket=writes.ticket_of(conn, run_id)):
                return WAITING
        with self._write("give the run its pool slots") as conn:
            return writes.take_pool_slots(conn, run_id, wanted, now=utc_naive(now))

    def blocked_pools(self, run_id: str, pools: Mapping[str, int]) -> list[dict[str, Any]]:
        """The pools among ``pools`` that run ``run_id`` cannot take a slot in now: ``[{"pool", "limit", "in_use",
        "ahead"}]`` (``ahead``: runs queued before it there). A read: changes nothing."""
        with self._read() as conn:
            return writes.blocked_pools(conn, dict(pools), ticket=writes.ticket_of(conn, run_id))

    def pool_waiters(self) -> list[PoolWait]:
        """The runs WAITING for a pool slot, first in the queue first: each pool it waits in, since when, and how
        many runs wait ahead of it there (``PoolWait``). A read: changes nothing."""
        with self._read() as conn:
            return reads.pool_waiters(conn)

    def pool_usage(self) -> dict[str, list[str]]:
        """Pool -> the runs holding a slot in it now (only pools in use)."""
        with self._read() as conn:
            return reads.pool_holders(conn)

    def heartbeat(self, run_id: str, *, now: datetime | None = None) -> None:
        """Record that ``run_id`` is alive. Raises ``StoreError`` if it is no longer RUNNING (e.g. it was reaped)."""
        with self._write("record a heartbeat") as conn:
            writes.heartbeat(conn, run_id, now=utc_naive(now))

    def finalize_success(
        self,
        run_id: str,
        materializations: Sequence[NewMaterialization],
        *,
        output_path: str | None = None,
        now: datetime | None = None,
    ) -> list[MaterializationRecord]:
        """Commit a run's materializations and its SUCCESS in one transaction, release its locks, append events.

        Raises ``StoreError`` (and writes nothing) if the run is not RUNNING.
        """
        with self._write("finalize the run") as conn:
            return writes.finalize_success(conn, run_id, materializations, output_path=output_path, now=utc_naive(now))

    def finalize_failure(
        self,
        run_id: str,
        *,
        error: str,
        error_cell: int | None = None,
        error_source: str | None = None,
        failed_targets: Sequence[tuple[str, str]] | None = None,
        status: str = FAILED,
        checks: Sequence[CheckResult] = (),
        output_path: str | None = None,
        now: datetime | None = None,
    ) -> RunRecord:
        """Mark a run FAILED or CANCELED and its targets (default: all it holds) likewise, release its locks.

        A target's last attempt becomes FAILED or CANCELED; a value it already had stays its value.

        Returns the run as stored. Raises ``StoreError`` (and writes nothing) if the run is not RUNNING.
        """
        with self._write("record the run's failure") as conn:
            writes.finalize_failure(
                conn, run_id, error=error, error_cell=error_cell, error_source=error_source,
                failed_targets=failed_targets, status=status, checks=checks, output_path=output_path,
                now=utc_naive(now),
            )
            record = reads.get_run(conn, run_id)
        assert record is not None
        return record

    def record_materializations(
        self, run_id: str, materializations: Sequence[NewMaterialization], *, now: datetime | None = None
    ) -> list[int]:
        """Bulk path (imports, benchmarks): record many materializations of ``run_id`` in one transaction.

        Updates partition_state and appends MATERIALIZED events like ``finalize_success`` but leaves the run's
        status and locks alone. Returns the new materialization ids in input order.
        """
        with self._write("record materializations") as conn:
            return writes.record_materializations(conn, run_id, materializations, now=utc_naive(now))

    def reap_stale_runs(self, *, timeout_s: float, now: datetime | None = None) -> list[RunRecord]:
        """Fail RUNNING (or WAITING) runs whose last heartbeat (or start, if none came) is older than ``timeout_s``
        seconds."""
        from notebook_orch.config import check_heartbeat_timeout

        # Zero or a negative timeout would presume every live run dead, including other processes' runs.
        check_heartbeat_timeout(timeout_s, where="reap_stale_runs(timeout_s=...)")
        with self._write("reap stale runs") as conn:
            reaped = writes.reap_stale_runs(conn, timeout_s=timeout_s, now=utc_naive(now))
            return reads.get_runs(conn, reaped)

    # -- reads ----------------------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            return reads.get_run(conn, run_id)

    def list_runs(
        self, *, limit: int = 50, status: str | None = None, asset: str | None = None, kind: str | None = None
    ) -> list[RunRecord]:
        """Runs newest first, optionally only those with ``status``, of ``kind``, or targeting ``asset``."""
        with self._read() as conn:
            return reads.list_runs(conn, limit=limit, status=status, asset=asset, kind=kind)

    def latest_materialization(self, asset: str, partition: str) -> MaterializationRecord | None:
        with self._read() as conn:
            return reads.latest_materialization(conn, asset, partition)

    def materializations(
        self, asset: str, partition: str | None = None, *, limit: int | None = None
    ) -> list[MaterializationRecord]:
        """An asset's materializations (of one partition, or all), newest first."""
        with self._read() as conn:
            return reads.materializations_of(conn, asset, partition, limit=limit)

    def materializations_by_id(self, ids: Iterable[int]) -> dict[int, MaterializationRecord]:
        with self._read() as conn:
            return reads.materializations_by_id(conn, ids)

    def consumed_versions(self, ids: Iterable[int]) -> dict[int, tuple[tuple[str, str, str], ...]]:
        """What each materialization read: its inputs' (asset, partition, data version). Staleness asks this only
        where an upstream sequence moved, to tell real changes from data that came back (A -> B -> A)."""
        with self._read() as conn:
            return reads.consumed_versions(conn, ids)
    def code_sources(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The normalized source kept for each ``(asset, code_version)`` in ``keys`` (those not kept are absent)."""
        with self._read() as conn:
            return reads.code_sources(conn, keys)

    def events_after(self, event_id: int, *, limit: int = 1000) -> list[EventRecord]:
        """Events with id greater than ``event_id``, oldest first (a follower passes the last id it saw).

        Ids follow commit order on every backend (event_log.py): once an id is returned, no smaller id can
        appear later, so a cursor of "the last id seen" never skips an event; a gap below it was rolled back.
        """
        with self._read() as conn:
            return reads.events_after(conn, event_id, limit=limit)

    def events_by_id(self, ids: Iterable[int]) -> list[EventRecord]:
        """The events among ``ids`` that exist (committed), oldest first: a follower re-reading gaps."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        with self._read() as conn:
            return reads.events_by_id(conn, wanted)

    def last_event_id(self) -> int:
        """The id of the newest event, 0 when there is none."""
        with self._read() as conn:
            return reads.last_event_id(conn)

    def wait_for_events(self, after: int, *, timeout: float) -> bool:
        """Block until an event with id greater than ``after`` is committed (True) or ``timeout`` seconds pass
        (False). Returns at once when there already is one.

        PostgreSQL wakes on LISTEN/NOTIFY (one extra connection per store, opened on first use); SQLite polls the
        newest event id, a primary-key lookup, backing off from 5 to 100 ms.
        """
        self._live_engine()
        try:
            return self._waiter.wait(after, timeout)
        except sa.exc.DBAPIError as exc:  # e.g. "malformed": the file changed under us; say it as a read would
            self._damage_found(exc)
            raise StoreError(
                f"The metadata store at {self._shown} could not be read while waiting for events: "
                f"{type(exc.orig).__name__}: {exc.orig}. Nothing was changed. If the file is damaged, stop "
                "notebook_orch, restore it from a backup and run nbo doctor."
            ) from exc

    def integrity_facts(self) -> StoreFacts:
        """What ``nbo doctor`` compares with the value folders (store/integrity.py), in one consistent read, with
        the database's own integrity check (SQLite ``quick_check``) in ``damage``."""
        from dataclasses import replace

        from notebook_orch.store import integrity

        with self._read(consistent=True) as conn:
            damage = integrity.database_damage(conn)
            return replace(integrity.read_facts(conn), damage=tuple(damage))

    def release_lock(self, asset: str, partition: str, run_id: str) -> bool:
        """Release ``run_id``'s lock on (asset, partition) if that run is not RUNNING (a lock left by a damaged or
        hand-edited store). True if a lock was released."""
        from notebook_orch.store import integrity

        with self._write("release a lock") as conn:
            return integrity.release_lock(conn, asset, partition, run_id)

    def running(self) -> dict[tuple[str, str], str]:
        """Which run holds each locked (asset, partition)."""
        with self._read() as conn:
            return reads.running(conn)

    def snapshot(self, *, keys: Iterable[tuple[str, str]] | None = None, use_cache: bool = True) -> StoreSnapshot:
        """One consistent read of every partition's latest state, the running locks and the last event id.

        ``keys`` limits the states to those (asset, partition) pairs (incremental refresh after events);
        ``running`` always lists every lock. ``use_cache=False`` reads every row from partition_state instead of
        reusing packed unchanged assets (same result, slower; see snapshot.py).
        """
        with self._read(consistent=True) as conn:
            result, update = snapshot_mod.take(conn, keys=None if keys is None else list(keys), use_cache=use_cache)
        if update is not None:
            try:
                # Best effort and brief: a busy database just means the next snapshot rereads those assets.
                with engine_mod.write_txn(self._live_engine(), wait_ms=CACHE_WAIT_MS) as conn:
                    snapshot_mod.write_cache(conn, update)
            except (sa.exc.DBAPIError, self._driver_error):  # the driver's own: state_read.write_cache
                pass
        return result
