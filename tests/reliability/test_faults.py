"""Disk and store faults: the data folder full or read-only in the middle of a write (a real 1 MB tmpfs mounted
over it), the store file deleted, replaced or damaged while the scheduler daemon runs. Each time: a clear error,
the run FAILED, nothing else damaged, and recovery once the fault is gone.

The disk faults need ``mount`` (root in a container that allows it); without it the test is skipped, saying so.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from _shared_helpers import wait_for
from reliability_helpers import LONG, check_nothing_lost, env, nbo, nbo_cmd, record_figure, store_of, write_project

pytestmark = pytest.mark.kernel


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MB tmpfs at ``tmp_path/p/data``: the project's data folder."""
    mnt = tmp_path / "p" / "data"
    mnt.mkdir(parents=True)
    done = _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): disk-full/read-only faults NOT tested")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def value_of(n: int) -> object:
    import numpy as np
    import pandas as pd

    return pd.DataFrame({"x": np.random.default_rng(n).random(n)})


def disk_project(root: Path, mnt: Path) -> Path:
    plan = root / "plan.json"
    plan.write_text("{}")
    write_project(root, [f"""
        %%asset value --partitions daily:2013-01-01..2013-12-31
        import json, pathlib, subprocess
        import numpy as np, pandas as pd
        _mode = json.loads(pathlib.Path({str(plan)!r}).read_text()).get(partition_key, "small")
        if _mode == "read-only":  # the disk turns read-only between the computation and the write
            subprocess.run(["mount", "-o", "remount,ro", {str(mnt)!r}], check=True)
        _n = 400_000 if _mode == "full" else 1000  # 400,000 random floats: about 3 MB of Parquet on a 1 MB disk
        value = pd.DataFrame({{"x": np.random.default_rng(_n).random(_n)}})
    """])
    text = (root / "pyproject.toml").read_text() + 'data = "data"\n'
    (root / "pyproject.toml").write_text(text)
    return root


def materialize(root: Path, day: str, mode: str | None = None) -> subprocess.CompletedProcess:
    plan = root / "plan.json"
    (plan.write_text(json.dumps({day: mode})) if mode else plan.write_text("{}"))
    return nbo(root, "materialize", "value", "--partition", day)


def last_run(root: Path, day: str):
    store = store_of(root)
    try:
        return next(r for r in store.list_runs(limit=100) if day in r.partition_keys)
    finally:
        store.close()


def test_a_full_or_read_only_data_folder_fails_the_run_clearly_and_damages_nothing(small_disk: Path) -> None:
    root = disk_project(small_disk.parent, small_disk)
    ok = materialize(root, "2013-01-01")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    faults = 0

    full = materialize(root, "2013-01-02", "full")
    faults += 1
    assert full.returncode == 1
    run = last_run(root, "2013-01-02")
    assert run.status == "FAILED"
    assert "No space left on device" in run.error and "Nothing was published" in run.error, run.error
    assert "value[2013-01-02]" in full.stdout or "2013-01-02" in full.stdout
    check_nothing_lost(root, expect_values={("value", "2013-01-01"): value_of(1000)})  # the day before is whole

    assert _mount("-o", "remount,size=20m", str(small_disk)).returncode == 0  # the fault is gone
    again = materialize(root, "2013-01-02", "full")
    assert again.returncode == 0, again.stdout + again.stderr

    ro = materialize(root, "2013-01-03", "read-only")
    faults += 1
    assert ro.returncode == 1
    run = last_run(root, "2013-01-03")
    assert run.status == "FAILED" and "Read-only file system" in run.error, run.error
    # Reading still works on the read-only disk: doctor, and the values already there.
    check_nothing_lost(root, expect_values={("value", "2013-01-01"): value_of(1000),
                                            ("value", "2013-01-02"): value_of(400_000)})
    assert _mount("-o", "remount,rw", str(small_disk)).returncode == 0
    again = materialize(root, "2013-01-03")
    assert again.returncode == 0, again.stdout + again.stderr
    check_nothing_lost(root, expect_values={("value", "2013-01-03"): value_of(1000)})
    record_figure("disk_faults", faults=faults, recovered=faults)


