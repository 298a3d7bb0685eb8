"""Crash torture: processes SIGKILLed before, during and right after a value is published, and between its rename
and the finalize transaction (``notebook_orch.faults``), plus the runner and kernels killed at random moments.

Afterwards nothing is lost (``check_nothing_lost``): no half-written value visible, every record's value there and
whole, no value without a record, no temporary file left, no run RUNNING, ``nbo doctor`` consistent — and every
killed run FAILED and retried per its policy.

The short versions run in CI; ``NBO_RELIABILITY_LONG=1`` (``python benchmarks/run.py reliability``) runs the long
ones, 100 kills in all, and writes the figures to ``NBO_RELIABILITY_FIGURES``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from _shared_helpers import alive, cmdline, descendants, wait_for
from reliability_helpers import (
    DAYS,
    LONG,
    check_nothing_lost,
    nbo,
    nbo_popen,
    record_figure,
    size,
    store_of,
    write_project,
)

pytestmark = pytest.mark.kernel

KERNEL_POINTS = ("before_publish", "during_publish", "after_rename", "after_publish")
RUNNER_POINTS = ("before_finalize", "after_finalize")  # in the worker process of a papermill run
HEARTBEAT_TIMEOUT = 4.0
# With a daemon reaping every pass, a live run whose beats are late under heavy load (load 35 on 2 cores seen
# here) would be reaped as dead after 4 s: the daemon tests allow more.
DAEMON_HEARTBEAT_TIMEOUT = 15.0


def faulty_project(root: Path, plan: dict[str, str]) -> Path:
    """One asset whose cell arms, per partition, a fault point in its own kernel (once per partition: the retry
    passes). The value is a small DataFrame, so publishing writes Parquet (the slowest handler, the widest window)."""
    (root / "plan.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "plan.json").write_text(json.dumps(plan))
    return write_project(root, [
        "import pandas as pd",
        f"""
        %%asset value --partitions {DAYS} --retries 2
        import json, os, pathlib
        _point = json.loads(pathlib.Path({str(root / "plan.json")!r}).read_text()).get(partition_key, "")
        os.environ["NOTEBOOK_ORCH_FAULT"] = _point
        os.environ["NOTEBOOK_ORCH_FAULT_ONCE"] = str(pathlib.Path({str(root / "once")!r}) / partition_key)
        value = pd.DataFrame({{"day": [partition_key] * 200, "n": range(200)}})
        """,
    ], heartbeat_timeout=HEARTBEAT_TIMEOUT)


def days(n: int, start: int = 0) -> list[str]:
    import datetime as dt

    first = dt.date(2013, 1, 1)
    return [(first + dt.timedelta(days=start + i)).isoformat() for i in range(n)]


def expected(keys: list[str]) -> dict[tuple[str, str], object]:
    import pandas as pd

    return {("value", k): pd.DataFrame({"day": [k] * 200, "n": range(200)}) for k in keys}


def check_values(root: Path, keys: list[str]) -> None:
    from notebook_orch.storage import ValueStore

    store = store_of(root)
    try:
        for key in keys:
            m = store.latest_materialization("value", key)
            assert m is not None, f"value[{key}] was not materialized"
            got = ValueStore(root / ".notebook_orch" / "data").load(str(Path(m.storage_path).parent))
            assert got.equals(expected([key])[("value", key)]), key
    finally:
        store.close()


def fault_round(root: Path, keys: list[str], plan: dict[str, str], runner_points: tuple[str, ...]) -> dict:
    """One backfill over ``keys`` with the kernel faults of ``plan`` and each runner point firing once."""
    extra = {}
    if runner_points:
        extra = {"NOTEBOOK_ORCH_FAULT": ",".join(runner_points),
                 "NOTEBOOK_ORCH_FAULT_ONCE": str(root / "once" / f"runner-{keys[0]}")}
    proc = nbo(root, "backfill", "value", "--from", keys[0], "--to", keys[-1], "--workers", "2", timeout=900,
               **extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fired_kernel = sorted(p.parent.name + ":" + p.name for k in keys for p in (root / "once" / k).glob("*"))
    fired_runner = sorted(p.name for p in (root / "once" / f"runner-{keys[0]}").glob("*"))
    return {"kernel": fired_kernel, "runner": fired_runner}


def test_kills_at_every_publishing_step_lose_nothing_and_are_retried(tmp_path: Path) -> None:
    rounds = size("fault_rounds", ci=1, long=8)  # 12 kills a round in the long version, 4 in CI's
    keys_per_round = 12 if LONG else 4
    # CI: the three steps around the rename in the kernel and the runner killed before its finalize transaction
    points = KERNEL_POINTS if LONG else KERNEL_POINTS[1:]
    runner_points = RUNNER_POINTS if LONG else RUNNER_POINTS[:1]
    rng = random.Random(10)
    root, kills, all_keys = tmp_path / "p", 0, []
    faulty_project(root, {})
    started = time.perf_counter()
    for r in range(rounds):
        keys = days(keys_per_round, start=r * keys_per_round)
        if LONG:
            plan = {k: rng.choice(KERNEL_POINTS) for k in rng.sample(keys, 10)}
        else:
            plan = dict(zip(keys, points))
        faulty_project(root, plan)
        fired = fault_round(root, keys, plan, runner_points)
        assert len(fired["kernel"]) == len(plan), fired  # every armed point was reached and killed its kernel
        assert fired["runner"] == sorted(runner_points), fired
        kills += len(fired["kernel"]) + len(fired["runner"])
        all_keys += keys
        store = store_of(root)
        try:
            runs = [r for r in store.list_runs(limit=10_000) if r.partition_keys[0] in keys]
        finally:
            store.close()
        by_key: dict[str, list] = {}
        for run in sorted(runs, key=lambda x: x.started_at):
            by_key.setdefault(run.partition_keys[0], []).append(run)
        for key in keys:
            statuses = [x.status for x in by_key[key]]
            assert statuses[-1] == "SUCCESS" and all(s == "FAILED" for s in statuses[:-1]), (key, statuses)
            assert [x.attempt for x in by_key[key]] == list(range(1, len(statuses) + 1)), key  # the retry policy
            for failed in by_key[key][:-1]:
                assert ("kernel died" in failed.error or "worker process running it died" in failed.error), \
                    failed.error
        failed_total = sum(len(v) - 1 for v in by_key.values())
        # each kernel kill and the before_finalize kill cost one attempt; after_finalize came after the commit
        assert failed_total == len(fired["kernel"]) + ("before_finalize" in fired["runner"]), (failed_total, fired)
        figures = check_nothing_lost(root)
        record_figure("crash_fault_points_round", kills=len(fired["kernel"]) + len(fired["runner"]))
    check_values(root, all_keys)
    record_figure("crash_fault_points", kills=kills, survived=kills, runs=figures["runs"],
                  values=figures["values"], seconds=round(time.perf_counter() - started, 1))


def kernels_below(pid: int) -> list[int]:
    return [p for p in descendants(pid) if "ipykernel_launcher" in cmdline(p)]


def random_kill_round(root: Path, keys: list[str], victim: str, rng: random.Random) -> int:
    """A backfill over ``keys`` whose runner or one kernel is SIGKILLed at a random moment; returns kills made."""
    runner = nbo_popen(root, "backfill", "value", "--from", keys[0], "--to", keys[-1], "--workers", "2")
    try:
        wait_for(lambda: kernels_below(runner.pid), timeout=300, what="a kernel to start")
        time.sleep(rng.uniform(0.0, 2.5))
        if victim == "kernel":
            kernels = kernels_below(runner.pid)
            if kernels:
                os.kill(rng.choice(kernels), signal.SIGKILL)
            out, err = runner.communicate(timeout=600)
            assert runner.returncode == 0, out + err  # the killed attempt was retried (--retries 2)
            return 1 if kernels else 0
        below = descendants(runner.pid)
        os.kill(runner.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        runner.communicate(timeout=30)
        wait_for(lambda: not any(alive(p) for p in below), timeout=30, what="the runner's processes to die")
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    store = store_of(root)
    try:
        left = [x.run_id for x in store.list_runs(limit=10_000, status="RUNNING")]
    finally:
        store.close()
    # The next writer reaps them once the heartbeat timeout has passed, as FAILED, withdrawing what they published.
    wait_for(lambda: time.monotonic() - killed_at > HEARTBEAT_TIMEOUT + 0.3, timeout=30, what="the timeout")
    reaped = json.loads(nbo(root, "reap", "--json").stdout)
    assert sorted(x["run_id"] for x in reaped) == sorted(left)
    assert all(x["status"] == "FAILED" and x["error"].startswith("heartbeat lost") for x in reaped)
    again = nbo(root, "materialize", "value", "--from", keys[0], "--to", keys[-1], "--only-stale", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    return 1


def test_the_runner_or_a_kernel_killed_at_a_random_moment_loses_nothing(tmp_path: Path) -> None:
    """Random moments: the whole runner (its workers and kernels die with it; the next writer reaps its runs after
    the heartbeat timeout), or one kernel (the worker fails the attempt and retries it)."""
    rounds = size("random_rounds", ci=1, long=6)
    rng = random.Random(20)
    root = faulty_project(tmp_path / "p", {})
    kills = {"runner": 0, "kernel": 0}
    started = time.perf_counter()
    all_keys: list[str] = []
    for r in range(rounds):
        keys = days(4, start=200 + r * 4)
        all_keys += keys
        victim = "runner" if r % 2 == 0 else "kernel"
        made = random_kill_round(root, keys, victim, rng)
        kills[victim] += made
        check_nothing_lost(root)
        record_figure("crash_random_round", kills=made, victim=victim)
    check_values(root, all_keys)
    total = sum(kills.values())
    record_figure("crash_random", kills=total, survived=total, runner_kills=kills["runner"],
                  kernel_kills=kills["kernel"], seconds=round(time.perf_counter() - started, 1))


@pytest.mark.skipif(not LONG, reason="long version: NBO_RELIABILITY_LONG=1 (python benchmarks/run.py reliability)")
def test_the_scheduler_daemon_killed_at_a_random_moment_loses_nothing(tmp_path: Path) -> None:
    """The daemon SIGKILLed while a run it triggered executes (its workers and kernel die with it): a new daemon
    reaps the run once its heartbeat times out and retries it per the asset's --retries."""
    rounds = size("daemon_kills", ci=0, long=3)
    rng = random.Random(30)
    root = write_project(tmp_path / "p", [
        f"""
        %%asset src --partitions {DAYS}
        src = {{"day": partition_key}}
        """,
        f"""
        %%asset derived --deps src --partitions {DAYS} --auto --retries 1
        import time
        time.sleep(1.5)
        derived = {{"from": src["day"]}}
        """,
    ], heartbeat_timeout=DAEMON_HEARTBEAT_TIMEOUT)
    log = tmp_path / "daemon.log"
    log.touch()
    started = time.perf_counter()
    kills = 0
    for r in range(rounds):
        key = days(1, start=300 + r)[0]
        kills += daemon_kill_round(root, log, key, rng)
        runs = derived_of(root, key)
        check_nothing_lost(root, expect_values={("derived", key): {"from": key}})
        record_figure("crash_daemon_round", outcome=runs)
    record_figure("crash_daemon", kills=kills, survived=kills, seconds=round(time.perf_counter() - started, 1))


