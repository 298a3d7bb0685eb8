"""A --check expression that reads a constant of a helper cell counts that cell: it is in the asset's code version
and a run executes it (the cell plan runs the helpers discovery chose)."""

from __future__ import annotations

from notebook_orch.discovery import assets_in_cells, helper_query

LIMIT_CELL = "MIN_ROWS = 2"
PLOT_CELL = "print('a plot')"


def _cells(limit: str = LIMIT_CELL, check: str = "len(sized) >= MIN_ROWS") -> list[tuple[str, str]]:
    return [("code", "%load_ext notebook_orch"), ("code", limit), ("code", PLOT_CELL),
            ("code", f"%%asset sized --check '{check}'\nsized = [1, 2, 3]")]


def test_a_check_reading_a_helper_constant_selects_that_cell() -> None:
    found = assets_in_cells(_cells(), notebook="n.ipynb")
    assert not found.problems
    assert found.helpers["sized"] == (1,)  # the constant's cell, not the plot


def test_changing_the_constant_a_check_reads_changes_the_code_version() -> None:
    before = assets_in_cells(_cells(), notebook="n.ipynb").specs[0]
    after = assets_in_cells(_cells(limit="MIN_ROWS = 5"), notebook="n.ipynb").specs[0]
    assert before.code_version != after.code_version
    assert "MIN_ROWS = 5" in after.code_source


def test_a_check_on_the_value_alone_selects_nothing() -> None:
    found = assets_in_cells(_cells(check="len(sized) > 0"), notebook="n.ipynb")
    assert found.helpers["sized"] == ()
    # the asset's own name is assigned by the body: a cell above that happens to bind it is not a helper
    shadow = [("code", "sized = 'old'"), *_cells(check="len(sized) > 0")[1:]]
    assert assets_in_cells(shadow, notebook="n.ipynb").helpers["sized"] == ()


def test_helper_query_appends_the_checks_after_the_body() -> None:
    assert helper_query("x = 1", ()) == "x = 1"
    assert helper_query("x = 1", ("x > LIMIT", "ok")) == "x = 1\n(x > LIMIT)\n(ok)\n"
