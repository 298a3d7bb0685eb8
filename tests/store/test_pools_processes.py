"""Concurrency pools across real processes, on SQLite and PostgreSQL: six processes start runs on one store with a
limit of 2 in a pool (and 4 overall); the event log, whose ids follow commit order, shows the limits were never
exceeded — and reached, so the test is not passing by running everything one at a time. One holder is killed with
SIGKILL while it holds a slot: the others wait until a writer reaps it, then go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from notebook_orch.store import open_store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 6
WAREHOUSE = {"global": 4, "pool:warehouse": 2}
OTHER = {"global": 4}

# One process: RUNS_PER_PROCESS runs one after another, each through the run lifecycle (start, wait for the pool
# slots while heartbeating, hold them a moment, succeed). Processes 0-2 use the warehouse pool and run 6 runs; the
# others 3 runs each, so the global limit is reached early on and the warehouse one once they are done.
WORKER = textwrap.dedent("""
    import json, sys, time
    from notebook_orch.engine.lifecycle import RunLifecycle
    from notebook_orch.store import open_store

    url, index, runs, pools, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), \\
        float(sys.argv[5])
    store = open_store(url)
    print("ready", flush=True)
    sys.stdin.readline()  # start together: the parent writes a line once every process is ready
    for i in range(runs):
        life = RunLifecycle.start(store, "/nonexistent-data", notebook="n", targets=[(f"a{index}", str(i))],
                                  kind="manual", pools=pools)
        with life.heartbeats(0.2):
            life.wait_for_slots(pools, poll_s=0.5)
            print("holding", life.run_id, flush=True)
            time.sleep(hold)
        store.finalize_success(life.run_id, [])
    store.close()
""")


def start_worker(url: str, index: int, *, runs: int, pools: dict[str, int], hold: float) -> subprocess.Popen:
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER, url, str(index), str(runs), json.dumps(pools), str(hold)],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def go(*workers: subprocess.Popen) -> None:
    """Wait until each worker opened the store, then let them all start."""
    for w in workers:
        assert w.stdout is not None and w.stdin is not None
        line = w.stdout.readline()
        assert line.startswith("ready"), (line, w.stderr.read() if w.poll() is not None and w.stderr else "")
    for w in workers:
        w.stdin.write("go\n")
        w.stdin.flush()


def most_at_once(events: list, runs_in: set[str]) -> int:
    """The most runs of ``runs_in`` executing at once: a sweep over the log in id (= commit) order."""
    live: set[str] = set()
    peak = 0
    for e in events:
        if e.run_id not in runs_in:
            continue
        if e.kind == "RUN_STARTED":
            live.add(e.run_id)
            peak = max(peak, len(live))
        elif e.kind in ("RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED"):
            live.discard(e.run_id)
    return peak


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_databases").fresh()


def test_processes_sharing_a_store_never_exceed_the_pool_limits(url: str) -> None:
    open_store(url).close()  # created (or migrated) once, before the processes race
    workers = [start_worker(url, i, runs=6 if i < 3 else 3, pools=WAREHOUSE if i < 3 else OTHER, hold=0.2)
               for i in range(PROCESSES)]
    go(*workers)
    for w in workers:
        out, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
    with open_store(url) as store:
        events = store.events_after(0, limit=100_000)
        runs = store.list_runs(limit=1000)
        assert len(runs) == 3 * 6 + 3 * 3 and {r.status for r in runs} == {"SUCCESS"}
        warehouse = {r.run_id for r in runs if r.assets[0] in ("a0", "a1", "a2")}
        every = {r.run_id for r in runs}
        assert most_at_once(events, warehouse) == 2  # reached, never exceeded
        assert most_at_once(events, every) == 4
        assert any(e.kind == "RUN_WAITING" for e in events)
        assert store.pool_usage() == {}


def test_a_killed_holder_keeps_its_slot_until_reaped_then_the_waiter_runs(url: str) -> None:
    open_store(url).close()
    pools = {"pool:warehouse": 1}
    holder = start_worker(url, 0, runs=1, pools=pools, hold=600)
    go(holder)
    assert holder.stdout is not None and holder.stdout.readline().startswith("holding")
    waiter = start_worker(url, 1, runs=1, pools=pools, hold=0.1)
    go(waiter)
    with open_store(url) as store:
        deadline = time.monotonic() + 60
        while not store.list_runs(status="WAITING"):
            assert time.monotonic() < deadline, "the second run never started waiting"
            time.sleep(0.1)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        time.sleep(1.5)
        assert waiter.poll() is None and len(store.list_runs(status="WAITING")) == 1  # a dead holder's slot holds
        reaped = store.reap_stale_runs(timeout_s=1.0)
        assert [r.assets for r in reaped] == [("a0",)]
        _, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
        assert sorted(r.status for r in store.list_runs()) == ["FAILED", "SUCCESS"]
        assert store.pool_usage() == {}