def daemon_kill_round(root: Path, log: Path, key: str, rng: random.Random) -> int:
    daemon = start_daemon(root, log)
    try:
        assert nbo(root, "materialize", "src", "--partition", key).returncode == 0
        wait_for(lambda: kernels_below(daemon.pid), timeout=180, what="the triggered run's kernel")
        time.sleep(rng.uniform(0.0, 1.5))
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    successor = start_daemon(root, log)
    try:
        # Reaped after the heartbeat timeout and retried as attempt 2 (or it had finished before the kill).
        wait_for(lambda: derived_of(root, key) in (["FAILED", "SUCCESS"], ["SUCCESS"]), timeout=300,
                 what=f"derived[{key}] reaped and retried")
    finally:
        successor.terminate()
        successor.wait(timeout=60)
    return 1


def start_daemon(root: Path, log: Path):
    import subprocess

    from reliability_helpers import env, nbo_cmd

    before = log.read_text().count("scheduler started")
    with open(log, "ab") as out:
        daemon = subprocess.Popen(nbo_cmd(root, "scheduler", "--interval", "0.2"), stdout=out, stderr=out, env=env())
    wait_for(lambda: log.read_text().count("scheduler started") > before, timeout=180, what="the daemon to start")
    time.sleep(1.0)  # its first pass: the follower is placed before anything changes
    return daemon


def derived_of(root: Path, key: str) -> list[str]:
    store = store_of(root)
    try:
        runs = [r for r in store.list_runs(limit=100, asset="derived") if key in r.partition_keys]
        return [r.status for r in sorted(runs, key=lambda r: r.attempt)]
    finally:
        store.close()
