"""STALE means materializing clears it, end to end: ``nbo materialize`` in real kernels, a real SQLite store,
``nbo status`` / ``nbo stale`` reading it back.

* A value that goes A -> B -> A leaves what was built on A fresh (the consumed data version is compared).
* ``carrier_leaderboard`` (``flights_daily[all]``, the example project) is fresh right after it ran, built from
  the partitions that exist, and stale once another partition is materialized.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.core.status import CauseKind, Status
from notebook_orch.faces.cli import main

REPO = Path(__file__).resolve().parents[1]
DAYS = "--partitions daily:2013-01-01..2013-01-05"
pytestmark = pytest.mark.kernel


def nbo(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["-C", str(root), *args])
    return code, capsys.readouterr().out


def stale_json(root: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str, list[str]]]:
    code, out = nbo(root, "stale", "--json", capsys=capsys)
    assert code == 0
    return [(item["asset"], item["partition"], [c["kind"] for c in item["causes"]])
            for item in json.loads(out)["stale"]]


def test_a_value_that_reverts_leaves_its_readers_fresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    value = tmp_path / "value.txt"
    value.write_text("A")
    nb = new_notebook()
    nb.cells = [
        new_code_cell("%load_ext notebook_orch"),
        new_code_cell(f"%%asset raw {DAYS}\nfrom pathlib import Path\nraw = {{'v': Path({str(value)!r}).read_text()}}"),
        new_code_cell(f"%%asset clean --deps raw {DAYS}\nclean = {{'v': raw['v'] * 2}}"),
    ]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "pipe.ipynb")
    day = "2013-01-01"

    assert nbo(tmp_path, "materialize", "raw+", "--partition", day, "--workers", "1", capsys=capsys)[0] == 0
    assert stale_json(tmp_path, capsys) == []

    value.write_text("B")
    assert nbo(tmp_path, "materialize", "raw", "--partition", day, "--workers", "1", capsys=capsys)[0] == 0
    assert stale_json(tmp_path, capsys) == [("clean", day, [CauseKind.UPSTREAM_DATA_CHANGED])]

    value.write_text("A")  # back to the data clean was built from
    assert nbo(tmp_path, "materialize", "raw", "--partition", day, "--workers", "1", capsys=capsys)[0] == 0
    assert stale_json(tmp_path, capsys) == []
    with Project(tmp_path) as project:
        report = project.status()
        assert report.status("clean", day) == Status.FRESH
        history = project.store.materializations("raw", day)
        assert [m.data_version == history[-1].data_version for m in history] == [True, False, True]


def test_the_leaderboard_over_all_partitions_is_fresh_after_it_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks")
    days = ("2013-01-01", "2013-01-02")
    args = [a for d in days for a in ("--partition", d)]
    assert nbo(tmp_path, "materialize", "flights_daily", *args, capsys=capsys)[0] == 0
    assert nbo(tmp_path, "materialize", "carrier_leaderboard", capsys=capsys)[0] == 0

    code, out = nbo(tmp_path, "status", "carrier_leaderboard", "--json", capsys=capsys)
    [row] = json.loads(out)["assets"]
    assert (code, row["fresh"], row["stale"]) == (0, 1, 0)
    assert stale_json(tmp_path, capsys) == []
    with Project(tmp_path) as project:
        board = project.status().explain("carrier_leaderboard", "unpartitioned")
        assert (board.status, board.causes) == (Status.FRESH, ())
        assert board.notes == ("built from 2 of 365 partitions of flights_daily",)

    # One more partition exists now: the leaderboard did not read it, so it is stale for exactly that.
    assert nbo(tmp_path, "materialize", "flights_daily", "--partition", "2013-01-03", capsys=capsys)[0] == 0
    with Project(tmp_path) as project:
        board = project.status().explain("carrier_leaderboard", "unpartitioned")
        assert board.status == Status.STALE
        assert [(c.kind, c.upstream_partitions) for c in board.causes] == [
            (CauseKind.UPSTREAM_DATA_CHANGED, ("2013-01-03",))]
