"""The scheduler daemon as real processes: the AND join fires once per partition and only when both inputs are
ready, an unchanged data version triggers nothing, SIGTERM stops it; a SIGKILL between a tick's record and its
runs loses no tick under catch-up `all` and double-runs nothing, with two daemons at once."""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sched_helpers import daemon, make_project, nbo
from sched_helpers import until as _until

from notebook_orch import Project
from notebook_orch.core.schedule import target_partition, ticks_between

pytestmark = pytest.mark.slow


def _runs(root: Path, kind: str) -> list:
    with Project(root) as p:
        return [r for r in p.store.list_runs(limit=1000) if r.kind == kind]


def _stop(proc, log: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    return log.read_text()


def test_and_join_fires_once_when_both_ready_and_unchanged_data_triggers_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    log = tmp_path / "daemon.log"
    with Project(root) as p:
        p.store.last_event_id()  # create the store before the daemon and the CLI race to
    d = daemon(root, log=log)
    try:
        with Project(root) as p:
            _until(lambda: p.store.scheduling.cursor() is not None, 60)
        key = "2024-01-03"
        assert nbo(root, "materialize", "a", "--partition", key).returncode == 0
        time.sleep(2)  # several passes see a's event; the join still waits for b
        assert _runs(root, "trigger") == []
        preview = nbo(root, "auto", "preview")
        assert f"waiting      joined[{key}]: inputs not fresh (b[{key}])" in preview.stdout
        assert nbo(root, "materialize", "b", "--partition", key).returncode == 0
        runs = _until(lambda: [r for r in _runs(root, "trigger") if r.status == "SUCCESS"], 180)
        assert [(r.assets, r.partition_keys) for r in runs] == [(("joined",), (key,))]
        # b again with the same data: its data version does not change, so nothing is triggered.
        assert nbo(root, "materialize", "b", "--partition", key).returncode == 0
        time.sleep(3)
        assert len(_runs(root, "trigger")) == 1
    finally:
        text = _stop(d, log)
    assert "trigger: started joined for 2024-01-03" in text and "scheduler stopped" in text


def test_sigkill_mid_tick_and_two_daemons_fire_each_tick_once(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    now = datetime.now(timezone.utc)
    added = now - timedelta(days=2, hours=1)
    with Project(root) as p:
        p.store.scheduling.add_schedule(name="bs", cron="0 6 * * *", selection="b", catchup="all", now=added)
        pdef = p.graph.spec("b").partitions
    expected = ticks_between("0 6 * * *", "UTC", added, now)
    keys = sorted(target_partition(pdef, "latest", t, "UTC") for t in expected)
    assert len(expected) >= 2
    kill_mark = tmp_path / "killed"
    logs = [tmp_path / "d1.log", tmp_path / "d2.log"]
    import os

    os.environ["NBO_TEST_KILL_AFTER_TICK"] = str(kill_mark)
    try:
        procs = [daemon(root, "--lease-ttl", "2", log=log) for log in logs]
    finally:
        del os.environ["NBO_TEST_KILL_AFTER_TICK"]
    try:
        # One daemon is killed right after writing its first tick; the standby takes over when the lease expires.
        _until(lambda: any(p.poll() == -signal.SIGKILL for p in procs), 60)
        assert kill_mark.exists()

        def all_done() -> bool:
            with Project(root) as p:
                ticks = p.store.scheduling.ticks("bs")
            runs = _runs(root, "schedule")
            return (len(ticks) == len(expected) and all(t.status == "SUBMITTED" for t in ticks)
                    and len(runs) == len(keys) and all(r.status == "SUCCESS" for r in runs))

        _until(all_done, 240, step=0.5)
        survivor = next(p for p in procs if p.poll() is None)
        time.sleep(1.5)  # more passes: nothing more may fire
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                assert p.wait(timeout=60) == 0
    with Project(root) as p:
        ticks = p.store.scheduling.ticks("bs")
    assert sorted(t.tick_at for t in ticks) == [t.astimezone(timezone.utc).replace(tzinfo=None) for t in expected]
    assert sorted(k for r in _runs(root, "schedule") for k in r.partition_keys) == keys  # each partition once
    text = "".join(log.read_text() for log in logs)
    assert "recorded before a restart, starting its runs now" in text
    assert survivor.returncode == 0
    # A restarted daemon evaluates once: every tick is recorded, nothing fires again.
    again = nbo(root, "scheduler", "--once")
    assert again.returncode == 0 and "ticks fired=0" in again.stdout
    assert len(_runs(root, "schedule")) == len(keys)
