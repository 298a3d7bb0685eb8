"""Discovery against real notebook files written with nbformat in a temporary folder (no kernel)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from notebook_orch.core.codeversion import code_version
from notebook_orch.core.specs import parse_declaration
from notebook_orch.discovery import DiscoveryReport, assets_in_cells, discover, read_cells

Cells = list[tuple[str, str]]


def make_notebook(path: Path, cells: Cells) -> Path:
    """Write a notebook whose cells are ``("code" | "markdown", source)`` pairs."""
    v4 = nbformat.v4
    new = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell, "raw": v4.new_raw_cell}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(v4.new_notebook(cells=[new[kind](source) for kind, source in cells]), path)
    return path


SALES: Cells = [
    ("code", "%load_ext notebook_orch\nimport pandas as pd"),                                   # 0
    ("markdown", "# Sales\nRaw sales, then the clean table."),                                    # 1
    ("code", "THRESHOLD = 10\n\ndef tidy(df):\n    return df[df.amount > THRESHOLD]"),             # 2
    ("code", "%%asset raw_sales --partitions daily:2013-01-01..2013-01-31\n"
             "raw_sales = pd.read_csv(f'sales/{partition_key}.csv')"),                              # 3
    ("code", "raw_sales.amount.plot()"),                                                           # 4
    ("code", "%%asset clean_sales --deps raw_sales --partitions daily:2013-01-01..2013-01-31 "
             "--check 'len(clean_sales) > 0'\nclean_sales = tidy(raw_sales)"),                     # 5
    ("code", "clean_sales.describe()"),                                                            # 6
]  # fmt: skip
REPORT: Cells = [
    ("code", "import pandas as pd"),
    ("code", "%%asset monthly_report --deps clean_sales[all] --retries 2\n"
             "monthly_report = clean_sales.groupby('month').amount.sum()"),
]  # fmt: skip


def versions(report: DiscoveryReport) -> dict[str, str]:
    return {s.name: s.code_version for s in report.specs}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_notebook(tmp_path / "notebooks" / "sales.ipynb", SALES)
    make_notebook(tmp_path / "notebooks" / "reports" / "monthly.ipynb", REPORT)
    return tmp_path


# -- what is found ------------------------------------------------------------------------------------------
def test_finds_every_asset_of_every_notebook_in_order(project: Path) -> None:
    found = discover(project / "notebooks", root=project)
    assert found.problems == ()
    assert found.notebooks == ("notebooks/reports/monthly.ipynb", "notebooks/sales.ipynb")
    assert [(s.name, s.notebook, s.cell_index) for s in found.specs] == [
        ("monthly_report", "notebooks/reports/monthly.ipynb", 1),
        ("raw_sales", "notebooks/sales.ipynb", 3),
        ("clean_sales", "notebooks/sales.ipynb", 5),
    ]


def test_paths_are_relative_to_the_folder_without_root(project: Path) -> None:
    found = discover(project / "notebooks")
    assert found.notebooks == ("reports/monthly.ipynb", "sales.ipynb")
    assert {s.notebook for s in found.specs} == {"reports/monthly.ipynb", "sales.ipynb"}


def test_exact_spec_fields(project: Path) -> None:
    found = discover(project / "notebooks", root=project)
    clean = next(s for s in found.specs if s.name == "clean_sales")
    line, body = SALES[5][1].split("\n", 1)
    expected = parse_declaration(line, notebook="notebooks/sales.ipynb", cell=5, source=body)
    assert clean.code_version == code_version(body, [SALES[2][1]])  # tidy's cell; pandas is not used here
    assert clean == replace(expected, code_version=clean.code_version)
    assert clean.source == body
    assert clean.dep_names == ("raw_sales",)
    assert clean.checks == ("len(clean_sales) > 0",)
    assert clean.partitions.describe() == "daily:2013-01-01..2013-01-31"
    assert clean.code_version_override is None
    report = next(s for s in found.specs if s.name == "monthly_report")
    assert report.retries == 2
    assert report.deps[0].describe() == "clean_sales[all]"


def test_helper_cells_are_reported(project: Path) -> None:
    found = discover(project / "notebooks", root=project)
    # raw_sales reads pd (cell 0); clean_sales calls tidy (cell 2), which reads THRESHOLD from its own cell;
    # monthly_report only reads its upstream asset, so its import cell does not count
    assert dict(found.helpers) == {"raw_sales": (0,), "clean_sales": (2,), "monthly_report": ()}


def test_checkpoints_hidden_folders_and_other_files_are_skipped(project: Path) -> None:
    notebooks = project / "notebooks"
    make_notebook(notebooks / ".ipynb_checkpoints" / "sales-checkpoint.ipynb", SALES)
    make_notebook(notebooks / ".hidden" / "old.ipynb", REPORT)
    make_notebook(notebooks / ".scratch.ipynb", REPORT)
    (notebooks / "notes.txt").write_text("%%asset not_an_asset\n")
    (notebooks / "script.py").write_text("x = 1\n")
    found = discover(notebooks, root=project)
    assert found.notebooks == ("notebooks/reports/monthly.ipynb", "notebooks/sales.ipynb")
    assert len(found.specs) == 3
    assert found.problems == ()


def test_sources_stored_as_one_string_or_as_lines(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%asset a\na = 1\n")])
    as_string = json.loads(nbformat.writes(nb))
    as_string["cells"][0]["source"] = "%%asset a\na = 1\n"
    as_lines = json.loads(nbformat.writes(nb))
    as_lines["cells"][0]["source"] = ["%%asset a\n", "a = 1\n"]
    (tmp_path / "s.ipynb").write_text(json.dumps(as_string))
    (tmp_path / "l.ipynb").write_text(json.dumps(as_lines))
    found = discover(tmp_path)
    assert [s.notebook for s in found.specs] == ["l.ipynb", "s.ipynb"]
    assert found.specs[0].code_version == found.specs[1].code_version


def test_an_nbformat_3_notebook_is_converted(tmp_path: Path) -> None:
    old = {
        "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
        "worksheets": [{"cells": [
            {"cell_type": "markdown", "source": "Old but fine", "metadata": {}},
            {"cell_type": "code", "input": "%%asset legacy\nlegacy = 1", "language": "python", "outputs": [],
             "metadata": {}},
        ], "metadata": {}}],
    }  # fmt: skip
    (tmp_path / "old.ipynb").write_text(json.dumps(old))
    found = discover(tmp_path)
    assert found.problems == ()
    assert [(s.name, s.cell_index) for s in found.specs] == [("legacy", 1)]


def test_cells_of_one_notebook_without_a_file() -> None:
    found = assets_in_cells(SALES, notebook="sales.ipynb")
    assert [s.name for s in found.specs] == ["raw_sales", "clean_sales"]
    assert found.notebooks == ("sales.ipynb",)


# -- bad input ----------------------------------------------------------------------------------------------
def test_broken_files_are_reported_and_the_rest_still_found(project: Path) -> None:
    notebooks = project / "notebooks"
    (notebooks / "a_truncated.ipynb").write_text('{"cells": [{"cell_type": "code", ')
    (notebooks / "b_empty.ipynb").write_text("")
    (notebooks / "c_config.ipynb").write_text('{"name": "not a notebook"}')
    (notebooks / "d_list.ipynb").write_text("[1, 2, 3]")
    (notebooks / "e_badcell.ipynb").write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "chart", "source": "", "metadata": {}}],
    }))  # fmt: skip
    (notebooks / "f_latin1.ipynb").write_bytes('{"cells": "caf\xe9"}'.encode("latin-1"))
    (notebooks / "g_future.ipynb").write_text(json.dumps({"nbformat": 9, "nbformat_minor": 0, "cells": []}))
    os.symlink(project / "missing.ipynb", notebooks / "h_dangling.ipynb")
    found = discover(notebooks, root=project)

    by_file = {p.notebook: p for p in found.problems}
    assert sorted(by_file) == [f"notebooks/{n}.ipynb" for n in (
        "a_truncated", "b_empty", "c_config", "d_list", "e_badcell", "f_latin1", "g_future", "h_dangling"
    )]  # fmt: skip
    assert all(p.cell is None for p in found.problems)
    assert "not valid JSON (line 1, column 34" in by_file["notebooks/a_truncated.ipynb"].message
    assert "empty" in by_file["notebooks/b_empty.ipynb"].message
    assert "not a Jupyter notebook" in by_file["notebooks/c_config.ipynb"].message
    assert "not a Jupyter notebook" in by_file["notebooks/d_list.ipynb"].message
    assert "not a valid Jupyter notebook" in by_file["notebooks/e_badcell.ipynb"].message
    assert "not UTF-8" in by_file["notebooks/f_latin1.ipynb"].message
    assert "version" in by_file["notebooks/g_future.ipynb"].message
    assert "cannot be read" in by_file["notebooks/h_dangling.ipynb"].message
    for problem in found.problems:  # every message says what to do
        assert any(fix in problem.message for fix in ("save it again", "move it out", "readable"))
    # the good notebooks are all there, and the broken files are listed as notebooks too
    assert [s.name for s in found.specs] == ["monthly_report", "raw_sales", "clean_sales"]
    assert len(found.notebooks) == 10


def test_bad_declarations_name_notebook_and_cell_and_spare_the_others(tmp_path: Path) -> None:
    make_notebook(tmp_path / "mixed.ipynb", [
        ("code", "import pandas as pd"),                                    # 0
        ("code", "%%asset good_one\ngood_one = 1"),                         # 1
        ("code", "%%asset bad_retries --retries many\nbad_retries = 1"),    # 2
        ("markdown", "%%asset in_markdown is not a declaration"),           # 3
        ("code", "%%asset --deps good_one\nnameless = 2"),                  # 4
        ("code", "%%asset ../escape\nx = 3"),                               # 5
        ("code", "%%asset unknown_option --colour blue\nunknown_option = 4"),  # 6
        ("code", "%%asset good_two --deps good_one\ngood_two = good_one + 1"),  # 7
    ])  # fmt: skip
    found = discover(tmp_path)
    assert [(s.name, s.cell_index) for s in found.specs] == [("good_one", 1), ("good_two", 7)]
    problems = {p.cell: p for p in found.problems}
    assert sorted(problems) == [2, 4, 5, 6]
    assert all(p.notebook == "mixed.ipynb" for p in found.problems)
    assert "--retries" in problems[2].message and problems[2].asset == "bad_retries"
    assert "NAME is missing" in problems[4].message
    assert "path-like" in problems[5].message and problems[5].asset is None
    assert "--colour" in problems[6].message
    assert str(problems[2]).startswith("mixed.ipynb, cell 3: ")  # index 2 is JupyterLab's "Cell 3"


def test_an_asset_cell_that_never_assigns_its_name(tmp_path: Path) -> None:
    make_notebook(tmp_path / "n.ipynb", [
        ("code", "%%asset totals\ntotal = 1"),
        ("code", "%%asset empty\n"),
        ("code", "%%asset shell_made\n%%bash\necho hi"),  # not Python: not judged
        ("code", "%%asset timed\n%time timed = 1"),  # %time runs the assignment
    ])  # fmt: skip
    found = discover(tmp_path)
    assert [s.name for s in found.specs] == ["totals", "empty", "shell_made", "timed"]  # still known to the graph
    assert [(p.cell, p.asset) for p in found.problems] == [(0, "totals"), (1, "empty")]
    assert "never assigns 'totals'" in found.problems[0].message


def test_a_missing_folder_is_a_problem(tmp_path: Path) -> None:
    found = discover(tmp_path / "nope")
    assert found.specs == () and found.notebooks == ()
    assert "does not exist" in found.problems[0].message
    (tmp_path / "file").write_text("")
    assert "is not a folder" in discover(tmp_path / "file").problems[0].message


def test_read_cells_raises_with_the_location(tmp_path: Path) -> None:
    from notebook_orch.errors import DiscoveryError

    (tmp_path / "x.ipynb").write_text("nope")
    with pytest.raises(DiscoveryError) as info:
        read_cells(tmp_path / "x.ipynb", notebook="x.ipynb")
    assert info.value.problem.notebook == "x.ipynb"
    assert str(info.value).startswith("x.ipynb: The notebook is not valid JSON")


# -- code versions --------------------------------------------------------------------------------------------
def edited(cells: Cells, index: int, source: str) -> Cells:
    return [(kind, source if i == index else src) for i, (kind, src) in enumerate(cells)]


def rediscover(tmp_path: Path, cells: Cells) -> dict[str, str]:
    make_notebook(tmp_path / "sales.ipynb", cells)
    return versions(discover(tmp_path))


def test_editing_a_helper_changes_only_the_assets_that_use_it(tmp_path: Path) -> None:
    before = rediscover(tmp_path, SALES)
    after = rediscover(tmp_path, edited(SALES, 2, SALES[2][1].replace("THRESHOLD = 10", "THRESHOLD = 20")))
    assert after["clean_sales"] != before["clean_sales"]
    assert after["raw_sales"] == before["raw_sales"]
    after = rediscover(tmp_path, edited(SALES, 0, "%load_ext notebook_orch\nimport pandas as pandas_lib\npd = 1"))
    assert after["raw_sales"] != before["raw_sales"]  # the import cell is a helper of raw_sales only
    assert after["clean_sales"] == before["clean_sales"]


def test_markdown_plots_comments_and_layout_change_nothing(tmp_path: Path) -> None:
    before = rediscover(tmp_path, SALES)
    cells = edited(SALES, 1, "# Sales, rewritten\nWith much more prose.")
    cells = edited(cells, 4, "import matplotlib.pyplot as plt\nraw_sales.amount.hist(bins=50)\nplt.show()")
    cells = edited(cells, 6, "print(clean_sales.head(20))")
    cells = edited(cells, 2, "# the cut-off\nTHRESHOLD = 10  # dollars\n\n\ndef tidy(df):\n"
                             "    '''Keep real sales.'''\n    return df[ df.amount>THRESHOLD ]\n")
    cells = cells + [("code", "THRESHOLD = 99  # below every asset: never runs before them")]
    assert rediscover(tmp_path, cells) == before


def test_a_helper_pulls_in_the_cells_it_reads(tmp_path: Path) -> None:
    cells: Cells = [
        ("code", "RATE = 0.2"),                                    # 0
        ("code", "def with_tax(x):\n    return x * (1 + RATE)"),  # 1
        ("code", "RATE_EXPLAINED = 'twenty percent'"),             # 2
        ("code", "%%asset taxed\ntaxed = with_tax(100)"),          # 3
    ]  # fmt: skip
    make_notebook(tmp_path / "tax.ipynb", cells)
    found = discover(tmp_path)
    assert dict(found.helpers) == {"taxed": (0, 1)}
    before = versions(found)
    assert rediscover_as(tmp_path, "tax.ipynb", edited(cells, 0, "RATE = 0.25")) != before
    assert rediscover_as(tmp_path, "tax.ipynb", edited(cells, 2, "RATE_EXPLAINED = '25%'")) == before


def rediscover_as(tmp_path: Path, name: str, cells: Cells) -> dict[str, str]:
    make_notebook(tmp_path / name, cells)
    return versions(discover(tmp_path))


def test_discovery_is_deterministic_and_the_report_frozen(project: Path) -> None:
    first = discover(project / "notebooks", root=project)
    second = discover(project / "notebooks", root=project)
    assert first == second
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.specs = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.helpers["x"] = ()  # type: ignore[index]


def test_editing_the_asset_body_changes_its_version(tmp_path: Path) -> None:
    before = rediscover(tmp_path, SALES)
    after = rediscover(tmp_path, edited(SALES, 5, SALES[5][1] + ".dropna()"))
    assert after["clean_sales"] != before["clean_sales"]
    assert after["raw_sales"] == before["raw_sales"]


def test_code_version_override(tmp_path: Path) -> None:
    cells = edited(SALES, 5, SALES[5][1].replace("--deps raw_sales", "--deps raw_sales --code-version v7"))
    found = discover(make_notebook(tmp_path / "sales.ipynb", cells).parent)
    clean = next(s for s in found.specs if s.name == "clean_sales")
    assert clean.code_version == "v7" and clean.code_version_override == "v7"
    again = rediscover(tmp_path, edited(cells, 2, "THRESHOLD = 1\ndef tidy(df):\n    return df"))
    assert again["clean_sales"] == "v7"


def test_same_cells_same_versions_across_notebooks_and_folders(tmp_path: Path) -> None:
    a = versions(discover(make_notebook(tmp_path / "a" / "x.ipynb", SALES).parent))
    b = versions(discover(make_notebook(tmp_path / "b" / "deep" / "y.ipynb", SALES).parent.parent))
    assert a == b
