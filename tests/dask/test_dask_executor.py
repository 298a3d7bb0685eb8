"""The ``dask`` executor on a real local Dask cluster: real papermill and kernels on the workers, a real SQLite store
shared through the file system (all on this host). A worker killed mid-run: its attempt is recorded FAILED, the
next attempt runs on the other worker, and every partition ends SUCCEEDED exactly once."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.slow

DAYS = [f"2013-01-0{d}" for d in range(1, 7)]
SLOW_DAY = "2013-01-02"


def _project(root: Path, flag: Path, started: Path, store: str | None = None) -> Path:
    """One asset, daily partitions; its value records the pid of the process that ran the kernel (a Dask worker).
    While ``flag`` exists, partition SLOW_DAY writes that pid to ``started`` and waits."""
    body = textwrap.dedent(f"""
        %%asset value --partitions daily:2013-01-01..2013-01-31
        import os, pathlib, time
        if partition_key == {SLOW_DAY!r} and pathlib.Path({str(flag)!r}).exists():
            pathlib.Path({str(started)!r}).write_text(str(os.getppid()))
            for _ in range(600):
                if not pathlib.Path({str(flag)!r}).exists():
                    break
                time.sleep(0.1)
        value = {{"day": partition_key, "pid": os.getppid()}}
        """).strip()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('partition_key = "2013-01-01"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("%load_ext notebook_orch"), params, nbformat.v4.new_code_cell(body)]
    (root / "notebooks").mkdir(parents=True)
    nbformat.write(nb, str(root / "notebooks" / "days.ipynb"))
    table = '[tool.notebook_orch]\nnotebooks = "notebooks"\n' + (f'store = "{store}"\n' if store else "")
    (root / "pyproject.toml").write_text(table, encoding="utf-8")
    return root


def _store(root: Path) -> Any:
    from notebook_orch.project import Project
    from notebook_orch.store import open_store

    with Project(root) as project:
        return open_store(project.config.store_url)


def _value(root: Path, record: Any) -> dict:
    path = Path(record.storage_path)
    assert (path.parent / "_SUCCESS").is_file(), f"{path} is not published"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def postgres_url() -> Any:
    from notebook_orch.store.pg_server import PostgresUnavailable, TemporaryPostgres

    try:
        server = TemporaryPostgres().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server.create_database("dask")
    finally:
        server.stop()


def test_a_backfill_on_a_dask_cluster_with_a_postgresql_store_records_each_partition_once(
        tmp_path: Path, dask_cluster: Any, postgres_url: str) -> None:
    """The multi-host set-up on one host: workers reach the store over TCP (the SQLite store is the next test's)."""
    from notebook_orch.project import Project

    root = _project(tmp_path / "proj", tmp_path / "no-flag", tmp_path / "started", store=postgres_url)
    with Project(root) as project:
        report = project.submit("value", partitions=_keys(DAYS[:4]), only_stale=True, kind="backfill",
                                executor="dask", executor_options={"address": dask_cluster.address},
                                workers=2).wait(timeout=150)
    assert [o.status for o in report.outcomes] == ["SUCCESS"] * 4, [o.error for o in report.outcomes]
    store = _store(root)
    try:
        runs = store.list_runs(limit=100)
        assert sorted(r.status for r in runs) == ["SUCCESS"] * 4
        worker_pids = {w.pid for w in dask_cluster.workers}
        for day in DAYS[:4]:
            mats = store.materializations("value", day)
            assert len(mats) == 1, f"{day}: {mats}"
            value = _value(root, mats[0])
            assert value["day"] == day
            assert value["pid"] in worker_pids, "the notebook ran outside the Dask workers"
    finally:
        store.close()


def test_a_worker_killed_mid_backfill_is_retried_on_the_other_worker_and_every_partition_succeeds_once(
        tmp_path: Path, dask_cluster: Any) -> None:
    """The asset declares no --retries: a worker's death is no failure of the notebook, so the store records the
    dead attempt FAILED (what it published withdrawn) and attempt 2 runs on the surviving worker."""
    from notebook_orch.project import Project

    flag, started = tmp_path / "slow", tmp_path / "started"
    root = _project(tmp_path / "proj", flag, started)
    flag.write_text("wait in the asset cell")
    try:
        with Project(root) as project:
            handle = project.submit("value", partitions=_keys(DAYS), only_stale=True, kind="backfill",
                                    executor="dask", executor_options={"address": dask_cluster.address}, workers=2)
            deadline = time.monotonic() + 120
            while not started.exists() or not started.read_text():
                assert time.monotonic() < deadline, "the slow run never started"
                assert not handle.done(), handle.wait().outcomes
                time.sleep(0.1)
            victim = int(started.read_text())
            assert victim in {w.pid for w in dask_cluster.workers}
            os.kill(victim, 9)
            # The killed worker's kernel notices its parent is gone within a second or two and exits; only then may
            # the slow partition go on (the retry may already be waiting in the cell: it goes on too).
            time.sleep(3)
            flag.unlink()
            report = handle.wait(timeout=180)
    finally:
        flag.unlink(missing_ok=True)
    survivor = next(w.pid for w in dask_cluster.workers if w.pid != victim)
    by_day = {o.partition: o for o in report.outcomes}
    assert {d: o.status for d, o in by_day.items()} == {d: "SUCCESS" for d in DAYS}, [o.error for o in report.outcomes]
    store = _store(root)
    try:
        runs = store.list_runs(limit=100)
        assert len(runs) == len(DAYS) + 1, "a partition ran more than once more (or not at all)"
        slow = sorted((r for r in runs if r.partition_keys == (SLOW_DAY,)), key=lambda r: r.attempt)
        assert [(r.attempt, r.status) for r in slow] == [(1, "FAILED"), (2, "SUCCESS")]
        assert "died" in (slow[0].error or "")
        assert {r.status for r in runs if r.partition_keys != (SLOW_DAY,)} == {"SUCCESS"}
        for day in DAYS:  # exactly one materialization each: nothing lost, nothing recorded twice
            mats = store.materializations("value", day)
            assert len(mats) == 1, f"{day}: {mats}"
            assert _value(root, mats[0])["day"] == day
        slow_mat = store.materializations("value", SLOW_DAY)[0]
        assert slow_mat.run_id == slow[1].run_id and _value(root, slow_mat)["pid"] == survivor
        # Nothing of the dead attempt stayed published beside the value the store points at.
        folder = Path(slow_mat.storage_path).parent.parent
        assert [p for p in folder.iterdir() if (p / "_SUCCESS").is_file()] == [Path(slow_mat.storage_path).parent]
    finally:
        store.close()


def _keys(days: list[str]) -> Any:
    from notebook_orch.core.planning import PartitionSelection

    return PartitionSelection(keys=tuple(days))
