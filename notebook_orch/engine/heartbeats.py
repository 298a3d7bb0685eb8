"""Heartbeats for interactive runs: one daemon thread per (store, interval) serves every cell of a kernel.

Without them a cell that runs longer than the heartbeat timeout would be reaped as dead by the next ``nbo status``
in a terminal, and its own finalize would then fail. A thread per cell cost ~1-2 ms of the ~5 ms an interactive
cell's bookkeeping may take, so the thread stays for one idle interval and serves the next cell too.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class Heartbeat:
    """Heartbeats for an interactive run while its cell runs.

    Without them a cell that runs longer than the heartbeat timeout would be reaped as dead by the next
    ``nbo status`` in a terminal, and its own finalize would then fail. One daemon thread per (store, interval)
    serves every run for the life of the kernel: starting and joining a thread per cell cost ~1-2 ms of the
    ~5 ms an interactive cell's bookkeeping may take.
    """

    _threads: dict[tuple[int, float], HeartbeatThread] = {}
    _lock = threading.Lock()

    def __init__(self, store: Any, run_id: str, *, interval_s: float) -> None:
        self._store, self._run_id = store, run_id
        self._interval = min(max(interval_s, 0.05), 30.0)
        # An in-memory SQLite store is one connection shared by every thread (and no other process can see it to
        # reap the run): a second thread's transactions would collide with the cell's.
        self._enabled = not _in_memory(getattr(store, "url", ""))

    def __enter__(self) -> Heartbeat:
        if self._enabled:
            key = (id(self._store), self._interval)
            with Heartbeat._lock:
                worker = Heartbeat._threads.get(key)
                if worker is None or not worker.is_alive():
                    worker = Heartbeat._threads[key] = HeartbeatThread(self._store, self._interval)
                    worker.start()
                worker.runs.add(self._run_id)
            self._worker = worker
        return self

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            self._worker.runs.discard(self._run_id)


class HeartbeatThread(threading.Thread):
    def __init__(self, store: Any, interval: float) -> None:
        super().__init__(name="nbo-heartbeat", daemon=True)
        self.store, self.interval = store, interval
        self.runs: set[str] = set()

    def run(self) -> None:
        while True:
            time.sleep(self.interval)
            with Heartbeat._lock:
                if not self.runs:  # idle for a whole interval: go; the next cell starts a new one
                    Heartbeat._threads = {k: t for k, t in Heartbeat._threads.items() if t is not self}
                    return
            for run_id in list(self.runs):
                try:
                    self.store.heartbeat(run_id)
                except Exception:  # noqa: BLE001 - busy store: next beat; a reaped run is finalize's to report
                    continue


def _in_memory(url: str) -> bool:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL we can read: assume a real database
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
