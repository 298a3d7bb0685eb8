"""Declarations edited while the daemon runs are applied without a restart (a real daemon process, real runs):
`--auto` added to an asset starts it when its upstream materializes; a declaration that breaks makes its asset
INVALID — logged, never started, the daemon keeps running — and once fixed, its held join runs."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sched_helpers import daemon, nbo, until

from notebook_orch import Project
from notebook_orch.scheduler import Scheduler
from notebook_orch.scheduler.notebooks import describe_changes

DAILY = "--partitions daily:2024-01-01"


def _write(root: Path, *, later: str = "", joined: str = DAILY) -> None:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_code_cell("%load_ext notebook_orch"),
        new_code_cell(f"%%asset a {DAILY}\na = {{'k': partition_key}}"),
        new_code_cell(f"%%asset b {DAILY}\nb = {{'k': partition_key}}"),
        new_code_cell(f"%%asset joined --deps a,b {joined} --auto\njoined = {{'a': a, 'b': b}}"),
        new_code_cell(f"%%asset later --deps a {DAILY}{later}\nlater = {{'a': a}}"),
    ]
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / "notebooks" / "pipe.ipynb")


def _triggered(root: Path) -> list[tuple[tuple[str, ...], str]]:
    with Project(root) as p:
        return sorted((r.assets, r.status) for r in p.store.list_runs(limit=100) if r.kind == "trigger")


@pytest.mark.slow
def test_auto_added_and_a_declaration_broken_and_fixed_while_the_daemon_runs(tmp_path: Path) -> None:
    root = tmp_path / "p"
    _write(root)
    key = "2024-01-03"
    with Project(root) as p:
        p.store.last_event_id()  # create the store before the daemon and the CLI race to
    log = tmp_path / "daemon.log"
    d = daemon(root, log=log)
    try:
        with Project(root) as p:
            until(lambda: p.store.scheduling.cursor() is not None, 60)
        _write(root, later=" --auto")
        until(lambda: "notebooks changed: later: --auto on" in log.read_text(), 30)
        assert nbo(root, "materialize", "a", "--partition", key).returncode == 0
        until(lambda: ((("later",), "SUCCESS")) in _triggered(root), 180)

        _write(root, later=" --auto", joined="--partitions daily:not-a-date")
        until(lambda: "notebooks changed: joined: INVALID, not triggered until fixed" in log.read_text(), 30)
        assert nbo(root, "materialize", "b", "--partition", key).returncode == 0
        time.sleep(3)  # several passes read b's event: joined's join is complete, but joined is INVALID
        assert _triggered(root) == [(("later",), "SUCCESS")]
        assert d.poll() is None

        _write(root, later=" --auto")  # fixed: the join held while it was INVALID runs, no new event needed
        until(lambda: ((("joined",), "SUCCESS")) in _triggered(root), 180)
    finally:
        d.send_signal(signal.SIGTERM)
        assert d.wait(timeout=60) == 0
    text = log.read_text()
    assert "trigger: started later for 2024-01-03" in text and "notebooks changed: joined: valid again" in text
    assert _triggered(root) == [(("joined",), "SUCCESS"), (("later",), "SUCCESS")]


def test_describe_changes_names_what_the_scheduler_acts_on() -> None:
    base = {"auto": False, "trigger": None, "sla": None, "source": None, "schedule": None,
            "declaration": ((), "daily", 0, "_SUCCESS"), "code": "c1"}
    old = {"x": base, "y": base, "gone": base, "broken": {"invalid": "cell 2: bad"}}
    new = {"x": {**base, "auto": True, "sla": "06:00"}, "y": {**base, "code": "c2"}, "broken": base,
           "fresh": {**base, "trigger": "a | b"}, "now_bad": {"invalid": "pipe.ipynb, cell 3: unknown dep"}}
    assert describe_changes(old, new) == [
        "broken: valid again",
        "fresh: added (--trigger 'a | b')",
        "gone: removed (no longer declared in any notebook)",
        "now_bad: INVALID, not triggered until fixed: pipe.ipynb, cell 3: unknown dep",
        "x: --auto on; --sla '06:00' on",
        "y: code changed",
    ]
    assert describe_changes(old, old) == []


def test_a_source_declared_while_the_daemon_runs_is_observed_at_the_next_pass(tmp_path: Path) -> None:
    root = tmp_path / "p"
    _write(root)
    (root / "landing" / "2024-01-03").mkdir(parents=True)
    (root / "landing" / "2024-01-03" / "_SUCCESS").write_text("batch 1")
    with Project(root) as p:
        sched = Scheduler(p)
        sched.sources.min_interval_s = 0
        assert sched.run_once().leader and not sched.sources.watching
        nb = nbformat.read(root / "notebooks" / "pipe.ipynb", as_version=4)
        nb.cells.append(new_code_cell('%%asset raw --partitions daily:2024-01-01 --source "landing/{partition}/"'))
        nbformat.write(nb, root / "notebooks" / "pipe.ipynb")
        report = sched.run_once()  # no restart: the edit is read, the marker recorded
        assert report.observed == 1 and sched.sources.watching
        [m] = p.store.materializations("raw", "2024-01-03", limit=5)
        nb.cells.pop()  # the source removed again: nothing more is observed
        nbformat.write(nb, root / "notebooks" / "pipe.ipynb")
        (root / "landing" / "2024-01-03" / "_SUCCESS").write_text("batch 2")
        assert sched.run_once().observed == 0 and not sched.sources.watching
        sched.finish()


def test_a_notebook_being_written_is_read_once_it_is_whole(tmp_path: Path) -> None:
    from notebook_orch.scheduler.notebooks import HALF_WRITTEN_PASSES, NotebookWatch

    root = tmp_path / "p"
    _write(root)
    path = root / "notebooks" / "pipe.ipynb"
    whole = path.read_text()
    with Project(root) as p:
        watch = NotebookWatch(p)
        assert watch.check() == []
        path.write_text(whole[: len(whole) // 2])  # an editor writing in place, caught half-way
        assert watch.check() == [] and "later" in p.graph  # the assets are kept, not dropped for a pass
        _write(root, later=" --auto")
        assert watch.check() == ["later: --auto on"]
        path.write_text("{not json")  # still broken after several passes: read, and shown as a problem
        for _ in range(HALF_WRITTEN_PASSES):
            assert watch.check() == []
        lines = watch.check()
        assert "a: removed (no longer declared in any notebook)" in lines
        assert any(x.startswith("problem: notebooks/pipe.ipynb: The notebook is not valid JSON") for x in lines)


def test_a_schedule_declared_while_the_daemon_runs_is_stored_at_the_next_pass(tmp_path: Path) -> None:
    root = tmp_path / "p"
    _write(root)
    with Project(root) as p:
        sched = Scheduler(p)
        assert sched.run_once().leader and p.store.scheduling.list_schedules() == []
        _write(root, later=" --schedule '0 6 * * *'")
        sched.run_once()
        assert [(s.name, s.cron, s.origin) for s in p.store.scheduling.list_schedules()] == [
            ("later", "0 6 * * *", "asset")]
        _write(root)  # and removed again
        sched.run_once()
        assert p.store.scheduling.list_schedules() == []
        sched.finish()


def test_a_declared_schedule_survives_its_notebook_being_unreadable(tmp_path: Path) -> None:
    """A notebook that cannot be read hides its assets from the graph; that is not the user removing their
    --schedule, so the stored schedule (and its paused state) stays until the notebook reads again."""
    root = tmp_path / "p"
    _write(root, later=" --schedule '0 6 * * *'")
    path = root / "notebooks" / "pipe.ipynb"
    with Project(root) as p:
        sched = Scheduler(p)
        sched.run_once()
        p.store.scheduling.set_paused("later", True)
        path.write_text("{not json")
        p.reload()
        assert "later" not in p.graph and p.graph.other_problems
        sched.run_once()
        kept = p.store.scheduling.list_schedules()
        assert [(s.name, s.paused) for s in kept] == [("later", True)]
        _write(root)  # readable again, without the --schedule: now it is removed
        p.reload()
        sched.run_once()
        assert p.store.scheduling.list_schedules() == []
        sched.finish()
