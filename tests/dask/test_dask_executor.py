"""The ``dask`` executor on a real local Dask cluster: real papermill and kernels on the workers, a real SQLite store
shared through the file system (all on this host). A worker killed mid-run fails that run in the store, the
backfill goes on on the other worker, and nothing is lost or run twice."""

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


def test_a_worker_killed_mid_run_fails_that_run_and_the_backfill_goes_on_without_running_anything_twice(
        tmp_path: Path, dask_cluster: Any) -> None:
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
            report = handle.wait(timeout=150)
    finally:
        flag.unlink(missing_ok=True)  # the orphaned kernel, if any, stops waiting
    by_day = {o.partition: o for o in report.outcomes}
    assert by_day[SLOW_DAY].status == "FAILED"
    assert "died" in (by_day[SLOW_DAY].error or ""), by_day[SLOW_DAY].error
    assert {d: o.status for d, o in by_day.items() if d != SLOW_DAY} == {d: "SUCCESS" for d in DAYS if d != SLOW_DAY}
    survivor = next(w.pid for w in dask_cluster.workers if w.pid != victim)
    store = _store(root)
    try:
        runs = store.list_runs(limit=100)
        assert len(runs) == len(DAYS), "a partition ran twice (or not at all)"
        failed = [r for r in runs if r.status == "FAILED"]
        assert len(failed) == 1 and failed[0].run_id == by_day[SLOW_DAY].run_id
        assert store.materializations("value", SLOW_DAY) == []
        for day in DAYS:
            if day != SLOW_DAY:
                mats = store.materializations("value", day)
                assert len(mats) == 1, f"{day}: {mats}"
    finally:
        store.close()

    # Rerunning the backfill does only what is left, on the surviving worker.
    with Project(root) as project:
        again = project.submit("value", partitions=_keys(DAYS), only_stale=True, kind="backfill",
                               executor="dask", executor_options={"address": dask_cluster.address},
                               workers=2).wait(timeout=120)
    assert [(o.partition, o.status) for o in again.outcomes] == [(SLOW_DAY, "SUCCESS")]
    store = _store(root)
    try:
        assert len(store.list_runs(limit=100)) == len(DAYS) + 1
        assert _value(root, store.materializations("value", SLOW_DAY)[0])["pid"] == survivor
    finally:
        store.close()


def _keys(days: list[str]) -> Any:
    from notebook_orch.core.planning import PartitionSelection

    return PartitionSelection(keys=tuple(days))
