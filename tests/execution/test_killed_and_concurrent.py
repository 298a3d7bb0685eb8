"""Processes that die, stall or compete: the runner SIGKILLed or interrupted mid-run, heartbeats of a long run, a run
reaped while it ran, and two materialize commands at once."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from _shared_helpers import alive, descendants, wait_for
from execution_helpers import (
    asset_cell,
    make_project,
    nbo,
    nbo_popen,
    open_project,
    published_versions,
    read_value,
    runs_of,
    setup_cell,
)

from notebook_orch.core.planning import PartitionSelection

pytestmark = pytest.mark.kernel

DAY = "2013-01-01"
HEARTBEAT_TIMEOUT = 6.0  # runs beat every 1.5 s (a quarter of it)


def test_a_runner_killed_mid_run_takes_its_workers_along_and_its_run_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started_pids: list[int]
) -> None:
    monkeypatch.setenv("NBO_HEARTBEAT_TIMEOUT", str(HEARTBEAT_TIMEOUT))
    started, slow = tmp_path / "started", tmp_path / "slow"
    make_project(tmp_path, {"sleeper": [asset_cell("slow_value", f"""
        import pathlib, time
        pathlib.Path({str(started)!r}).write_text(partition_key)
        if pathlib.Path({str(slow)!r}).exists():
            time.sleep(30)
        slow_value = {{"day": partition_key}}
    """)]})
    slow.write_text("sleep in the asset cell")
    runner = nbo_popen(tmp_path, "materialize", "slow_value", "--partition", DAY)
    started_pids.append(runner.pid)
    wait_for(started.exists, timeout=90, what="the asset cell to start")
    [run] = runs_of(tmp_path)
    assert run.status == "RUNNING"
    below = descendants(runner.pid)  # the pool's workers (and its resource tracker) and the kernel
    started_pids.extend(below)
    assert any("ipykernel_launcher" in Path(f"/proc/{p}/cmdline").read_text() for p in below)

    os.kill(runner.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    runner.communicate(timeout=10)
    with open_project(tmp_path) as project:
        assert project.reap() == []  # within the heartbeat timeout nothing is reaped ...
        assert project.status().status("slow_value", DAY) == "RUNNING"
    assert time.monotonic() - killed_at < HEARTBEAT_TIMEOUT - 1.5, "too slow to observe the RUNNING window"
    [still] = runs_of(tmp_path)
    assert (still.run_id, still.status) == (run.run_id, "RUNNING")

    wait_for(lambda: not any(alive(p) for p in below), timeout=15, what="workers and kernel to die with the runner")
    assert published_versions(tmp_path, "slow_value", DAY) == []

    # ... after it, reads show it as presumed dead and change nothing; a writer (nbo reap) reaps it as FAILED.
    wait_for(lambda: time.monotonic() - killed_at > HEARTBEAT_TIMEOUT + 0.5, timeout=30, what="the heartbeat timeout")
    listed = nbo(tmp_path, "runs", "--json", check=True)
    [shown] = json.loads(listed.stdout)
    assert (shown["run_id"], shown["status"], shown["presumed_dead"]) == (run.run_id, "RUNNING", True)
    nbo(tmp_path, "status", check=True)
    assert [r.status for r in runs_of(tmp_path)] == ["RUNNING"]  # reads never write
    nbo(tmp_path, "reap", check=True)
    [reaped] = json.loads(nbo(tmp_path, "runs", "--json", check=True).stdout)
    assert (reaped["run_id"], reaped["status"], reaped["presumed_dead"]) == (run.run_id, "FAILED", False)
    assert reaped["error"].startswith("heartbeat lost: no heartbeat since ")
    assert f"(timeout {HEARTBEAT_TIMEOUT:g} s); the process running it probably died" in reaped["error"]
    with open_project(tmp_path) as project:
        assert project.status().status("slow_value", DAY) == "FAILED"

    # A retry after the cause is gone succeeds.
    slow.unlink()
    retry = nbo(tmp_path, "materialize", "slow_value", "--partition", DAY)
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert [r.status for r in runs_of(tmp_path)] == ["FAILED", "SUCCESS"]
    assert read_value(tmp_path, "slow_value", DAY) == {"day": DAY}
    assert len(published_versions(tmp_path, "slow_value", DAY)) == 1


def test_a_run_longer_than_the_heartbeat_timeout_keeps_beating_and_is_not_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started_pids: list[int]
) -> None:
    monkeypatch.setenv("NBO_HEARTBEAT_TIMEOUT", "2")  # beats every 0.5 s
    started = tmp_path / "started"
    make_project(tmp_path, {"long": [asset_cell("long_value", f"""
        import pathlib, time
        pathlib.Path({str(started)!r}).write_text(partition_key)
        time.sleep(5)
        long_value = {{"day": partition_key}}
    """)]})
    runner = nbo_popen(tmp_path, "materialize", "long_value", "--partition", DAY)
    started_pids.append(runner.pid)
    wait_for(started.exists, timeout=90, what="the asset cell to start")
    beats = set()
    while runner.poll() is None:  # every command reaps: none may take a live run for a dead one
        with open_project(tmp_path) as project:
            reaped = project.reap()
        assert reaped == []
        [run] = runs_of(tmp_path)
        if run.status == "RUNNING":
            beats.add(run.heartbeat_at)
        time.sleep(0.3)
    out, err = runner.communicate()
    assert runner.returncode == 0, out + err
    [run] = runs_of(tmp_path)
    assert run.status == "SUCCESS"
    assert len(beats - {None}) >= 4  # ~10 beats in 5 s; a few are enough to show the thread kept going


def test_two_commands_on_the_same_partition_one_runs_the_other_is_told_who_holds_it(
    tmp_path: Path, started_pids: list[int]
) -> None:
    started = tmp_path / "started"
    make_project(tmp_path, {"contended": [asset_cell("contended_value", f"""
        import pathlib, time
        pathlib.Path({str(started)!r}).write_text(partition_key)
        time.sleep(4)
        contended_value = {{"day": partition_key}}
    """)]})
    args = ("materialize", "contended_value", "--partition", DAY)
    racers = [nbo_popen(tmp_path, *args), nbo_popen(tmp_path, *args)]
    started_pids.extend(p.pid for p in racers)
    # A third command starts once a run surely holds the partition: it must be turned away at plan time.
    wait_for(started.exists, timeout=90, what="a run to start its asset cell")
    late = nbo(tmp_path, *args)
    outputs = [p.communicate(timeout=120) for p in racers]
    results = [(p.returncode, out, err) for p, (out, err) in zip(racers, outputs)]

    [winner] = runs_of(tmp_path)  # the losers never created a run
    assert winner.status == "SUCCESS"
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser_out = next(out for code, out, _ in results if code == 1)
    locked = (f"LOCKED notebooks/contended.ipynb [{DAY}]: contended_value[{DAY}] is already being materialized by "
              f"run {winner.run_id}")
    not_run = (f"NOT RUN contended_value[{DAY}]: run {winner.run_id} was already materializing it when this "
               "command planned")
    assert locked in loser_out or not_run in loser_out, loser_out

    assert late.returncode == 1, late.stdout + late.stderr
    assert late.stdout.splitlines()[0] == (
        "0 run(s) in 0.0 s: 1 partition(s) not run: another run is materializing them")
    assert not_run in late.stdout
    assert read_value(tmp_path, "contended_value", DAY) == {"day": DAY}


def test_an_interrupted_backfill_cancels_its_runs_and_the_rerun_does_only_what_is_left(
    tmp_path: Path, started_pids: list[int]
) -> None:
    started, slow = tmp_path / "started", tmp_path / "slow"
    make_project(tmp_path, {"sleeper": [asset_cell("slow_value", f"""
        import pathlib, time
        if pathlib.Path({str(slow)!r}).exists():
            pathlib.Path({str(started)!r}).write_text(partition_key)
            time.sleep(30)
        slow_value = {{"day": partition_key}}
    """)]})
    span = ("--from", "2013-01-01", "--to", "2013-01-04")
    nbo(tmp_path, "materialize", "slow_value", "--partition", "2013-01-01", check=True)

    slow.write_text("sleep in the asset cell")
    backfill = nbo_popen(tmp_path, "backfill", "slow_value", *span, "--workers", "2", new_session=True)
    started_pids.append(backfill.pid)
    wait_for(started.exists, timeout=90, what="a backfill run to start its asset cell")
    wait_for(lambda: len([r for r in runs_of(tmp_path) if r.status == "RUNNING"]) == 2, timeout=30,
             what="both workers to be running")
    below = descendants(backfill.pid)
    started_pids.extend(below)
    os.killpg(backfill.pid, signal.SIGINT)  # Ctrl-C in the terminal
    out, err = backfill.communicate(timeout=30)
    assert backfill.returncode == 130, out + err
    assert "Traceback" not in err
    [summary] = [line for line in err.splitlines() if line.startswith("interrupted: ")]  # kernels log there too
    assert summary.startswith("interrupted: 3 run(s) in ") and summary.endswith(": 2 canceled, 1 skipped")
    wait_for(lambda: not any(alive(p) for p in below), timeout=15, what="workers and kernels to stop")

    first, *canceled = runs_of(tmp_path)
    assert first.status == "SUCCESS"
    # The two canceled runs started in the same instant on two workers: compare them in partition order.
    assert sorted((r.partition_keys, r.status, r.kind) for r in canceled) == [
        (("2013-01-02",), "CANCELED", "backfill"), (("2013-01-03",), "CANCELED", "backfill")]
    assert all(r.error.startswith("Canceled: the materialization was canceled (Cancel, Ctrl-C") for r in canceled)
    assert all(f"CANCELED notebooks/sleeper.ipynb [{r.partition_keys[0]}] run {r.run_id}" in err for r in canceled)
    for day in ("2013-01-02", "2013-01-03", "2013-01-04"):
        assert published_versions(tmp_path, "slow_value", day) == []

    # At once (no heartbeat timeout to wait for), the rerun does exactly what is left: the two canceled partitions
    # and the one never started, not the one already materialized.
    slow.unlink()
    rerun = nbo(tmp_path, "backfill", "slow_value", *span, "--json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert [(o["partition"], o["status"]) for o in json.loads(rerun.stdout)["outcomes"]] == [
        ("2013-01-02", "SUCCESS"), ("2013-01-03", "SUCCESS"), ("2013-01-04", "SUCCESS")]
    assert len(runs_of(tmp_path)) == 6
    with open_project(tmp_path) as project:
        assert project.status().partitions_with("slow_value", "FRESH") == [
            "2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04"]


def test_a_run_reaped_while_it_ran_commits_nothing_and_leaves_nothing_published(tmp_path: Path) -> None:
    # The notebook reaps its own run first (as another command would after a long stall of its heartbeats), then
    # its asset cell succeeds and the kernel publishes the value: the run may no longer commit it.
    make_project(tmp_path, {"stalled": [setup_cell(
        "from datetime import datetime, timedelta\nfrom notebook_orch.store import open_store\n"
        f"store = open_store('sqlite:///{tmp_path}/.notebook_orch/store.db')\n"
        "reaped = store.reap_stale_runs(timeout_s=1, now=datetime.utcnow() + timedelta(hours=1))\n"
        "assert [r.run_id for r in reaped] == [nbo_run['run_id']]"),
        asset_cell("stalled_value", 'stalled_value = {"day": partition_key}'),
    ]})
    with open_project(tmp_path) as project:
        [outcome] = project.materialize("stalled_value", partitions=PartitionSelection(keys=(DAY,)),
                                        workers=1).outcomes
    [run] = runs_of(tmp_path)
    assert (outcome.status, outcome.run_id, run.status) == ("FAILED", run.run_id, "FAILED")
    assert run.error.startswith("heartbeat lost: ")
    assert outcome.error.startswith(f"Run {run.run_id} is FAILED (heartbeat lost: ")
    assert published_versions(tmp_path, "stalled_value", DAY) == []
    with open_project(tmp_path) as project:
        assert project.status().status("stalled_value", DAY) == "FAILED"
