"""Following the event log: every committed event exactly once, in id order, whatever order transactions commit in.

Event ids come from an autoincrement column (a sequence on PostgreSQL). A transaction takes its id when it inserts
and becomes visible when it commits, so a follower that reads "id > cursor" can see id 12 before id 11 commits —
and a plain cursor would then skip 11 forever. On SQLite writers are serialized and ids commit in order; on
PostgreSQL they need not. So the follower keeps the ids it has not seen below the newest one it has seen (the
*gaps*) and asks for them again on every poll. A gap that fills is delivered late (its event has the id it has; the
follower delivers by commit, which is what a follower can know); a gap still empty after ``gap_timeout_s`` is a
rolled-back transaction (or an id the sequence skipped) and is forgotten.

The cursor (``.cursor``) is the highest id delivered with no open gap below it: persisting it and resuming
from it delivers nothing twice and loses nothing that committed since.

The store itself now hands out event ids in commit order on PostgreSQL too (store/event_log.py: an advisory lock
serializes the transactions that append events), so there a gap is always a rolled-back transaction; the gap
re-reading stays as the safety net for any writer that bypasses the store's write functions.
``wait()`` sleeps in ``store.wait_for_events``: woken by LISTEN/NOTIFY on PostgreSQL, a cheap poll on SQLite.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notebook_orch.store.metadata_store import MetadataStore
    from notebook_orch.store.records import EventRecord

GAP_TIMEOUT_S = 60.0  # longer than any transaction of ours stays open between taking an event id and committing


class EventFollower:
    """Deliver each committed event once. ``poll()`` returns what is new; ``wait()`` blocks until something is."""

    def __init__(self, store: MetadataStore, *, after: int = 0, gap_timeout_s: float = GAP_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._high = after  # the highest id seen
        self._gaps: dict[int, float] = {}  # id not seen below _high -> when it was first missed
        self._gap_timeout = gap_timeout_s
        self._clock = clock

    @property
    def cursor(self) -> int:
        """Resume point: every event with an id up to here was delivered (or its transaction never committed)."""
        return min(self._gaps, default=self._high + 1) - 1

    def poll(self, *, limit: int = 1000) -> list[EventRecord]:
        """The committed events not delivered yet: filled gaps first, then what is newer, in id order each."""
        out: list[EventRecord] = []
        if self._gaps:
            for event in self._store.events_by_id(self._gaps):
                self._gaps.pop(event.id, None)
                out.append(event)
            now = self._clock()
            for gap in [g for g, since in self._gaps.items() if now - since > self._gap_timeout]:
                del self._gaps[gap]  # rolled back, or an id the sequence skipped
        fresh = self._store.events_after(self._high, limit=limit)
        if fresh:
            now = self._clock()
            expected = self._high + 1
            for event in fresh:
                for missing in range(expected, event.id):
                    self._gaps.setdefault(missing, now)
                expected = event.id + 1
            self._high = fresh[-1].id
            out.extend(fresh)
        return out

    def wait(self, timeout_s: float, *, interval_s: float = 0.1, limit: int = 1000) -> list[EventRecord]:
        """Return new events as soon as there are some, or an empty list after ``timeout_s``.

        Between polls it blocks in the store's ``wait_for_events`` (woken by the next commit); while gaps are open
        it polls at least every ``interval_s`` to re-read them.
        """
        deadline = self._clock() + timeout_s
        while True:
            events = self.poll(limit=limit)
            left = deadline - self._clock()
            if events or left <= 0:
                return events
            step = min(left, interval_s) if self._gaps else left
            waiter = getattr(self._store, "wait_for_events", None)
            if waiter is None:  # a store double without the hook
                time.sleep(min(interval_s, left))
            else:
                waiter(self._high, timeout=step)


__all__ = ["EventFollower", "GAP_TIMEOUT_S"]
