"""The store file overwritten in place (same file, not deleted nor replaced by a rename) while the scheduler daemon
runs: damaged pages in the middle (found by the daemon's periodic ``quick_check``) and a clobbered header (found by
every process at its next operation). Each time the daemon says so, naming the file and what to do, every process
stops writing to it (the daemon's note beside the file), and all recover once a backup is restored.

No kernel: the daemon has nothing to run; the writes are runs recorded through the same lifecycle runs use."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _shared_helpers import wait_for
from doctor_helpers import make_project, open_project, published_run
from reliability_helpers import env, nbo, nbo_cmd, record_figure

from notebook_orch.errors import StoreError

FILE_CHECK_S = 10.0  # file_guard.DEEP_EVERY_S: quick_check at most this often


def backup(db: Path, to: Path) -> None:
    src, dst = sqlite3.connect(db), sqlite3.connect(to)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def restore(db: Path, saved: Path) -> None:
    """What the error tells the user to do: the file and its -wal/-shm removed, the backup copied as a new file."""
    for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        p.unlink(missing_ok=True)
    saved_copy = db.with_name("restoring.db")
    saved_copy.write_bytes(saved.read_bytes())
    saved_copy.rename(db)


def files(db: Path) -> tuple[bytes, bytes]:
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes(), wal.read_bytes() if wal.exists() else b""


def followed(db: Path) -> bool:
    """The daemon saved its event cursor at the newest event of the file."""
    from notebook_orch.store import open_store

    with open_store(f"sqlite:///{db}") as store:
        return store.scheduling.cursor() == store.last_event_id()


def lease_expiry(db: Path):
    from notebook_orch.store import open_store

    with open_store(f"sqlite:///{db}") as store:
        lease = store.scheduling.lease()
    return lease[1] if lease else None


def test_a_store_overwritten_in_place_under_the_daemon_is_found_refused_and_recovered(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    with open_project(root) as p:
        published_run(p, "a", "2013-01-01", {"v": 1})
        db = Path(p.config.store_url.removeprefix("sqlite:///"))
    log = tmp_path / "daemon.log"
    with open(log, "ab") as out:
        daemon = subprocess.Popen(nbo_cmd(root, "scheduler", "--interval", "0.2"), stdout=out, stderr=out,
                                  env=env())
    try:
        wait_for(lambda: "following the event log" in log.read_text(), timeout=120, what="the daemon to start")
        saved = tmp_path / "backup.db"
        backup(db, saved)
        note = db.with_name(db.name + ".damaged")
        # Events the backup will not have: the daemon follows them, its cursor then lies beyond the restored log.
        with open_project(root) as p:
            published_run(p, "a", "2013-01-02", {"v": 2})
        wait_for(lambda: followed(db), timeout=30, what="the daemon to follow the new events")

        # 1. Pages in the middle overwritten in place (the header intact): the daemon's quick_check finds it.
        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        size = db.stat().st_size
        with open(db, "r+b") as f:
            f.seek(2 * 8192)
            f.write(b"\xde\xad\xbe\xef" * ((size - 2 * 8192) // 4))
        found = time.monotonic()
        wait_for(lambda: f"The store file {db} is damaged" in log.read_text(), timeout=FILE_CHECK_S + 20,
                 what="the daemon to find the damage")
        took = time.monotonic() - found
        text = log.read_text()
        assert "quick_check" in text and "copy a good backup" in text and "-wal and -shm" in text, text[-2000:]
        assert note.exists(), "the daemon left no note for the other processes"
        before = files(db)
        with open_project(root) as p:  # another process's writer: refused by the note, nothing written
            with pytest.raises(StoreError, match="is damaged"):
                published_run(p, "a", "2013-01-02", {"v": 2})
        status = nbo(root, "status")
        assert status.returncode != 0 and str(db) in status.stderr and "Traceback" not in status.stderr, status.stderr
        time.sleep(6)  # a daemon pass at rest or more: it writes nothing either (no lease renewal)
        assert files(db) == before, "something wrote into the damaged file"
        assert daemon.poll() is None, "the daemon died"
        assert log.read_text().count(f"The store file {db} is damaged") == 1, "said more than once"

        restore(db, saved)
        wait_for(lambda: "was restored after it was found damaged" in log.read_text()
                 or "was replaced while this process" in log.read_text(), timeout=30,
                 what="the daemon to take the restored file")
        restored_lease = lease_expiry(saved)
        wait_for(lambda: (lease_expiry(db) or restored_lease) > restored_lease, timeout=30,
                 what="the daemon to renew its lease in the restored file")
        assert "following its event log again from its saved cursor" in log.read_text()
        with open_project(root) as p:  # new events get ids the daemon had seen in the lost file: still followed
            published_run(p, "a", "2013-01-03", {"v": 3})
        wait_for(lambda: followed(db), timeout=30, what="the daemon to follow the restored file's new events")
        assert not note.exists()

        # 2. The header overwritten in place: the next operation of any process that holds the store open refuses.
        backup(db, saved)
        with open_project(root) as p:
            store = p.store
            store.list_runs()
            with open(db, "r+b") as f:
                f.write(b"not a database, overwritten by cp")
            with pytest.raises(StoreError, match="was overwritten in place while this process was using it"):
                store.list_runs()
            with pytest.raises(StoreError, match="overwritten in place"):
                published_run(p, "a", "2013-01-04", {"v": 4})
        wait_for(lambda: "was overwritten in place" in log.read_text(), timeout=30,
                 what="the daemon to find the header overwritten")
        assert daemon.poll() is None, "the daemon died"
        restore(db, saved)
        wait_for(lambda: log.read_text().count("was restored after it was found damaged")
                 + log.read_text().count("was replaced while this process") >= 2, timeout=30,
                 what="the daemon to take the restored file again")
        with open_project(root) as p:
            published_run(p, "a", "2013-01-05", {"v": 5})
            assert [r.status for r in p.store.list_runs()] == ["SUCCESS"] * 3
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    doctor = nbo(root, "doctor", "--fix")  # the values of the runs recorded only in the lost files: quarantined
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert nbo(root, "doctor").returncode == 0
    record_figure("store_overwritten", faults=2, recovered=2, found_after_s=round(took, 1))


def test_damage_no_read_met_is_found_by_the_periodic_quick_check_and_shared_with_other_processes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Pages no operation reads (a table nobody queried yet) damaged in place: only quick_check can tell; once it
    did, a store opened afterwards (another process: the note beside the file) refuses too, until a restore."""
    from notebook_orch.store import file_guard, open_store

    monkeypatch.setattr(file_guard, "DEEP_EVERY_S", 0.0)
    db = tmp_path / "store.db"
    with open_store(f"sqlite:///{db}") as store:
        store.list_runs()
        saved = tmp_path / "backup.db"
        backup(db, saved)
        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        size = db.stat().st_size
        with open(db, "r+b") as f:
            f.seek(size - 8192)  # the last page
            f.write(b"\xde\xad\xbe\xef" * 2048)
        before = files(db)
        with pytest.raises(StoreError, match=f"The store file {db} is damaged .*quick_check.*copy a good backup"):
            store.check_file()
        with pytest.raises(StoreError, match="is damaged"):  # from then on, every operation
            store.list_runs()
        subprocess.run([sys.executable, "-c", CHILD, str(db)], check=True, env=env(), timeout=120)
        assert files(db) == before
        restore(db, saved)
        with caplog.at_level(logging.WARNING, logger="notebook_orch.store"):
            assert store.list_runs() == []  # the restored file, at once
        assert "was restored after it was found damaged" in caplog.text
        store.check_file()
    assert not db.with_name("store.db.damaged").exists()


CHILD = """
import sys
from notebook_orch.errors import StoreError
from notebook_orch.store import open_store
try:
    store = open_store('sqlite:///' + sys.argv[1])
    store.start_run(notebook='nb.ipynb', targets=[('a', 'k')], kind='manual')
except StoreError as exc:
    assert 'is damaged' in str(exc), exc
else:
    raise SystemExit('another process wrote into the damaged file')
"""
