"""Benchmark group ``trigger``, daemon part: a real ``nbo scheduler`` process on a real project.

- ``trigger_latency_p50`` / ``_p99``: from an upstream partition's finalize (the run's ``ended_at`` in the store)
  to the ``--auto`` downstream run's start (its ``started_at``), one trigger at a time (each downstream run ends
  before the next upstream write), over ``TRIGGERS`` triggers after a warm-up;
- ``tick_accuracy``: the latest start of a tick's runs after the tick time (two schedules on the same minute,
  over two minute ticks: the worst of 4 runs);
- ``daemon_idle_cpu``: the daemon's CPU time (user + system, from /proc) over 30 s at rest, as a share of one
  core, with 100 schedules (none due) and 1,000 ``--auto`` assets.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

WORKTREE = Path(__file__).resolve().parents[1]
TRIGGERS = int(os.environ.get("NBO_BENCH_TRIGGERS", "200"))


def _notebook(path: Path, cells: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


def _daemon(root: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(WORKTREE)}
    out = open(log, "ab")  # noqa: SIM115 - the process owns it
    return subprocess.Popen([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), "scheduler",
                             "--interval", "1"], stdout=out, stderr=out, env=env)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _until(what, timeout: float, step: float = 0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        time.sleep(step)
    raise RuntimeError(f"timed out after {timeout} s")


def _write_upstream(p, key: str, value: int) -> datetime:
    from notebook_orch.engine.lifecycle import RunLifecycle
    from notebook_orch.storage import ValueStore
    from notebook_orch.store.records import NewMaterialization

    life = RunLifecycle.start(p.store, p.config.data_dir, notebook="notebooks/pipe.ipynb", targets=[("up", key)],
                              kind="manual")
    published = ValueStore(p.config.data_dir).publish("up", key, {"v": value}, run_id=life.run_id)
    record = life.succeed([NewMaterialization(
        asset="up", partition=key, code_version=p.graph.spec("up").code_version, data_version=published.data_version,
        storage_path=str(published.storage_path), io=published.handler)])
    del record
    return p.store.get_run(life.run_id).ended_at


def trigger_latency(report) -> None:
    from notebook_orch import Project

    with tempfile.TemporaryDirectory(prefix="nbo-bench-trigger-") as tmp:
        root = Path(tmp)
        _notebook(root / "notebooks" / "pipe.ipynb", [
            "%load_ext notebook_orch",
            "%%asset up --partitions daily:2020-01-01\nup = {'v': 0}",
            "%%asset down --deps up --partitions daily:2020-01-01 --auto\ndown = {'v': up['v'] + 1}",
        ])
        with Project(root) as p:
            p.store.last_event_id()
            proc = _daemon(root, root / "daemon.log")
            try:
                _until(lambda: p.store.scheduling.cursor() is not None, 60, 0.1)
                keys = p.graph.spec("up").partitions.keys(now=datetime.now(timezone.utc).replace(tzinfo=None))
                warmup = 3
                latencies = []
                for i in range(TRIGGERS + warmup):
                    key = keys[i]
                    ended = _write_upstream(p, key, i)

                    def started(key: str = key):
                        runs = [r for r in p.store.list_runs(limit=5, asset="down") if key in r.partition_keys]
                        return runs[0] if runs and runs[0].status != "RUNNING" else None

                    run = _until(started, 120)
                    if run.status != "SUCCESS":
                        raise RuntimeError(f"down[{key}] ended {run.status}: {run.error}")
                    if i >= warmup:
                        latencies.append((run.started_at - ended).total_seconds())
            finally:
                _stop(proc)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
    report("trigger_latency_p50", statistics.median(latencies), "s", f"< 0.5 s; {len(latencies)} triggers")
    report("trigger_latency_p99", p99, "s", "< 2 s")


def tick_accuracy(report) -> None:
    from notebook_orch import Project

    with tempfile.TemporaryDirectory(prefix="nbo-bench-tick-") as tmp:
        root = Path(tmp)
        _notebook(root / "notebooks" / "ticks.ipynb", [
            "%load_ext notebook_orch",
            "%%asset tick_a\ntick_a = 1",
            "%%asset tick_b\ntick_b = 2",
        ])
        with Project(root) as p:
            now = datetime.now(timezone.utc)
            for name in ("tick_a", "tick_b"):
                p.store.scheduling.add_schedule(name=f"every_minute_{name}", cron="* * * * *", selection=name,
                                                catchup="none", now=now)
            proc = _daemon(root, root / "daemon.log")
            try:
                # Two minute ticks after the daemon is up (the first tick may come before its worker is warm).
                first = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
                ticks = [first + timedelta(minutes=1), first + timedelta(minutes=2)]

                def done():
                    recs = [t for t in p.store.scheduling.ticks(limit=20)
                            if t.tick_at.replace(tzinfo=timezone.utc) in ticks]
                    runs = {r.run_id: r for r in p.store.list_runs(limit=50)}
                    got = [(t, runs.get(t.run_ids[0])) for t in recs if t.run_ids]
                    return got if len(got) == 4 and all(r is not None for _, r in got) else None

                got = _until(done, (ticks[-1] - now).total_seconds() + 120, 0.5)
            finally:
                _stop(proc)
    delays = [(r.started_at - t.tick_at).total_seconds() for t, r in got]
    report("tick_accuracy", max(delays), "s", f"< 1 s; worst of {len(delays)} runs over 2 ticks, "
                                               f"median {statistics.median(delays):.3f} s")


def idle_cpu(report) -> None:
    from notebook_orch import Project

    with tempfile.TemporaryDirectory(prefix="nbo-bench-idle-") as tmp:
        root = Path(tmp)
        for nb in range(10):  # 10 notebooks x (10 upstreams + 100 --auto assets reading them)
            cells = ["%load_ext notebook_orch"]
            cells += [f"%%asset u{nb}_{i} --partitions daily:2024-01-01\nu{nb}_{i} = 1" for i in range(10)]
            cells += [f"%%asset a{nb}_{i} --deps u{nb}_{i % 10} --partitions daily:2024-01-01 --auto\n"
                      f"a{nb}_{i} = u{nb}_{i % 10}" for i in range(100)]
            _notebook(root / "notebooks" / f"n{nb}.ipynb", cells)
        with Project(root) as p:
            assert sum(s.auto for s in p.graph.specs) == 1000
            now = datetime.now(timezone.utc)
            for i in range(100):  # none due during the measurement: 03:MM each day
                p.store.scheduling.add_schedule(name=f"s{i}", cron=f"{i % 60} 3 * * *", selection=f"a{i % 10}_0",
                                                catchup="none", now=now)
            proc = _daemon(root, root / "daemon.log")
            try:
                _until(lambda: p.store.scheduling.cursor() is not None, 120, 0.2)
                time.sleep(5)  # past start-up
                t0, c0 = time.monotonic(), _cpu_seconds(proc.pid)
                time.sleep(30)
                t1, c1 = time.monotonic(), _cpu_seconds(proc.pid)
            finally:
                _stop(proc)
    report("daemon_idle_cpu", 100 * (c1 - c0) / (t1 - t0), "% of a core",
           "< 1 %; 100 schedules, 1,000 --auto assets, 30 s at rest")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


__all__ = ["idle_cpu", "tick_accuracy", "trigger_latency"]
