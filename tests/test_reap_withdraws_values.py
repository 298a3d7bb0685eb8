"""Reaping a run whose process died also withdraws the values its kernel had already published."""

from datetime import datetime, timedelta
from pathlib import Path

from notebook_orch import Project
from notebook_orch.storage import SUCCESS, ValueStore
from notebook_orch.store import NewMaterialization

T0 = datetime(2026, 1, 1)


def test_reaped_runs_leave_no_published_values(tmp_path: Path):
    with Project(tmp_path) as project:
        values = ValueStore(project.config.data_dir)
        store = project.store
        # A run that finished: its value is recorded and must stay.
        done = store.start_run(notebook="nb.ipynb", targets=[("a", "p1")], kind="manual", now=T0)
        kept = values.publish("a", "p1", {"x": 1}, run_id=done.run_id)
        store.finalize_success(done.run_id, [NewMaterialization(
            asset="a", partition="p1", code_version="c", data_version=kept.data_version,
            storage_path=str(kept.storage_path))], now=T0)
        # A run whose runner was killed after its kernel published one value and staged another.
        dead = store.start_run(notebook="nb.ipynb", targets=[("a", "p2"), ("b", "p2")], kind="manual", now=T0)
        orphan = values.publish("a", "p2", {"x": 2}, run_id=dead.run_id)
        staged = values.stage("b", "p2", {"y": 3}, run_id=dead.run_id)
        assert (orphan.path / SUCCESS).exists() and staged.temp_dir.exists()

        assert project.reap(now=T0 + timedelta(seconds=30)) == []  # still within the heartbeat timeout
        reaped = project.reap(now=T0 + timedelta(hours=1))
        assert [r.run_id for r in reaped] == [dead.run_id] and reaped[0].status == "FAILED"
        assert not orphan.path.exists() and not staged.temp_dir.exists()
        assert values.latest_published("a", "p2") is None
        assert values.load(kept) == {"x": 1} and (kept.path / SUCCESS).exists()