# -- the store file under a running daemon ---------------------------------------------------------------------------
def daemon_project(root: Path, gate: Path) -> Path:
    return write_project(root, [
        """
        %%asset src --partitions daily:2013-01-01..2013-12-31
        src = {"day": partition_key}
        """,
        f"""
        %%asset derived --deps src --partitions daily:2013-01-01..2013-12-31 --auto
        import pathlib, time
        _gate = pathlib.Path({str(gate)!r}) / partition_key
        if _gate.exists():  # the test holds this run here while it breaks the store
            (_gate / "entered").touch()
            while not (_gate / "go").exists():
                time.sleep(0.05)
        derived = {{"from": src["day"]}}
        """,
    ], heartbeat_timeout=15.0)  # a daemon reaps every pass: 4 s reaped live runs under heavy load


def derived_status(root: Path, day: str) -> str | None:
    store = store_of(root)
    try:
        runs = [r for r in store.list_runs(limit=100, asset="derived") if day in r.partition_keys]
        return runs[0].status if runs else None
    finally:
        store.close()


def backup(db: Path, to: Path) -> None:
    """A consistent copy (SQLite's online backup), as a user's backup job would take it."""
    src, dst = sqlite3.connect(db), sqlite3.connect(to)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def remove_store(db: Path) -> None:
    for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        p.unlink(missing_ok=True)


