"""Turning automation on after a burst does not flood: the daemon's first pass starts following at the newest
event, so only what changes afterwards reaches a join (store writes directly, no kernel: fast)."""

from __future__ import annotations

from pathlib import Path

from sched_helpers import make_project

from notebook_orch import Project
from notebook_orch.scheduler import Scheduler
from notebook_orch.store.records import NewMaterialization


def _write(p: Project, key: str, *, data: str = "d1") -> None:
    mats = [NewMaterialization(asset=a, partition=key, data_version=f"{a}-{data}",
                               code_version=p.graph.spec(a).code_version) for a in ("a", "b")]
    run = p.store.start_run(notebook="notebooks/pipe.ipynb", targets=[("a", key), ("b", key)], kind="manual")
    p.store.finalize_success(run.run_id, mats)


def test_a_burst_before_automation_starts_nothing_and_a_later_change_starts_only_its_partition(tmp_path: Path):
    root = make_project(tmp_path / "p")
    with Project(root) as p:
        for day in range(1, 21):
            _write(p, f"2024-02-{day:02d}")  # 20 partitions of a and b, all fresh, before any daemon ran
        daemon = Scheduler(p)
        first = daemon.run_once()
        assert first.leader and first.triggered == [] and first.events == 0
        assert p.store.scheduling.pending() == []
        assert daemon.preview().start == ()  # nothing from the burst
        _write(p, "2024-03-01")
        plan = daemon.preview()
        assert plan.start == (("joined", "2024-03-01"),)
        assert p.store.scheduling.pending() == []  # preview wrote nothing
        # The same data again (same data versions) after the daemon has read the first write reaches nothing.
        p.store.scheduling.save_cursor(p.store.last_event_id())
        _write(p, "2024-03-01")
        assert Scheduler(p).preview().start == ()
        _write(p, "2024-03-01", data="d2")  # new data does reach it
        assert Scheduler(p).preview().start == (("joined", "2024-03-01"),)
        daemon.sched.release_lease(daemon.holder)
