"""The scheduler's tables: schedules, ticks, the daemon's lease and cursor, and pending joins.

Reached as ``store.scheduling`` (a ``SchedulingStore`` over the same engine). Every method is one transaction and
hands out frozen records. The two guarantees the daemon rests on live here:

- a tick is inserted once: ``(schedule, tick_at)`` is unique, so of two daemons (or a restarted one) that try to
  record the same tick, exactly one gets a ``TickRecord`` back and starts its runs;
- the lease is taken with one conditional UPDATE (``holder = me OR expires_at < now``), atomic on both backends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from notebook_orch.errors import StoreError
from notebook_orch.store.ids import utc_naive
from notebook_orch.store.schema import (
    auto_pauses,
    events,
    pending_joins,
    schedule_ticks,
    scheduler_cursor,
    scheduler_lease,
    schedules,
)

if TYPE_CHECKING:
    from notebook_orch.store.metadata_store import MetadataStore

TICK_STATUSES = ("STARTED", "SUBMITTED", "SKIPPED", "FAILED")
LEASE = "scheduler"


class ScheduleExists(StoreError):
    """A schedule of that name exists already."""


class UnknownSchedule(StoreError):
    """No schedule has that name."""


@dataclass(frozen=True)
class ScheduleRecord:
    name: str
    cron: str
    selection: str
    partition_rule: str
    params: Mapping[str, str]
    timezone: str
    catchup: str
    paused: bool
    origin: str
    created_at: datetime
    active_since: datetime


@dataclass(frozen=True)
class TickRecord:
    id: int
    schedule: str
    tick_at: datetime  # naive UTC
    partition: str | None
    status: str
    run_ids: tuple[str, ...]
    message: str | None
    created_at: datetime
    params: Mapping[str, str] | None = None  # the schedule's --param at tick time (None: recorded before 0009)


@dataclass(frozen=True)
class AutoPauseRecord:
    """Automation of one asset paused, or resumed after ``after_event`` (events up to it reach nothing for it)."""

    asset: str
    paused: bool
    changed_at: datetime
    after_event: int | None


def _schedule(row: sa.Row) -> ScheduleRecord:
    m = row._mapping
    return ScheduleRecord(m["name"], m["cron"], m["selection"], m["partition_rule"], json.loads(m["params"]),
                          m["timezone"], m["catchup"], bool(m["paused"]), m["origin"], m["created_at"],
                          m["active_since"])


def _tick(row: sa.Row) -> TickRecord:
    m = row._mapping
    return TickRecord(m["id"], m["schedule"], m["tick_at"], m["partition"], m["status"],
                      tuple(json.loads(m["run_ids"])), m["message"], m["created_at"],
                      json.loads(m["params"]) if m["params"] is not None else None)


class SchedulingStore:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- schedules ----------------------------------------------------------------------------------------------
    def add_schedule(
        self, *, name: str, cron: str, selection: str, partition_rule: str = "latest",
        params: Mapping[str, str] | None = None, timezone: str = "UTC", catchup: str = "latest",
        origin: str = "cli", replace: bool = False, now: datetime | None = None,
    ) -> ScheduleRecord:
        """Insert a schedule; ``replace`` updates one of the same name (its paused state and history stay)."""
        now = utc_naive(now)
        values = {"cron": cron, "selection": selection, "partition_rule": partition_rule,
                  "params": json.dumps(dict(params or {}), sort_keys=True), "timezone": timezone, "catchup": catchup,
                  "origin": origin}
        with self._store._write(f"add schedule {name!r}") as conn:
            existing = conn.execute(sa.select(schedules.c.name).where(schedules.c.name == name)).first()
            if existing is not None and not replace:
                raise ScheduleExists(
                    f"A schedule named {name!r} exists already; delete it first (nbo schedule delete {name}) "
                    "or pick another name."
                )
            if existing is None:
                conn.execute(schedules.insert().values(name=name, paused=False, created_at=now, active_since=now,
                                                       **values))
            else:
                conn.execute(schedules.update().where(schedules.c.name == name).values(**values))
            return _schedule(conn.execute(sa.select(schedules).where(schedules.c.name == name)).one())

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        with self._store._read() as conn:
            row = conn.execute(sa.select(schedules).where(schedules.c.name == name)).first()
        return _schedule(row) if row is not None else None

    def list_schedules(self) -> list[ScheduleRecord]:
        with self._store._read() as conn:
            return [_schedule(r) for r in conn.execute(sa.select(schedules).order_by(schedules.c.name))]

    def _require(self, conn: sa.Connection, name: str) -> None:
        if conn.execute(sa.select(schedules.c.name).where(schedules.c.name == name)).first() is None:
            from notebook_orch.errors import close_matches

            known = [r[0] for r in conn.execute(sa.select(schedules.c.name))]
            raise UnknownSchedule(f"No schedule is named {name!r}; `nbo schedule list` shows them."
                                  + close_matches(name, known))

    def set_paused(self, name: str, paused: bool, *, now: datetime | None = None) -> ScheduleRecord:
        """Pause or resume. Resuming restarts catch-up from now: ticks missed while paused never fire."""
        with self._store._write(f"{'pause' if paused else 'resume'} schedule {name!r}") as conn:
            self._require(conn, name)
            values: dict[str, object] = {"paused": paused}
            if not paused:
                values["active_since"] = utc_naive(now)
            conn.execute(schedules.update().where(schedules.c.name == name).values(**values))
            return _schedule(conn.execute(sa.select(schedules).where(schedules.c.name == name)).one())

    def delete_schedule(self, name: str) -> None:
        """Delete the schedule; its tick history stays (``history`` still shows what ran)."""
        with self._store._write(f"delete schedule {name!r}") as conn:
            self._require(conn, name)
            conn.execute(schedules.delete().where(schedules.c.name == name))

    # -- ticks ----------------------------------------------------------------------------------------------------
    def record_tick(
        self, schedule: str, tick_at: datetime, *, partition: str | None, status: str = "STARTED",
        message: str | None = None, now: datetime | None = None, params: Mapping[str, str] | None = None,
    ) -> TickRecord | None:
        """Insert the tick; None when it is recorded already (another daemon, or this one before a restart).
        ``params``: the schedule's ``--param`` now, kept with the tick for every attempt of its runs."""
        if status not in TICK_STATUSES:
            raise ValueError(f"tick status {status!r} is not one of {TICK_STATUSES}")
        params = dict(params or {})
        row = {"schedule": schedule, "tick_at": utc_naive(tick_at), "partition": partition, "status": status,
               "run_ids": "[]", "message": message, "created_at": utc_naive(now),
               "params": json.dumps(params, sort_keys=True)}
        try:
            with self._store._write(f"record a tick of {schedule!r}") as conn:
                if conn.execute(sa.select(schedule_ticks.c.id).where(
                        schedule_ticks.c.schedule == schedule, schedule_ticks.c.tick_at == row["tick_at"])).first():
                    return None
                tick_id = conn.execute(schedule_ticks.insert().values(**row)).inserted_primary_key[0]
        except StoreError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return None  # a concurrent daemon inserted it between our check and our insert (PostgreSQL)
            raise
        return TickRecord(tick_id, schedule, row["tick_at"], partition, status, (), message, row["created_at"],
                          params)

    def update_tick(self, tick_id: int, *, status: str, run_ids: Iterable[str] = (),
                    message: str | None = None) -> None:
        if status not in TICK_STATUSES:
            raise ValueError(f"tick status {status!r} is not one of {TICK_STATUSES}")
        with self._store._write("update a tick") as conn:
            conn.execute(schedule_ticks.update().where(schedule_ticks.c.id == tick_id).values(
                status=status, run_ids=json.dumps(list(run_ids)), message=message))

    def add_tick_runs(self, tick_id: int, run_ids: Iterable[str]) -> None:
        """Link more runs to a tick (the daemon's retries of its runs), keeping its status and message: a retry of
        a retry is found through the tick again, with its schedule's parameters."""
        with self._store._write("link runs to a tick") as conn:
            have = conn.execute(sa.select(schedule_ticks.c.run_ids).where(schedule_ticks.c.id == tick_id)).scalar()
            if have is None:
                return
            ids = list(dict.fromkeys([*json.loads(have), *run_ids]))
            conn.execute(schedule_ticks.update().where(schedule_ticks.c.id == tick_id).values(run_ids=json.dumps(ids)))

    def ticks(self, schedule: str | None = None, *, limit: int = 50, status: str | None = None) -> list[TickRecord]:
        """Newest first."""
        q = sa.select(schedule_ticks).order_by(schedule_ticks.c.tick_at.desc(), schedule_ticks.c.id.desc())
        if schedule is not None:
            q = q.where(schedule_ticks.c.schedule == schedule)
        if status is not None:
            q = q.where(schedule_ticks.c.status == status)
        with self._store._read() as conn:
            return [_tick(r) for r in conn.execute(q.limit(limit))]

    def last_tick_at(self, schedule: str) -> datetime | None:
        with self._store._read() as conn:
            return conn.execute(sa.select(sa.func.max(schedule_ticks.c.tick_at)).where(
                schedule_ticks.c.schedule == schedule)).scalar()

    # -- the daemon's lease and cursor ---------------------------------------------------------------------
    def acquire_lease(self, holder: str, *, ttl_s: float, now: datetime | None = None) -> bool:
        """Take or renew the lease for ``ttl_s`` seconds; False while another holder's lease has not expired."""
        from datetime import timedelta

        now = utc_naive(now)
        expires = now + timedelta(seconds=ttl_s)
        try:
            with self._store._write("take the scheduler lease") as conn:
                done = conn.execute(scheduler_lease.update().where(
                    scheduler_lease.c.name == LEASE,
                    sa.or_(scheduler_lease.c.holder == holder, scheduler_lease.c.expires_at < now),
                ).values(holder=holder, expires_at=expires)).rowcount
                if done:
                    return True
                if conn.execute(sa.select(scheduler_lease.c.name).where(scheduler_lease.c.name == LEASE)).first():
                    return False
                conn.execute(scheduler_lease.insert().values(name=LEASE, holder=holder, expires_at=expires))
                return True
        except StoreError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return False  # another daemon inserted the first lease row at the same moment
            raise

    def release_lease(self, holder: str) -> None:
        """Give the lease up at once (a clean stop), so a standby takes over without waiting for expiry."""
        with self._store._write("release the scheduler lease") as conn:
            conn.execute(scheduler_lease.update().where(
                scheduler_lease.c.name == LEASE, scheduler_lease.c.holder == holder,
            ).values(expires_at=datetime(1970, 1, 1)))

    def lease(self) -> tuple[str, datetime] | None:
        with self._store._read() as conn:
            row = conn.execute(sa.select(scheduler_lease.c.holder, scheduler_lease.c.expires_at).where(
                scheduler_lease.c.name == LEASE)).first()
        return (row[0], row[1]) if row else None

    def cursor(self, name: str = LEASE) -> int | None:
        with self._store._read() as conn:
            return conn.execute(sa.select(scheduler_cursor.c.event_id).where(scheduler_cursor.c.name == name)).scalar()

    def save_cursor(self, event_id: int, *, name: str = LEASE,
                    add_joins: Iterable[tuple[str, str]] = (), now: datetime | None = None) -> None:
        """Persist the cursor together with the joins its events reached: one transaction, so a crash either
        keeps both or re-reads those events."""
        now = utc_naive(now)
        with self._store._write("save the scheduler cursor") as conn:
            if conn.execute(scheduler_cursor.update().where(scheduler_cursor.c.name == name).values(
                    event_id=event_id)).rowcount == 0:
                conn.execute(scheduler_cursor.insert().values(name=name, event_id=event_id))
            _add_joins(conn, add_joins, now)

    # -- automation paused per asset (nbo auto pause/resume) ---------------------------------------------------
    def pause_auto(self, asset: str, *, now: datetime | None = None) -> AutoPauseRecord:
        """Pause: the daemon starts nothing for ``asset`` and forgets its pending joins (a resume must not start
        what waited from before). Pausing a paused asset changes nothing."""
        now = utc_naive(now)
        with self._store._write(f"pause automation of {asset!r}") as conn:
            have = conn.execute(sa.select(auto_pauses).where(auto_pauses.c.asset == asset)).first()
            if have is not None and have._mapping["paused"]:
                return _pause(have)
            row = {"paused": True, "changed_at": now, "after_event": None}
            if have is None:
                conn.execute(auto_pauses.insert().values(asset=asset, **row))
            else:
                conn.execute(auto_pauses.update().where(auto_pauses.c.asset == asset).values(**row))
            conn.execute(pending_joins.delete().where(pending_joins.c.asset == asset))
            return AutoPauseRecord(asset, True, now, None)

    def resume_auto(self, asset: str, *, now: datetime | None = None) -> AutoPauseRecord | None:
        """Resume from the newest event: what changed while paused reaches nothing (no flood). None when
        ``asset`` was not paused (nothing changes)."""
        now = utc_naive(now)
        with self._store._write(f"resume automation of {asset!r}") as conn:
            have = conn.execute(sa.select(auto_pauses).where(auto_pauses.c.asset == asset)).first()
            if have is None or not have._mapping["paused"]:
                return None
            newest = conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0
            conn.execute(auto_pauses.update().where(auto_pauses.c.asset == asset).values(
                paused=False, changed_at=now, after_event=newest))
            return AutoPauseRecord(asset, False, now, newest)

    def auto_pauses(self) -> dict[str, AutoPauseRecord]:
        """Every asset paused or resumed once, by name."""
        with self._store._read() as conn:
            return {r._mapping["asset"]: _pause(r) for r in conn.execute(sa.select(auto_pauses))}

    # -- pending joins ----------------------------------------------------------------------------------------
    def add_pending(self, keys: Iterable[tuple[str, str]], *, now: datetime | None = None) -> None:
        with self._store._write("add pending joins") as conn:
            _add_joins(conn, keys, utc_naive(now))

    def pending(self, *, limit: int | None = None) -> list[tuple[str, str]]:
        """Oldest first."""
        q = sa.select(pending_joins.c.asset, pending_joins.c.partition).order_by(
            pending_joins.c.since, pending_joins.c.asset, pending_joins.c.partition)
        with self._store._read() as conn:
            return [(r[0], r[1]) for r in conn.execute(q.limit(limit) if limit else q)]

    def remove_pending(self, keys: Iterable[tuple[str, str]]) -> None:
        keys = list(keys)
        if not keys:
            return
        with self._store._write("remove pending joins") as conn:
            for chunk in range(0, len(keys), 400):
                conn.execute(pending_joins.delete().where(
                    sa.tuple_(pending_joins.c.asset, pending_joins.c.partition).in_(keys[chunk:chunk + 400])))


def _pause(row: sa.Row) -> AutoPauseRecord:
    m = row._mapping
    return AutoPauseRecord(m["asset"], bool(m["paused"]), m["changed_at"], m["after_event"])


def _add_joins(conn: sa.Connection, keys: Iterable[tuple[str, str]], now: datetime) -> None:
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return
    have: set[tuple[str, str]] = set()
    for chunk in range(0, len(wanted), 400):
        have.update((r[0], r[1]) for r in conn.execute(
            sa.select(pending_joins.c.asset, pending_joins.c.partition).where(
                sa.tuple_(pending_joins.c.asset, pending_joins.c.partition).in_(wanted[chunk:chunk + 400]))))
    new = [{"asset": a, "partition": p, "since": now} for a, p in wanted if (a, p) not in have]
    if new:
        conn.execute(pending_joins.insert(), new)


__all__ = ["AutoPauseRecord", "ScheduleExists", "ScheduleRecord", "SchedulingStore", "TickRecord", "UnknownSchedule"]
