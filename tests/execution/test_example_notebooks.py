"""Every example notebook under ``notebooks/`` runs top to bottom (issue 6, defect 9): through ``nbo materialize``,
interactively in a real kernel (nbclient executing every cell in order, as "Run All" in JupyterLab does) and with
plain ``papermill NOTEBOOK OUT -p partition_key KEY``.

The kernel must see each ``%%asset`` declaration byte for byte as discovery reads it from the file: IPython expands
``{...}`` in magic lines, which turned ``--check "set(flights_daily.origin) == {'EWR', 'JFK', 'LGA'}"`` into a
comparison with a tuple that failed in every kernel (while runs, which take the checks from discovery, passed).

One copy of the examples in a temporary project; ``nbo materialize '*'`` builds January 2013 first (the monthly
report reads every day of its month), so each notebook then has what it reads for the keys used below.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from execution_helpers import cell_text, nbo, printed

from notebook_orch.core.partitions import UNPARTITIONED_KEY

pytestmark = pytest.mark.kernel

EXAMPLES = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))
# Notebooks that declare assets (lineage.ipynb only shows the graph): what ``nbo materialize '*'`` runs.
WITH_ASSETS = sorted(p.name for p in EXAMPLES.glob("*.ipynb") if '"%%asset ' in p.read_text(encoding="utf-8"))
# The key plain papermill injects into each notebook (its parameters cell names the kind of key it takes).
PAPERMILL_KEYS = {"reports.ipynb": "2013-01"}
DAILY_KEY = "2013-01-20"
_SUMMARY = re.compile(r"^(?P<asset>\w+)\[(?P<key>[^\]]+)\]: .* checks (?P<passed>\d+)/(?P<total>\d+) passed", re.M)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(EXAMPLES, root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n', encoding="utf-8")
    proc = nbo(root, "materialize", "*", "--from", "2013-01-01", "--to", "2013-01-31", "--json", timeout=1200)
    return {"root": root, "proc": proc}


def _asset_cells(cells: list) -> dict[str, dict]:
    return {cell_text(c).split()[1]: c for c in cells if cell_text(c).startswith("%%asset")}


def _assert_every_asset_cell_ran_with_its_checks(cells: list, key_of: dict[str, str]) -> None:
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(cells) for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []
    for name, cell in _asset_cells(cells).items():
        shown = printed(cell)
        found = _SUMMARY.search(shown)
        assert found, f"{name}: {shown!r}"
        assert (found["asset"], found["key"]) == (name, key_of[name])
        assert found["passed"] == found["total"] != "0", shown


def test_nbo_materialize_runs_every_example_notebook(examples: dict) -> None:
    proc = examples["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    outcomes = json.loads(proc.stdout)["outcomes"]
    assert {o["status"] for o in outcomes} == {"SUCCESS"}
    ran = {(Path(o["notebook"]).name, o["partition"]) for o in outcomes}
    assert {name for name, _ in ran} == set(WITH_ASSETS)
    days = {f"2013-01-{d:02d}" for d in range(1, 32)}
    for daily in ("flights.ipynb", "weather.ipynb", "delays.ipynb"):
        assert {key for name, key in ran if name == daily} == days
    assert {key for name, key in ran if name == "reports.ipynb"} == {"2013-01", UNPARTITIONED_KEY}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_example_runs_top_to_bottom_in_a_kernel_as_jupyterlab_runs_it(examples: dict, name: str) -> None:
    from nbclient import NotebookClient

    assert examples["proc"].returncode == 0, "nbo materialize failed: see the test above"
    notebook = examples["root"] / "notebooks" / name
    nb = nbformat.read(str(notebook), as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    key = re.search(r'partition_key = "([^"]+)"', cell_text(params[0])).group(1) if params else None
    client = NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(notebook.parent)}})
    client.execute()  # raises CellExecutionError naming the cell on the first error
    key_of = {asset: UNPARTITIONED_KEY if asset == "carrier_leaderboard" else key
              for asset in _asset_cells(nb.cells)}
    _assert_every_asset_cell_ran_with_its_checks(nb.cells, key_of)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_example_runs_with_plain_papermill(examples: dict, name: str, tmp_path: Path) -> None:
    assert examples["proc"].returncode == 0, "nbo materialize failed: see the test above"
    root = examples["root"]
    key = PAPERMILL_KEYS.get(name, DAILY_KEY)
    out = tmp_path / name
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", f"notebooks/{name}", str(out), "-p", "partition_key", key,
         "--kernel", "python3", "--no-progress-bar"],
        cwd=root, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = json.loads(out.read_text(encoding="utf-8"))["cells"]
    key_of = {asset: UNPARTITIONED_KEY if asset == "carrier_leaderboard" else key
              for asset in _asset_cells(cells)}
    _assert_every_asset_cell_ran_with_its_checks(cells, key_of)
