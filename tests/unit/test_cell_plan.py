"""The pure rule of which cells a run executes (``core.cell_selection.plan_cells``), fed by discovery's helpers."""

from __future__ import annotations

from notebook_orch.core.cell_selection import NotebookCell, plan_cells
from notebook_orch.discovery import assets_in_cells


def _plan(cells: list[NotebookCell], assets: tuple[str, ...]):
    found = assets_in_cells([(c.cell_type, c.source) for c in cells], notebook="nb.ipynb")
    return plan_cells(cells, assets=assets, asset_cells={s.name: s.cell_index for s in found.specs},
                      helpers=found.helpers)


CELLS = [
    NotebookCell("markdown", "# Title"),
    NotebookCell("code", "%load_ext notebook_orch"),
    NotebookCell("code", 'partition_key = "2013-01-01"', ("parameters",)),
    NotebookCell("code", "import pandas as pd\nBASE = 10"),
    NotebookCell("code", "def scale(x):\n    return x * BASE"),
    NotebookCell("code", "%%asset a --partitions daily:2013-01-01..2013-01-31\na = scale(len(partition_key))"),
    NotebookCell("code", "%%asset b --deps a\nb = pd.DataFrame({'x': [a]})"),
    NotebookCell("code", "b"),
    NotebookCell("code", "%nbo status"),
    NotebookCell("code", "import logging\nlogging.basicConfig()", ("nbo-setup",)),
    NotebookCell("code", "%nbo materialize b"),
]


def test_a_run_executes_its_asset_cells_their_helpers_the_extension_parameters_and_set_up() -> None:
    plan = _plan(CELLS, ("a",))
    assert sorted(plan.execute) == [1, 2, 3, 4, 5, 9]
    assert plan.skip == (6, 7, 8, 10)
    assert dict(plan.why) == {1: "extension", 2: "parameters; helper of a", 3: "helper of a", 4: "helper of a",
                              5: "asset a", 9: "set-up"}
    assert plan.missing == ()


def test_helpers_follow_the_selected_assets_only() -> None:
    plan = _plan(CELLS, ("b",))
    # b reads pd (cell 3) but not scale/BASE: cell 4 and the display cell of b are not run
    assert sorted(plan.execute) == [1, 2, 3, 6, 9]
    assert plan.why[3] == "helper of b"


def test_an_asset_with_no_cell_in_the_notebook_is_reported_missing_and_nothing_else_runs() -> None:
    plan = _plan(CELLS, ("nope",))
    assert plan.missing == ("nope",)
    assert sorted(plan.execute) == [1, 2, 9]


def test_injected_parameters_and_reload_ext_run_markdown_never_does() -> None:
    cells = [NotebookCell("code", "%reload_ext notebook_orch  # again"),
             NotebookCell("code", "partition_key = 'x'", ("injected-parameters",)),
             NotebookCell("raw", "%load_ext notebook_orch"),
             NotebookCell("code", "%load_ext other_thing")]
    plan = plan_cells(cells, assets=(), asset_cells={}, helpers={})
    assert sorted(plan.execute) == [0, 1]
    assert plan.skip == (3,)


def test_indexes_outside_the_notebook_or_on_markdown_are_ignored() -> None:
    cells = [NotebookCell("markdown", "x"), NotebookCell("code", "%%asset a\na = 1")]
    plan = plan_cells(cells, assets=("a",), asset_cells={"a": 1}, helpers={"a": [0, 7]})
    assert sorted(plan.execute) == [1]
