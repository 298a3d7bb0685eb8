"""``%nbo materialize`` inside a real kernel goes through the same plan-and-run path as ``nbo materialize``."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project


@pytest.mark.kernel
def test_nbo_materialize_in_a_kernel_shows_a_widget_and_records_runs(tmp_path: Path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell("%load_ext notebook_orch"),
                new_code_cell('%%asset letters --partitions static:a,b\nletters = {"key": partition_key}')]
    nbformat.write(nb, tmp_path / "notebooks" / "letters.ipynb")
    driver = new_notebook()
    driver.metadata["kernelspec"] = nb.metadata["kernelspec"]
    driver.cells = [new_code_cell("%load_ext notebook_orch"),
                    new_code_cell("%nbo materialize letters --workers 1 --wait"),
                    new_code_cell("%nbo materialize nosuch")]
    monkeypatch.setenv("NBO_PROJECT", str(tmp_path))
    client = NotebookClient(driver, kernel_name="python3", timeout=120, allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))
    outputs = driver.cells[1].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), outputs
    assert any("2 run(s)" in o.get("text", "") and "2 success" in o.get("text", "") for o in outputs), outputs
    errors = [o for o in driver.cells[2].outputs if o.output_type == "error"]
    assert [(e.ename, e.evalue) for e in errors] == [("DeclarationError", "No asset named 'nosuch' in the project.")]
    assert not [o for o in driver.cells[2].outputs if o.output_type != "error"]  # no empty progress bar first
    with Project(tmp_path) as project:
        runs = project.runs()
        assert sorted(r.partition_keys[0] for r in runs) == ["a", "b"]
        assert {r.status for r in runs} == {"SUCCESS"} and {r.kind for r in runs} == {"manual"}
        assert project.status().counts("letters")["FRESH"] == 2
