"""The event log's ordering rule and its wake-up signal, per backend.

Rule: **event ids follow commit order.** Followers (store/follow.py, the snapshot cache) read ``id > cursor`` and
must never see id 12 committed while id 11 may still commit later.

- SQLite gives this for free: writers start with BEGIN IMMEDIATE, so one write transaction runs at a time.
- PostgreSQL sequences do not: two transactions can draw ids 11 and 12 and commit 12 first. Every transaction
  that appends events (or moves partition locks, see below) therefore first takes one transaction-level
  advisory lock, ``pg_advisory_xact_lock(EVENT_LOG_LOCK)``, held until it commits or rolls back. Ids are drawn
  under the lock, so they are handed out in commit order; an id that never appears was rolled back, and no
  later read will ever show it. Chosen over recording ``pg_current_xact_id()`` per event with a "safe horizon"
  (``xid < pg_snapshot_xmin``) because (1) every follower, including the snapshot cache's "no event for this
  asset after N means no change after N", stays as simple and as correct as on SQLite, (2) the horizon approach
  cannot tell a follower which ids below the horizon are still missing without a second per-event column and
  query, and (3) the cost is small: these transactions are a few milliseconds and were serialized on SQLite
  anyway (measured side by side in benchmarks/bench_scale.py). Heartbeats and snapshot-cache writes append no
  events and do not take the lock.
- The lock is taken at the START of those transactions, before any row is touched: a transaction never waits
  for it while holding row locks, so it cannot deadlock with another holder.
- The same lock makes the one-running-run rule race-free on PostgreSQL: ``start_run`` checks and inserts
  ``partition_locks`` under it (the table's primary key stays the backstop), exactly like SQLite's write lock.

Wake-up: on PostgreSQL the same statement sends ``NOTIFY notebook_orch_events`` (delivered at commit, collapsed
within a transaction), and ``EventWaiter`` LISTENs on a connection of its own. SQLite has no notifications; its
waiter polls ``max(events.id)`` (a primary-key lookup) with a short sleep.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# 'nbo_evnt' as a big-endian 64-bit integer: one fixed key in PostgreSQL's advisory-lock space.
EVENT_LOG_LOCK = int.from_bytes(b"nbo_evnt", "big")
CHANNEL = "notebook_orch_events"
_TAKEN = "notebook_orch_event_log_txn"
_LOCK_AND_NOTIFY = sa.text(f"SELECT pg_advisory_xact_lock({EVENT_LOG_LOCK}), pg_notify('{CHANNEL}', '')")
_LAST_ID = "SELECT COALESCE(MAX(id), 0) FROM events"


def lock_event_log(conn: Connection) -> None:
    """Take the event-log lock for the rest of ``conn``'s transaction (once per transaction; no-op on SQLite)."""
    if conn.dialect.name != "postgresql":
        return  # BEGIN IMMEDIATE already holds SQLite's one write lock
    txn = conn.get_transaction()
    if txn is not None and conn.info.get(_TAKEN) is txn:
        return
    conn.execute(_LOCK_AND_NOTIFY)
    conn.info[_TAKEN] = txn


def _stamp(files: tuple[str, ...]) -> tuple:
    out = []
    for path in files:
        try:
            st = os.stat(path)
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class EventWaiter:
    """Blocks until the event log has an event after a given id, or a timeout passes.

    PostgreSQL: LISTEN on a dedicated autocommit connection per waiting thread (opened on first use, reopened
    after a broken connection; a psycopg connection must not be shared by two threads waiting on it). SQLite:
    polls ``max(id)`` every few milliseconds, backing off to 100 ms.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._listeners: list[Any] = []
        self._lock = threading.Lock()

    def wait(self, after: int, timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 0.0)
        if self._engine.dialect.name == "postgresql":
            return self._wait_notified(after, deadline)
        return self._wait_polling(after, deadline)

    def _last_id(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.exec_driver_sql(_LAST_ID).scalar_one())

    def _wait_polling(self, after: int, deadline: float) -> bool:
        # A commit to a SQLite file changes its WAL's (or, without WAL, the file's) size or mtime: stat them (a
        # few microseconds) every few ms and query only when they changed — or each second anyway, in case a
        # write after a checkpoint left both the same. A process waiting at rest then costs ~1 query a second.
        files = self._files()
        pause = 0.005
        seen: tuple | None = None
        queried = 0.0
        while True:
            now = time.monotonic()
            stamp = _stamp(files) if files else None
            if stamp is None or stamp != seen or now - queried >= 1.0:
                seen, queried = stamp, now
                if self._last_id() > after:
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.02 if files else 0.1)

    def _files(self) -> tuple[str, ...]:
        database = self._engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return ()
        return (database, database + "-wal")

    def _wait_notified(self, after: int, deadline: float) -> bool:
        listener = self._listener()
        # LISTEN came first: an event committed after this check still sends us a notification.
        while True:
            if self._last_id() > after:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                for _ in listener.notifies(timeout=left, stop_after=1):
                    pass
            except Exception:  # a broken listener: open another, then check again
                self._drop(listener)
                listener = self._listener()

    def _listener(self) -> Any:
        listener = getattr(self._local, "listener", None)
        if listener is None or listener.closed:
            dialect = self._engine.dialect
            cargs, cparams = dialect.create_connect_args(self._engine.url)
            listener = dialect.loaded_dbapi.connect(*cargs, **cparams)
            listener.autocommit = True
            listener.execute(f"LISTEN {CHANNEL}")
            self._local.listener = listener
            with self._lock:
                self._listeners.append(listener)
        return listener

    def _drop(self, listener: Any) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
        self._local.listener = None
        try:
            listener.close()
        except Exception:
            pass

    def close(self) -> None:
        """Close every listening connection."""
        with self._lock:
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            try:
                listener.close()
            except Exception:
                pass
        self._local = threading.local()

    def forget(self) -> None:
        """In a forked child: drop the parent's listeners without touching their sockets."""
        with self._lock:
            self._listeners = []
        self._local = threading.local()
