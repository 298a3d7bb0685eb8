"""Output a person can read (issue 6, defect 6), through the real ``nbo`` command on real notebooks and SQLite.

One small project is materialized once by real kernels (papermill); the tests then read it back with ``nbo stale``,
``status`` and ``runs`` as a person would, at terminal widths of 80 and 120 columns, and check the exact text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from notebook_orch import Project
from notebook_orch.store import open_store

DAYS = "daily:2013-01-01..2013-01-31"
RAW = f"%%asset raw --partitions {DAYS}\nraw = {{'day': partition_key, 'x': SCALE}}"
RAW_EDITED = (f"%%asset raw --partitions {DAYS}\nbase = SCALE  # a comment is not a change\n"
              "raw = {'day': partition_key, 'x': base + 1}")
CLEAN = f"%%asset clean --deps raw --partitions {DAYS}\nclean = dict(raw)"
REPORT = "%%asset report --deps clean[all]\nreport = len(clean)"
BOOM = f"%%asset boom --partitions {DAYS}\nrows = 3\nboom = rows / 0"


def notebook(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('partition_key = "2013-01-15"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("%load_ext notebook_orch"), params,
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def nbo(root: Path, *args: str, columns: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBO_")}
    env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("readable")
    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    notebook(root / "notebooks" / "pipe.ipynb", ["SCALE = 2", RAW, CLEAN])
    notebook(root / "notebooks" / "boom.ipynb", [BOOM])
    notebook(root / "notebooks" / "report.ipynb", [REPORT])
    made = nbo(root, "materialize", "raw,clean,report", "--from", "2013-01-01", "--to", "2013-01-03")
    assert made.returncode == 0, made.stdout + made.stderr
    failed = nbo(root, "materialize", "boom", "--partition", "2013-01-02")
    return {"root": root, "failed": failed}


@pytest.mark.kernel
def test_a_failure_is_printed_once_naming_the_cell_as_jupyterlab_counts_it(built: dict) -> None:
    proc = built["failed"]
    assert proc.returncode == 1
    with open_store(Project(built["root"]).config.store_url) as store:
        [run] = store.list_runs(asset="boom")
    error = ("RunFailed: Asset boom[2013-01-02] failed in notebooks/boom.ipynb, cell 3: "
             "ZeroDivisionError: division by zero")
    assert run.error == error and run.error_cell == 2  # stored 0-based; shown as JupyterLab's "Cell 3"
    assert proc.stdout.splitlines() == [
        f"FAILED  notebooks/boom.ipynb [2013-01-02] boom run {run.run_id}",  # the progress names it, no more
        proc.stdout.splitlines()[1],  # the summary line with the duration
        f"  FAILED notebooks/boom.ipynb [2013-01-02] (cell 3) run {run.run_id}: {error}; output notebook "
        f"{run.output_path}",
    ]
    assert proc.stdout.splitlines()[1].endswith(": 1 failed")
    # The output notebook's traceback names the notebook and cell it came from, with the cell's own line numbers.
    nb = json.loads(Path(run.output_path).read_text())
    tracebacks = ["\n".join(o["traceback"]) for c in nb["cells"] for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
    assert len(tracebacks) == 1
    shown = tracebacks[0]
    assert "File notebooks/boom.ipynb, cell 3:3" in _plain(shown) and "Cell In[" not in shown
    assert "----> 3 boom = rows / 0" in _plain(shown)


@pytest.mark.kernel
def test_stale_groups_by_asset_and_cause_and_shows_a_code_change_once_as_a_diff(built: dict) -> None:
    root = built["root"]
    assert nbo(root, "stale").stdout == "Nothing is stale.\n"  # report[all] read every partition there is
    with Project(root) as project:
        before = project.graph.spec("raw").code_version
    notebook(root / "notebooks" / "pipe.ipynb", ["SCALE = 2", RAW_EDITED, CLEAN])
    try:
        with Project(root) as project:
            after = project.graph.spec("raw").code_version
        proc = nbo(root, "stale")
        assert proc.stdout == (
            "raw 2013-01-01..2013-01-03: 3 stale\n"
            "  code changed in notebooks/pipe.ipynb, cell 4\n"
            f"    --- built ({before})\n"
            f"    +++ now ({after})\n"
            "    @@ -1,2 +1,3 @@\n"
            "    -raw = {'day': partition_key, 'x': SCALE}\n"
            "    +base = SCALE\n"
            "    +raw = {'day': partition_key, 'x': base + 1}\n"
            "     # helper cell\n"
            "clean 2013-01-01..2013-01-03: 3 stale\n"
            "  upstream stale: raw 2013-01-01..2013-01-03: 3 stale\n"
            "  root cause: raw 2013-01-01..2013-01-03: 3 code changed\n"
            "report: stale\n"
            "  upstream stale: clean 2013-01-01..2013-01-03: 3 stale\n"
            "  root cause: raw 2013-01-01..2013-01-03: 3 code changed\n"
            "  note: built from 3 of 31 partitions of clean\n"  # the [all] coverage --json has, said here too
            "7 stale partitions in 3 assets\n")
        data = json.loads(nbo(root, "stale", "--json").stdout)  # every detail stays in --json
        assert [(s["asset"], s["partition"]) for s in data["stale"]] == [
            ("raw", "2013-01-01"), ("raw", "2013-01-02"), ("raw", "2013-01-03"),
            ("clean", "2013-01-01"), ("clean", "2013-01-02"), ("clean", "2013-01-03"), ("report", "unpartitioned")]
        report = data["stale"][-1]
        upstream = next(c for c in report["causes"] if c["kind"] == "upstream_stale")
        assert upstream["upstream_partitions"] == ["2013-01-01", "2013-01-02", "2013-01-03"]
        assert [(r["asset"], r["partition"], r["kinds"]) for r in report["root_causes"]] == [
            ("raw", day, ["code_changed"]) for day in ("2013-01-01", "2013-01-02", "2013-01-03")]  # each, in full
        [change] = data["code_changes"]
        assert (change["asset"], change["built_version"], change["current_version"]) == ("raw", before, after)
        assert change["built_source"].startswith("raw = {'day': partition_key, 'x': SCALE}\n")
        assert change["diff"][2:] == ["@@ -1,2 +1,3 @@", "-raw = {'day': partition_key, 'x': SCALE}",
                                      "+base = SCALE", "+raw = {'day': partition_key, 'x': base + 1}",
                                      " # helper cell"]
        assert data["assets"][0]["partitions"] == [{"first": "2013-01-01", "last": "2013-01-03", "count": 3}]
    finally:
        notebook(root / "notebooks" / "pipe.ipynb", ["SCALE = 2", RAW, CLEAN])


@pytest.mark.kernel
@pytest.mark.parametrize("columns", [80, 120])
def test_status_and_runs_tables_fit_the_width(built: dict, columns: int) -> None:
    root = built["root"]
    status = nbo(root, "status", columns=columns).stdout
    runs = nbo(root, "runs", columns=columns).stdout
    for text in (status, runs):
        lines = text.splitlines()
        assert max(len(line) for line in lines) <= columns, text
        assert any(line.startswith("└") and line.rstrip().endswith("┘") for line in lines), text  # not cut off
    assert status.count("3 fresh, 28 missing") == 2, status
    assert "report: built from 3 of 31 partitions of clean\n" in status  # the [all] coverage, as --json has it
    rows = json.loads(nbo(root, "status", "--json").stdout)["assets"]
    assert {r["asset"]: r["notes"] for r in rows} == {"raw": [], "clean": [], "boom": [],
                                                       "report": ["built from 3 of 31 partitions of clean"]}
    assert len(re.findall(r"\(2013-01-0[123]\)", status)) == 2, status  # the last column is whole
    with open_store(Project(root).config.store_url) as store:
        every = store.list_runs()
    shown = [line.split("│")[1].strip() for line in runs.splitlines() if line.startswith("│ 01")]
    assert len(shown) == len(every) and all(len(s) >= 8 for s in shown)
    assert [r.run_id[: len(s)] for r, s in zip(every, shown)] == shown  # prefixes of the real ids ...
    assert len(set(shown)) == len(shown)  # ... that tell the runs apart
    # The error column holds the whole (one-line) error, wrapped over as many lines as it needs.
    error_column = "".join(line.split("│")[-2] for line in runs.splitlines() if line.startswith("│"))
    failed = next(r for r in every if r.status == "FAILED")
    assert "".join(failed.error.split()) in "".join(error_column.split())


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.kernel
def test_in_a_notebook_the_tables_fit_its_output_area(built: dict) -> None:
    from nbclient import NotebookClient

    root = built["root"]
    driver = nbformat.v4.new_notebook()
    driver.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    driver.cells = [nbformat.v4.new_code_cell(c) for c in ("%load_ext notebook_orch", "%nbo status", "%nbo runs")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBO_", "COLUMNS", "JUPYTER_COLUMNS"))}
    env["NBO_PROJECT"] = str(root)
    NotebookClient(driver, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(root)}}).execute(
        env=env)
    for cell in driver.cells[1:]:
        # Rich shows a table in a notebook as HTML with a text/plain twin: measure the text.
        text = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)
        lines = _plain(text).splitlines()
        assert lines and max(len(line) for line in lines) <= 115, text  # rich's notebook width (JUPYTER_COLUMNS)
        assert any(line.startswith("└") and line.rstrip().endswith("┘") for line in lines), text
    assert "3 fresh, 28 missing" in _plain("".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                                                   for o in driver.cells[1].outputs))
