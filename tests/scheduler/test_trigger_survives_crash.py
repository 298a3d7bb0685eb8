"""A trigger decided by a daemon that dies before the run it submitted is recorded is not lost: the join stays
pending in the store until the store records the run, so the next daemon decides it again and starts it. (Found
by the reliability suite's daemon kills: a kernel booting early under the worker made the kill land between the
daemon's decision and the worker's start of the run, and the trigger was gone.)"""

from __future__ import annotations

import time
from pathlib import Path

from sched_helpers import make_project

from notebook_orch import Project
from notebook_orch.core.planning import PartitionSelection
from notebook_orch.scheduler import Scheduler

KEY = "2024-03-01"


class _NeverStarted:
    """What the daemon holds after submitting when it is killed before the worker records the run: a handle whose
    run never reaches the store."""

    run_ids = ("never-recorded",)

    def done(self) -> bool:
        return False


def _write(p: Project, key: str) -> None:
    report = p.materialize("a,b", partitions=PartitionSelection(keys=(key,)))
    assert [o.status for o in report.outcomes] == ["SUCCESS"]


def test_a_join_stays_pending_until_its_run_is_recorded_and_a_successor_starts_it(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    with Project(root) as p:
        dying = Scheduler(p, holder="dying", lease_ttl_s=0.5)
        dying.run_once()  # follows from now
        _write(p, KEY)
        p.submit = lambda *a, **k: _NeverStarted()  # the daemon dies right after this submit
        report = dying.run_once()
        assert report.triggered == [("joined", KEY)]
        assert p.store.scheduling.pending() == [("joined", KEY)]  # not recorded: still pending
        assert dying.run_once().triggered == []  # and this daemon does not start it a second time
    time.sleep(0.6)  # the dead daemon's lease expires
    with Project(root) as p:
        successor = Scheduler(p, holder="successor")
        report = successor.run_once()
        assert report.leader and report.triggered == [("joined", KEY)]
        successor.finish()  # waits for the run
        runs = [r for r in p.store.list_runs(limit=20) if r.kind == "trigger"]
        assert [(r.assets, r.partition_keys, r.status) for r in runs] == [(("joined",), (KEY,), "SUCCESS")]
        successor.run_once()  # the run is recorded (and finished): the join is no longer pending
        assert p.store.scheduling.pending() == []
        successor.sched.release_lease(successor.holder)