def test_an_open_store_whose_file_is_deleted_replaced_or_damaged_says_so_and_recovers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The short version (no kernel): what the daemon, a runner or a kernel holding the store open meets."""
    from doctor_helpers import make_project, open_project, published_run

    from notebook_orch.errors import StoreError

    root = make_project(tmp_path / "p")
    with open_project(root) as p:
        _, first = published_run(p, "a", "2013-01-01", {"v": 1})
        store = p.store
        db = Path(p.config.store_url.removeprefix("sqlite:///"))
        backup(db, tmp_path / "backup.db")
        remove_store(db)
        with pytest.raises(StoreError, match="was deleted while this process was using it; nothing was read or "
                                             "written. Put it back"):
            store.list_runs()
        with pytest.raises(StoreError, match="was deleted"):  # a run trying to start: refused, nothing half-done
            published_run(p, "a", "2013-01-02", {"v": 2})
        assert not db.exists()  # no empty store was made in its place
        shutil.copy(tmp_path / "backup.db", db)
        with caplog.at_level(logging.WARNING, logger="notebook_orch.store"):
            assert [r.status for r in store.list_runs()] == ["SUCCESS"]  # the restored file, at once
        assert "was replaced while this process was using it" in caplog.text  # said, once
        published_run(p, "a", "2013-01-03", {"v": 3})

        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        with open(db, "r+b") as f:
            f.seek(4096)
            f.write(b"\xde\xad\xbe\xef" * (db.stat().st_size // 4))
    status = nbo(root, "status")
    assert status.returncode == 2 and "Traceback" not in status.stderr, status.stderr
    assert "store" in status.stderr and ("damaged" in status.stderr or "malformed" in status.stderr), status.stderr
    doctor = nbo(root, "doctor")
    assert doctor.returncode == 1 and "restore" in doctor.stdout, doctor.stdout
    assert first.storage_path.is_file()  # the values are untouched
    remove_store(db)
    shutil.copy(tmp_path / "backup.db", db)
    with open_project(root) as p:
        published_run(p, "a", "2013-01-04", {"v": 4})
    assert nbo(root, "doctor", "--fix").returncode == 0  # the value of 01-03, recorded only in the lost file,
    record_figure("store_faults_short", faults=3, recovered=3)  # is quarantined


@pytest.mark.skipif(not LONG, reason="long version: NBO_RELIABILITY_LONG=1 (python benchmarks/run.py reliability)")
def test_the_store_deleted_replaced_or_damaged_under_the_daemon(tmp_path: Path) -> None:
    root, gate = tmp_path / "p", tmp_path / "gate"
    daemon_project(root, gate)
    db = root / ".notebook_orch" / "store.db"
    log = tmp_path / "daemon.log"
    assert nbo(root, "materialize", "src", "--partition", "2013-01-01").returncode == 0
    with open(log, "ab") as out:
        daemon = subprocess.Popen(nbo_cmd(root, "scheduler", "--interval", "0.2"), stdout=out, stderr=out,
                                  env=env())
    try:
        wait_for(lambda: "following the event log" in log.read_text(), timeout=120, what="the daemon to start")
        # Healthy: a new src partition triggers derived.
        assert nbo(root, "materialize", "src", "--partition", "2013-01-02").returncode == 0
        wait_for(lambda: derived_status(root, "2013-01-02") == "SUCCESS", timeout=180, what="the trigger")

        # 1. Deleted while a triggered run is in flight: the run cannot record anything, withdraws its value,
        #    and the daemon says what happened without dying.
        (gate / "2013-01-03").mkdir(parents=True)
        assert nbo(root, "materialize", "src", "--partition", "2013-01-03").returncode == 0
        wait_for((gate / "2013-01-03" / "entered").exists, timeout=180, what="the triggered run to start")
        backup(db, tmp_path / "backup.db")
        remove_store(db)
        (gate / "2013-01-03" / "go").touch()
        wait_for(lambda: "was deleted while this process was using it" in log.read_text(), timeout=60,
                 what="the daemon to report the deleted store")
        time.sleep(3)  # the run's finalize meets the missing store and withdraws what it published
        assert not list((root / ".notebook_orch" / "data" / "derived").glob("2013-01-03/*/_SUCCESS"))
        assert daemon.poll() is None, "the daemon died"
        shutil.copy(tmp_path / "backup.db", db)  # the fault is gone: the backup is restored
        wait_for(lambda: "was replaced while this process was using it" in log.read_text(), timeout=60,
                 what="the daemon to adopt the restored store")
        # The run the backup shows RUNNING is reaped FAILED by the daemon once its heartbeat times out.
        wait_for(lambda: derived_status(root, "2013-01-03") == "FAILED", timeout=60, what="the run to be reaped")
        # Recovery: the daemon triggers again.
        assert nbo(root, "materialize", "src", "--partition", "2013-01-04").returncode == 0
        wait_for(lambda: derived_status(root, "2013-01-04") == "SUCCESS", timeout=180, what="a trigger after")

        # 2. Damaged in place (a checkpointed file overwritten past its header): a clear error, nothing written.
        backup(db, tmp_path / "backup2.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        with open(db, "r+b") as f:
            f.seek(4096)
            f.write(b"\xde\xad\xbe\xef" * (db.stat().st_size // 4))
        doctor = nbo(root, "doctor")
        assert doctor.returncode == 1 and ("STORE_UNREADABLE" in doctor.stdout or "STORE_DAMAGED" in doctor.stdout)
        assert "restore" in doctor.stdout
        status = nbo(root, "status")
        assert status.returncode != 0 and "Traceback" not in status.stderr, status.stderr
        assert daemon.poll() is None, "the daemon died"
        remove_store(db)
        shutil.copy(tmp_path / "backup2.db", db)
        assert nbo(root, "materialize", "src", "--partition", "2013-01-05").returncode == 0
        wait_for(lambda: derived_status(root, "2013-01-05") == "SUCCESS", timeout=180, what="a trigger after")
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
    again = nbo(root, "materialize", "derived", "--partition", "2013-01-03")  # the failed one, once more
    assert again.returncode == 0, again.stdout + again.stderr
    check_nothing_lost(root, expect_values={("src", "2013-01-01"): {"day": "2013-01-01"},
                                            ("derived", "2013-01-03"): {"from": "2013-01-03"},
                                            ("derived", "2013-01-05"): {"from": "2013-01-05"}})
    text = log.read_text()
    assert text.count("was deleted while this process was using it") <= 3, text  # said, not repeated each pass
    record_figure("store_faults", faults=2, recovered=2)



