"""Pool fairness across real processes, on SQLite and PostgreSQL: two processes stream runs of asset ``y`` through a
pool of one slot, each starting its next run the moment the last ends; a third process asks for one run of asset
``x`` meanwhile. Every run that had to wait starts in the order it began waiting (the event log's ids follow commit
order), so ``x`` starts after the runs queued before it and before the stream is done — never starved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from notebook_orch.store import open_store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POOLS = {"pool:warehouse": 1}

WORKER = textwrap.dedent("""
    import json, sys, time
    from notebook_orch.engine.lifecycle import RunLifecycle
    from notebook_orch.store import open_store

    url, asset, runs, delay, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    pools = json.loads(sys.argv[6])
    store = open_store(url)
    print("ready", flush=True)
    sys.stdin.readline()
    time.sleep(delay)
    for i in range(runs):
        life = RunLifecycle.start(store, "/nonexistent-data", notebook="n", targets=[(asset, str(i))],
                                  kind="manual", pools=pools)
        with life.heartbeats(0.2):
            life.wait_for_slots(pools, poll_s=0.5)
            time.sleep(hold)
        store.finalize_success(life.run_id, [])
    store.close()
""")


def worker(url: str, asset: str, *, runs: int, delay: float, hold: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, asset, str(runs), str(delay), str(hold), json.dumps(POOLS)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_waiters_across_processes_start_first_come_first_served(store_url: str) -> None:
    open_store(store_url).close()  # create the schema once, before the processes race to
    procs = [worker(store_url, "y", runs=6, delay=0.0, hold=0.15),
             worker(store_url, "y2", runs=6, delay=0.0, hold=0.15),
             worker(store_url, "x", runs=1, delay=0.6, hold=0.15)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().startswith("ready"), p.stderr.read() if p.stderr else ""
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    store = open_store(store_url)
    try:
        events = store.events_after(0, limit=10_000)
        runs = {r.run_id: r for r in store.list_runs(limit=100)}
    finally:
        store.close()
    waited = [e.run_id for e in events if e.kind == "RUN_WAITING"]
    started = [e.run_id for e in events if e.kind == "RUN_STARTED"]
    assert len(started) == 13 and all(r.status == "SUCCESS" for r in runs.values())
    # x was not starved: between the moment it queued and the moment it started, only runs queued before it started
    # (a stream's next run, arriving later, waits behind it instead of taking the freed slot).
    [x_run] = [r for r, rec in runs.items() if rec.assets == ("x",)]
    assert x_run in waited, "x found the slot free: the stream did not keep the pool busy, nothing was tested"
    kinds = [(e.kind, e.run_id) for e in events]
    between = [r for k, r in kinds[kinds.index(("RUN_WAITING", x_run)):kinds.index(("RUN_STARTED", x_run))]
               if k == "RUN_STARTED"]
    assert set(between) <= set(waited[: waited.index(x_run)]), (between, waited)
    # First come, first served: every run that waited started in the order it began to wait.
    assert [r for r in started if r in set(waited)] == waited
    assert len(waited) >= 6, "the streams must have kept the pool busy, or little was tested"
    # Never more than one at a time (a sweep over the log in commit order).
    live: set[str] = set()
    for e in events:
        if e.kind == "RUN_STARTED":
            live.add(e.run_id)
            assert len(live) <= 1, e
        elif e.kind in ("RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED"):
            live.discard(e.run_id)
