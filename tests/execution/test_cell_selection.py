"""What a run executes is what the code version hashes (issue 6, defect 1).

A run executes its selected asset cells, the helper cells their code versions count, the ``%load_ext notebook_orch``
cell, papermill's parameters cells and cells tagged ``nbo-setup`` — and nothing else. Every other code cell is
skipped and marked as skipped in the output notebook. Real projects, real papermill, real kernels, in both modes.

The notebook ``mixed.ipynb`` (cells counted from 0 as nbformat does; 0 loads the extension, 1 holds the parameters):

2. ``FACTOR = 3``              helper of ``scaled``
3. ``%%asset scaled``          reads FACTOR
4. ``%%asset delay_rank``      the asset that is not selected in these runs
5. ``delay_rank``              a display cell naming it (NameError when it runs in a run of ``scaled``)
6. ``print(...)``              a plot/print cell nobody needs
7. ``%nbo status``             slow inside a run, and pointless
8. ``%nbo materialize ...``    would start nested runs from inside the run
9. (tagged nbo-setup)          a side-effect-only set-up cell: writes a marker file
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from execution_helpers import (
    asset_cell,
    cell_text,
    make_project,
    open_project,
    output_cells,
    printed,
    read_value,
    runs_of,
)

from notebook_orch.core.planning import PartitionSelection

pytestmark = pytest.mark.kernel

DAY = "2013-01-02"
ONE_DAY = PartitionSelection(keys=(DAY,))
SETUP_TAG = "nbo-setup"


def _tag(notebook: Path, index: int, tag: str) -> None:
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells[index].metadata.setdefault("tags", []).append(tag)
    nbformat.write(nb, str(notebook))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("mixed")
    markers = root / "markers"
    markers.mkdir()
    make_project(root, {"mixed": [
        "FACTOR = 3",
        asset_cell("scaled", 'scaled = {"day": partition_key, "n": FACTOR * int(partition_key[-2:])}'),
        asset_cell("delay_rank", 'delay_rank = {"rank": 1}'),
        "delay_rank",
        'print("a plot nobody needs")',
        "%nbo status",
        "%nbo materialize delay_rank --partition 2013-01-03",
        f"import pathlib\npathlib.Path({str(markers)!r}, nbo_run['run_id']).write_text(partition_key)",
    ]})
    _tag(root / "notebooks" / "mixed.ipynb", 9, SETUP_TAG)
    out = {"root": root, "markers": markers}
    with open_project(root) as project:
        for mode in ("warm", "fresh"):
            out[mode] = project.materialize("scaled", partitions=ONE_DAY, workers=1, mode=mode)
    out["runs"] = runs_of(root)
    return out


@pytest.mark.parametrize("mode", ["warm", "fresh"])
def test_a_display_cell_naming_an_unselected_asset_does_not_fail_the_run(mixed: dict, mode: str) -> None:
    report = mixed[mode]
    assert [(o.status, o.assets, o.error) for o in report.outcomes] == [("SUCCESS", ("scaled",), None)]
    assert read_value(mixed["root"], "scaled", DAY) == {"day": DAY, "n": 6}  # the helper ran: FACTOR = 3


def test_a_saved_nbo_materialize_cell_starts_no_nested_run(mixed: dict) -> None:
    # Exactly the two runs the test started (one per mode), nothing for delay_rank.
    assert sorted((r.assets, r.status) for r in mixed["runs"]) == [(("scaled",), "SUCCESS")] * 2


@pytest.mark.parametrize("mode", ["warm", "fresh"])
def test_the_output_notebook_marks_every_cell_the_run_did_not_need(mixed: dict, mode: str) -> None:
    [outcome] = mixed[mode].outcomes
    [run] = [r for r in mixed["runs"] if r.run_id == outcome.run_id]
    cells = [c for c in output_cells(run) if c["cell_type"] == "code"]
    by_source = {cell_text(c).split("\n")[0]: c for c in cells}
    skipped = [cell_text(c).split("\n")[0] for c in cells if c["metadata"].get("notebook_orch", {}).get("skipped")]
    assert skipped == ['%%asset delay_rank --partitions daily:2013-01-01..2013-01-31', "delay_rank",
                       'print("a plot nobody needs")', "%nbo status",
                       "%nbo materialize delay_rank --partition 2013-01-03"]
    for first_line in skipped:
        cell = by_source[first_line]
        assert cell["execution_count"] is None
        assert printed(cell) == f"skipped by notebook_orch: not needed by run {run.run_id} (assets scaled)\n"
        assert cell["metadata"]["notebook_orch"]["reason"] == "not needed by run (assets scaled)"
        assert cell["metadata"]["papermill"]["status"] == "skipped"
    ran = [c for c in cells if not c["metadata"].get("notebook_orch", {}).get("skipped")]
    assert [cell_text(c).split("\n")[0] for c in ran] == [
        "%load_ext notebook_orch", 'partition_key = "2013-01-15"', "# Parameters", "FACTOR = 3",
        "%%asset scaled --partitions daily:2013-01-01..2013-01-31", "import pathlib"]
    assert all(c["execution_count"] is not None for c in ran)
    assert all(c["metadata"]["papermill"]["status"] == "completed" for c in ran)
    # nothing of %nbo status ran: no table, no status output anywhere in the run
    assert "fresh" not in json.dumps([c["outputs"] for c in cells]).lower()


@pytest.mark.parametrize("mode", ["warm", "fresh"])
def test_a_cell_tagged_nbo_setup_runs_in_every_run(mixed: dict, mode: str) -> None:
    [outcome] = mixed[mode].outcomes
    assert (mixed["markers"] / outcome.run_id).read_text() == DAY


def test_nbo_materialize_run_as_set_up_inside_a_run_is_refused_saying_why(tmp_path: Path) -> None:
    # Skipping keeps %nbo materialize out of runs; a cell forced to run (tagged nbo-setup) is still refused.
    make_project(tmp_path, {"nested": [
        asset_cell("leaf", 'leaf = {"day": partition_key}'),
        "%nbo materialize leaf --partition 2013-01-03",
    ]})
    _tag(tmp_path / "notebooks" / "nested.ipynb", 3, SETUP_TAG)
    with open_project(tmp_path) as project:
        [outcome] = project.materialize("leaf", partitions=ONE_DAY, workers=1).outcomes
    assert outcome.status == "FAILED"
    assert outcome.error_cell == 3
    assert "%nbo materialize is refused inside a run" in outcome.error
    assert f"run {outcome.run_id}" in outcome.error
    assert [(r.assets, r.status) for r in runs_of(tmp_path)] == [(("leaf",), "FAILED")]  # no nested run


def test_the_engine_module_can_be_imported_before_papermill() -> None:
    # papermill loads engine entry points while it is imported; ours must not need the half-imported engine module.
    code = (
        "from importlib.metadata import entry_points\n"
        "from notebook_orch.engine.papermill_engine import NotebookOrchEngine, register\n"
        "from papermill.engines import papermill_engines\n"
        "register()\n"
        "ours = [e.name for e in entry_points(group='papermill.engine') if e.value.startswith('notebook_orch')]\n"
        "assert ours, 'no notebook_orch entry point installed'\n"
        "for name in [*ours, 'notebook_orch']:\n"
        "    engine = papermill_engines.get_engine(name)\n"
        "    assert engine.execute_managed_notebook == NotebookOrchEngine.execute_managed_notebook, name\n"
        "print('ok', sorted(ours))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")
