"""The staleness rules over a real SQLite store, without kernels: what ``Project.status`` and ``Project.refresh``
read back after the store's own writes (finalize_success with lineage, finalize_failure FAILED / CANCELED)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.core.status import CauseKind, Status
from notebook_orch.store import ConsumedInput, NewMaterialization

DAYS = "--partitions daily:2013-01-01..2013-01-05"
DAY = "2013-01-01"


@pytest.fixture
def project(tmp_path: Path):
    nb = new_notebook()
    nb.cells = [new_code_cell(f"%%asset raw {DAYS}\nraw = 1"),
                new_code_cell(f"%%asset clean --deps raw {DAYS}\nclean = raw"),
                new_code_cell("%%asset board --deps raw[all]\nboard = raw")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "pipe.ipynb")
    with Project(tmp_path) as p:
        yield p


def run(project: Project, asset: str, key: str, version: str = "v", reads=()) -> int:
    """One run recording ``asset[key]`` with data ``version``, having read the current values of ``reads``."""
    spec = project.graph.spec(asset)
    snap = project.store.snapshot(keys=list(reads))
    inputs = []
    for up, k in reads:
        rows = snap.assets[up]
        j = rows.partitions.index(k)
        inputs.append(ConsumedInput(up, k, rows.materialization_id[j], rows.data_version[j], rows.data_seq[j]))
    started = project.store.start_run(notebook=spec.notebook, targets=[(asset, key)], kind="manual")
    [record] = project.store.finalize_success(started.run_id, [NewMaterialization(
        asset=asset, partition=key, code_version=spec.code_version, data_version=version,
        deps_signature=spec.deps_signature, inputs=tuple(inputs))])
    return record.id


def end(project: Project, asset: str, key: str, status: str) -> str:
    started = project.store.start_run(notebook="pipe.ipynb", targets=[(asset, key)], kind="manual")
    project.store.finalize_failure(started.run_id, error="boom", status=status)
    return started.run_id


def test_a_reverted_value_and_an_incremental_refresh_agree(project: Project) -> None:
    run(project, "raw", DAY, "A")
    run(project, "clean", DAY, reads=[("raw", DAY)])
    report = project.status()
    for version, expected in (("B", Status.STALE), ("A", Status.FRESH), ("B", Status.STALE)):
        run(project, "raw", DAY, version)
        project.refresh(report)
        full = project.status()
        assert report.status("clean", DAY) == full.status("clean", DAY) == expected, version
    assert [c.kind for c in full.explain("clean", DAY).causes] == [CauseKind.UPSTREAM_DATA_CHANGED]


def test_all_over_the_partitions_that_exist(project: Project) -> None:
    for key in (DAY, "2013-01-02"):
        run(project, "raw", key, "A")
    run(project, "board", "unpartitioned", reads=[("raw", DAY), ("raw", "2013-01-02")])
    board = project.status().explain("board", "unpartitioned")
    assert (board.status, board.causes, board.notes) == (Status.FRESH, (), ("built from 2 of 5 partitions of raw",))
    run(project, "raw", "2013-01-04", "A")
    board = project.status().explain("board", "unpartitioned")
    assert [(c.kind, c.upstream_partitions) for c in board.causes] == [
        (CauseKind.UPSTREAM_DATA_CHANGED, ("2013-01-04",))]


def test_failed_and_canceled_runs_over_a_value_and_over_nothing(project: Project) -> None:
    run(project, "raw", DAY, "A")
    report = project.status()
    failed = end(project, "raw", DAY, "FAILED")
    end(project, "raw", "2013-01-02", "FAILED")
    end(project, "raw", "2013-01-03", "CANCELED")
    canceled = end(project, "clean", DAY, "CANCELED")
    changed = project.refresh(report)  # PARTITION_FAILED and PARTITION_CANCELED events both reach the report
    # MISSING -> FAILED, and what reads it; a canceled attempt over nothing (clean[DAY]) changes no status.
    assert changed == {("raw", "2013-01-02"), ("clean", "2013-01-02")}
    for rep in (report, project.status()):
        assert [rep.status("raw", k) for k in (DAY, "2013-01-02", "2013-01-03")] == [
            Status.FRESH, Status.FAILED, Status.MISSING]
        assert rep.explain("raw", DAY).notes == (
            f"the last attempt (run {failed}) failed; the value shown is from an earlier run",)
        assert rep.status("clean", DAY) == Status.MISSING
        assert rep.explain("clean", DAY).last_run_id == canceled
        assert [c.kind for c in rep.explain("clean", "2013-01-02").causes] == [CauseKind.UPSTREAM_FAILED]
