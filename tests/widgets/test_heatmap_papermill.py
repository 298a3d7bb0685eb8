"""A notebook holding the partition heatmap runs headless under papermill (a real kernel): the widget is created
and displayed, and its live thread does not keep the kernel from shutting down."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.kernel


def test_heatmap_notebook_runs_under_papermill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import papermill

    for var in ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    (tmp_path / "notebooks").mkdir()
    nb = new_notebook()
    nb.cells = [new_code_cell("%load_ext notebook_orch"),
                new_code_cell("%%asset a --partitions daily:2013-01-01..2013-01-03\na = 1")]
    nbformat.write(nb, tmp_path / "notebooks" / "a.ipynb")
    heat = new_notebook()
    heat.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    heat.cells = [new_code_cell("%load_ext notebook_orch"), new_code_cell("%nbo partitions"),
                  new_code_cell("h = Out[2]\nprint([r['asset'] for r in h.view['rows']], h.view['rows'][0]['ranges'],"
                                " h._loop.running)")]
    nbformat.write(heat, tmp_path / "heatmap.ipynb")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                    os.environ.get("PYTHONPATH")])))
    t0 = time.monotonic()
    papermill.execute_notebook(str(tmp_path / "heatmap.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(tmp_path),
                               kernel_name="python3", progress_bar=False)
    assert time.monotonic() - t0 < 120
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    shown = out.cells[1].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in shown), shown
    assert out.cells[2].outputs[0]["text"].strip() == "['a'] [[2, 0, 3]] True"
