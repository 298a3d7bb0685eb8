"""Warm runs keep complete output notebooks although papermill's per-cell rewrites are throttled and the
kernel's language_info is asked for once per kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from execution_helpers import asset_cell, make_project, write_notebook

from notebook_orch.core.planning import PartitionSelection
from notebook_orch.project import Project


@pytest.mark.kernel
def test_warm_runs_write_complete_output_notebooks(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {})
    write_notebook(root / "notebooks" / "n.ipynb", ["print('not needed')", asset_cell("a", "a = [1]")])
    with Project(root) as project:
        report = project.materialize("a", partitions=PartitionSelection(start="2013-01-01", end="2013-01-04"),
                                     workers=1, mode="warm")
    assert report.ok, report.outcomes
    for outcome in report.outcomes:
        nb = nbformat.read(outcome.output_path, as_version=4)
        assert nb.metadata.language_info.name == "python"  # asked of the kernel once, kept for every run
        statuses = [c.metadata.papermill.status for c in nb.cells if c.cell_type == "code"]
        assert statuses == ["completed", "completed", "completed", "skipped", "completed"], statuses
        assert nb.metadata.papermill.end_time is not None


@pytest.mark.kernel
def test_a_run_executes_the_helper_cell_a_check_reads(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {})
    write_notebook(root / "notebooks" / "n.ipynb", [
        "MIN_ROWS = 2",
        "print('a plot, not needed')",
        asset_cell("sized", "sized = [1, 2, 3]", options="--check 'len(sized) >= MIN_ROWS'"),
    ])
    with Project(root) as project:
        report = project.materialize("sized", partitions=PartitionSelection(start="2013-01-01", end="2013-01-02"),
                                     workers=1, mode="warm")
    assert report.ok, [o.error for o in report.outcomes]
    nb = nbformat.read(report.outcomes[0].output_path, as_version=4)
    statuses = {c.source: c.metadata.papermill.status for c in nb.cells if c.cell_type == "code"}
    assert statuses["MIN_ROWS = 2"] == "completed"
    assert statuses["print('a plot, not needed')"] == "skipped"
