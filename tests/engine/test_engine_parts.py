"""The run engine's parts without kernels: the event follower's gaps, the executor registry, the local pool."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import Future
from datetime import datetime

import pytest

from notebook_orch.engine.executor import RunOutcome, RunRequest
from notebook_orch.engine.executors import ExecutorRegistry, InProcessExecutor, LocalExecutor, UnknownExecutor
from notebook_orch.store.follow import EventFollower
from notebook_orch.store.records import EventRecord


class OutOfOrderLog:
    """Events that become visible in an order other than their ids (as PostgreSQL sequences allow)."""

    def __init__(self) -> None:
        self.visible: dict[int, EventRecord] = {}

    def commit(self, *ids: int) -> None:
        for i in ids:
            self.visible[i] = EventRecord(i, "MATERIALIZED", "r", "a", str(i), datetime(2026, 1, 1), {})

    def events_after(self, event_id: int, *, limit: int = 1000) -> list[EventRecord]:
        return [self.visible[i] for i in sorted(self.visible) if i > event_id][:limit]

    def events_by_id(self, ids) -> list[EventRecord]:  # noqa: ANN001
        return [self.visible[i] for i in sorted(set(ids)) if i in self.visible]


def test_a_follower_delivers_an_event_that_commits_after_a_newer_one_exactly_once() -> None:
    log, now = OutOfOrderLog(), [0.0]
    follower = EventFollower(log, clock=lambda: now[0])
    log.commit(1, 2, 4)  # 3 took its id before 4 but has not committed yet
    assert [e.id for e in follower.poll()] == [1, 2, 4]
    assert follower.cursor == 2  # resuming from here must not lose 3
    assert follower.poll() == []
    log.commit(3)
    assert [e.id for e in follower.poll()] == [3]
    assert follower.cursor == 4
    log.commit(5)
    assert [e.id for e in follower.poll()] == [5]
    assert follower.poll() == []


def test_a_gap_that_never_fills_is_forgotten_after_the_timeout() -> None:
    log, now = OutOfOrderLog(), [0.0]
    follower = EventFollower(log, gap_timeout_s=10, clock=lambda: now[0])
    log.commit(1, 3)  # 2 rolled back
    assert [e.id for e in follower.poll()] == [1, 3]
    now[0] = 5.0
    follower.poll()
    assert follower.cursor == 1
    now[0] = 11.0
    follower.poll()
    assert follower.cursor == 3


def test_a_resumed_follower_sees_nothing_twice_and_loses_nothing() -> None:
    log = OutOfOrderLog()
    first = EventFollower(log)
    log.commit(1, 2, 4)
    seen = [e.id for e in first.poll()]
    second = EventFollower(log, after=first.cursor)
    log.commit(3, 5)
    seen += [e.id for e in second.poll() if e.id not in seen]  # 4 again is expected: it is past the cursor
    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert [e.id for e in second.poll()] == []


class Dummy:
    name = "dummy"

    def __init__(self, **options: object) -> None:
        self.options = options

    capacity = 1

    def start(self, request: RunRequest) -> Future[RunOutcome]:
        raise NotImplementedError

    def cancel_all(self) -> None: ...

    def shutdown(self) -> None: ...


def test_the_registry_is_an_object_and_a_miss_names_what_exists() -> None:
    registry = ExecutorRegistry(entry_points=False)
    registry.register("dummy", Dummy)
    registry.register("local", LocalExecutor)
    made = registry.create("dummy", workers=3)
    assert isinstance(made, Dummy) and made.options == {"workers": 3}
    with pytest.raises(UnknownExecutor, match=r"No executor named 'locl'; available: dummy, local\. Did you mean "
                                              r"'local'\?"):
        registry.create("locl")
    assert ExecutorRegistry(entry_points=False).names() == []  # nothing global leaks between registries


def _request(tmp_path, name: str) -> RunRequest:  # noqa: ANN001
    return RunRequest(project_root=str(tmp_path), store_url=f"sqlite:///{tmp_path}/store.db", notebook=name,
                      partition="p", assets=("a",), code_versions={})


def test_a_killed_local_worker_is_replaced_and_the_pool_keeps_serving(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    # The worker runs execute_run; a missing notebook makes it fail fast and for real (no kernel needed).
    from notebook_orch.store import open_store

    open_store(f"sqlite:///{tmp_path}/store.db").close()
    pool = LocalExecutor(workers=2)
    try:
        ok = pool.start(_request(tmp_path, "missing.ipynb"))
        outcome = ok.result(timeout=120)
        assert outcome.status == "FAILED" and "no longer exists" in outcome.error
        # Kill a worker between runs: the next run goes to a live or a new worker.
        victim = next(w for w in pool._workers if w.process.is_alive())
        os.kill(victim.process.pid, signal.SIGKILL)
        time.sleep(0.5)
        again = pool.start(_request(tmp_path, "missing2.ipynb")).result(timeout=120)
        assert again.status == "FAILED" and "missing2.ipynb" in again.error
    finally:
        pool.shutdown()


def test_inprocess_executor_runs_on_threads(tmp_path) -> None:  # noqa: ANN001
    from notebook_orch.store import open_store

    open_store(f"sqlite:///{tmp_path}/store.db").close()
    pool = InProcessExecutor(workers=1)
    try:
        outcome = pool.start(_request(tmp_path, "gone.ipynb")).result(timeout=60)
        assert outcome.status == "FAILED" and "gone.ipynb no longer exists" in outcome.error
    finally:
        pool.shutdown()
