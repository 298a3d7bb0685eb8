"""External sources: a partition is recorded when its marker appears, never before; the same marker again records
nothing, new content records a new data version; readers wait on it like on any asset; a source is never run.
The fast tests drive the daemon's observer and preview in-process (no kernel); the slow one runs the daemon as a
real process and a real kernel reads the files."""

from __future__ import annotations

import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sched_helpers import daemon
from sched_helpers import until as _until

from notebook_orch import Project
from notebook_orch.core.planning import PlanError
from notebook_orch.scheduler import Scheduler

KEY = "2024-01-03"


def _project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_code_cell("%load_ext notebook_orch"),
        new_code_cell('%%asset raw --partitions daily:2024-01-01 --source "landing/{partition}/" --marker _SUCCESS\n'
                      "# written by the upstream system"),
        new_code_cell("%%asset orders --deps raw --partitions daily:2024-01-01 --auto\n"
                      "orders = sorted(p.name + ':' + p.read_text() for p in raw.glob('*.csv'))"),
    ]
    nbformat.write(nb, root / "notebooks" / "orders.ipynb")
    return root


def _land(root: Path, key: str, *, marker: str | None, rows: str = "1,2") -> Path:
    folder = root / "landing" / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-0.csv").write_text(rows)
    if marker is not None:
        (folder / "_SUCCESS").write_text(marker)
    return folder


def test_a_marker_records_the_partition_once_and_its_readers_become_ready(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    now = datetime.now(timezone.utc)
    with Project(root) as p:
        assert p.problems() == []  # the source cell assigns nothing, and needs not
        sched = Scheduler(p)
        sched.sources.min_interval_s = 0
        assert sched.run_once().leader
        folder = _land(root, KEY, marker=None)  # half-written: files, no marker
        assert sched.sources.observe(now) == [] and sched.preview().start == ()
        (folder / "_SUCCESS").write_text("")
        assert sched.sources.observe(now) == [("raw", KEY)]
        [run] = [r for r in p.store.list_runs(limit=10) if r.kind == "observe"]
        [mat] = p.store.materializations("raw", KEY)
        assert (run.status, run.assets, mat.storage_path, mat.io) == ("SUCCESS", ("raw",), str(folder), "source")
        assert sched.preview().start == (("orders", KEY),)
        assert sched.sources.observe(now) == []  # the same marker: nothing new
        fresh = Scheduler(p)  # a restarted daemon reads the markers again and records nothing unchanged
        assert fresh.sources.observe(now) == []
        time.sleep(0.01)
        (folder / "_SUCCESS").write_text("batch-2")  # the writer says: new content
        assert sched.sources.observe(now) == [("raw", KEY)]
        versions = [m.data_version for m in p.store.materializations("raw", KEY)]
        assert len(versions) == 2 and versions[0] != versions[1]
        with pytest.raises(PlanError, match="'raw' is an external source"):
            p.submit("raw")
        sched.sched.release_lease(sched.holder)


@pytest.mark.slow
def test_the_daemon_runs_the_reader_when_the_marker_appears_and_never_before(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    with Project(root) as p:
        p.store.last_event_id()
    log = tmp_path / "daemon.log"
    d = daemon(root, log=log)
    try:
        with Project(root) as p:
            _until(lambda: p.store.scheduling.cursor() is not None, 60)
        _land(root, "2024-01-02", marker=None)  # never completed
        folder = _land(root, KEY, marker=None, rows="a,b")
        time.sleep(3)  # several passes: no marker, nothing recorded, nothing run
        assert _runs(root) == []
        (folder / "_SUCCESS").write_text("")
        done = _until(lambda: [r for r in _runs(root) if r.kind == "trigger" and r.status == "SUCCESS"], 180)
        assert [(r.assets, r.partition_keys) for r in done] == [(("orders",), (KEY,))]
        with Project(root) as p:
            from notebook_orch.storage import ValueStore

            values = ValueStore(p.config.data_dir)
            assert values.load(values.latest_published("orders", KEY)) == ["part-0.csv:a,b"]
            assert p.store.materializations("raw", "2024-01-02") == []
    finally:
        d.send_signal(signal.SIGTERM)
        assert d.wait(timeout=60) == 0
    assert "source raw: recorded 2024-01-03" in log.read_text()


def _runs(root: Path) -> list:
    with Project(root) as p:
        return [r for r in p.store.list_runs(limit=100) if r.kind != "observe"]


def test_doctor_finds_nothing_wrong_with_an_observed_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from notebook_orch.faces.cli import main

    root = _project(tmp_path / "p")
    _land(root, KEY, marker="b1")
    with Project(root) as p:
        assert Scheduler(p).sources.observe(datetime.now(timezone.utc)) == [("raw", KEY)]
    code = main(["-C", str(root), "doctor"])
    out = capsys.readouterr().out
    assert code == 0 and "consistent (1 runs, 1 materializations" in out, out
