"""Follow the store's event log from a background thread and hand batches of events to a callback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def make_follower(store: Any, *, after: int) -> Any:
    """The store's own follower (correct when transactions commit out of id order) when this checkout has it."""
    try:
        from notebook_orch.store.follow import EventFollower
    except ImportError:
        return _CursorFollower(store, after=after)
    return EventFollower(store, after=after)


def wait_for_events(store: Any, follower: Any, timeout: float) -> None:
    """Block until the store has an event after the follower's cursor or ``timeout`` passes (a plain sleep for a
    store that cannot wait): a live widget wakes at once on a new event and otherwise ticks for run progress."""
    wait = getattr(store, "wait_for_events", None)
    cursor = getattr(follower, "cursor", None)
    if wait is None or cursor is None:
        time.sleep(timeout)
    else:
        wait(cursor, timeout=timeout)


def read_fresh(project: Any) -> tuple[Any, Any]:
    """The graph and status as the notebooks on disk say now, read through a Project of the widget's own: the
    kernel's Project belongs to the kernel's thread, and a live widget reloads from its background thread."""
    from notebook_orch.project import Project

    fresh = Project(config=project.config)
    try:
        return fresh.graph, fresh.status()
    finally:
        fresh.close()


class _CursorFollower:
    """Fallback: events after a cursor. May miss an event whose transaction commits after a later one."""

    def __init__(self, store: Any, *, after: int) -> None:
        self.store = store
        self.cursor = after

    def poll(self, limit: int = 1000) -> list[Any]:
        events = self.store.events_after(self.cursor, limit=limit)
        if events:
            self.cursor = events[-1].id
        return events


class LiveLoop:
    """Calls ``tick()`` every ``interval_s`` in a daemon thread until ``stop()``; an error stops nothing but is kept
    (``last_error``) so one bad read does not end live updates."""

    def __init__(self, tick: Callable[[], None], *, interval_s: float = 0.25,
                 wait: Callable[[float], object] | None = None) -> None:
        self.tick = tick
        self.interval_s = interval_s
        self.wait = wait  # returns early when there is something new (the store's wait_for_events)
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nbo-lineage-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.wait is not None:
                    self.wait(self.interval_s)
                else:
                    self._stop.wait(self.interval_s)
                if self._stop.is_set():
                    break
                self.tick()
            except Exception as exc:  # noqa: BLE001 - kept for the panel; the loop goes on
                self.last_error = exc
                self._stop.wait(self.interval_s)  # a failing read must not spin

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()
