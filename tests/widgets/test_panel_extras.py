"""The side panel's extras, read on click for one asset: a link that opens the notebook at the cell, a preview of
the last value's first rows, the asset's schedules and its SLA record (a real project and SQLite store)."""

from __future__ import annotations

import pickle
from datetime import datetime
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch.project import Project
from notebook_orch.store.records import NewMaterialization
from notebook_orch.store.sla import NewVerdict
from notebook_orch.widgets import LineageGraph
from notebook_orch.widgets._panel_extras import value_preview

DAYS = "--partitions daily:2013-01-01..2013-01-05"


@pytest.fixture
def project(tmp_path: Path):
    nb = new_notebook()
    nb.cells = [new_code_cell("import pandas as pd"),
                new_code_cell(f"%%asset raw {DAYS} --sla 06:00 --schedule '0 6 * * *'\nraw = pd.DataFrame()"),
                new_code_cell(f"%%asset clean --deps raw {DAYS}\nclean = raw")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "raw.ipynb")
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    with Project(tmp_path) as p:
        yield p


def materialize_frame(project: Project, tmp_path: Path, name: str, key: str, frame: pd.DataFrame) -> Path:
    value = tmp_path / "values" / f"{name}-{key}.parquet"
    value.parent.mkdir(exist_ok=True)
    frame.to_parquet(value)
    spec = project.graph.spec(name)
    run = project.store.start_run(notebook=spec.notebook, targets=[(name, key)], kind="manual")
    project.store.finalize_success(run.run_id, [NewMaterialization(
        asset=name, partition=key, code_version=spec.code_version, data_version="v1",
        deps_signature=spec.deps_signature, row_count=len(frame), storage_path=str(value))])
    return value


def test_the_notebook_link_opens_the_cell(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the kernel's folder: JupyterLab resolves an output's relative links from there
    g = LineageGraph(project, live=False)
    g.show("clean")
    cell_id = nbformat.read(tmp_path / "notebooks" / "raw.ipynb", as_version=4).cells[2].id
    (out,) = g.panel.where.outputs  # an output, so JupyterLab's own link handling opens it at the cell
    assert out["data"]["text/html"] == (
        "<div class='nbo-where' style='font:13px sans-serif'>Defined in <a class='nbo-cell-link' "
        f"href='notebooks/raw.ipynb#cell-id={cell_id}' style='color:#1565c0;text-decoration:underline'>"
        "notebooks/raw.ipynb, cell 3</a></div>")
    assert "Defined in" not in g.panel.info.value  # said once
    monkeypatch.chdir(tmp_path / "notebooks")
    g.show("raw")
    raw_id = nbformat.read(tmp_path / "notebooks" / "raw.ipynb", as_version=4).cells[1].id
    assert f"href='raw.ipynb#cell-id={raw_id}'" in g.panel.where.outputs[0]["data"]["text/html"]
    g.close()


def test_the_panel_previews_the_last_values_first_rows(project, tmp_path):
    frame = pd.DataFrame({"day": [f"2013-01-{i:02d}" for i in range(1, 13)], "x": range(12)})
    materialize_frame(project, tmp_path, "raw", "2013-01-01", frame)
    g = LineageGraph(project, live=False)
    g.show("raw")
    preview = g.panel.view["preview"]
    assert preview == {"kind": "table", "columns": ["day", "x"], "total_rows": 12, "more_columns": 0,
                       "rows": [[f"2013-01-0{i}", str(i - 1)] for i in range(1, 6)]}
    assert "first 5 of 12 rows" in g.panel.info.value and "<td>2013-01-05</td>" in g.panel.info.value
    g.close()


def test_previews_of_other_values_say_what_they_are(tmp_path):
    (tmp_path / "v.json").write_text('{"a": [1, 2, 3]}')
    assert value_preview(str(tmp_path / "v.json")) == {"kind": "text", "text": '{"a": [1, 2, 3]}'}
    (tmp_path / "v.pkl").write_bytes(pickle.dumps({"a": 1}))
    assert value_preview(str(tmp_path / "v.pkl")) == {
        "kind": "none", "why": "a pkl value is not opened for a preview"}
    assert value_preview(str(tmp_path / "gone.parquet")) == {
        "kind": "none", "why": "the value file is gone (gone.parquet)"}
    (tmp_path / "bad.parquet").write_text("not parquet")
    assert value_preview(str(tmp_path / "bad.parquet"))["why"].startswith("could not read bad.parquet: ")
    assert value_preview(None) is None


def test_schedules_and_the_sla_of_the_asset(project):
    project.store.scheduling.add_schedule(name="nightly", cron="30 2 * * *", selection="raw+",
                                          partition_rule="{yesterday}")
    project.store.scheduling.add_schedule(name="other", cron="0 * * * *", selection="clean")
    project.store.sla.record_verdicts([
        NewVerdict("raw", "2013-01-01", "06:00", datetime(2013, 1, 2, 6), "MET"),
        NewVerdict("raw", "2013-01-02", "06:00", datetime(2013, 1, 3, 6), "MISSED", "MISSING")],
        watermarks={"raw": datetime(2013, 1, 3, 7)})
    g = LineageGraph(project, live=False)
    g.show("raw")
    by_name = {s["name"]: s for s in g.panel.view["schedules"]}
    assert set(by_name) == {"nightly", "raw"}  # "other" selects only clean
    assert by_name["nightly"]["cron"] == "30 2 * * *" and by_name["nightly"]["target"] == "{yesterday}"
    assert by_name["nightly"]["next"].endswith(":30 UTC") and by_name["raw"]["origin"] == "asset"
    assert g.panel.view["sla_record"] == {"text": "06:00", "met": 1, "missed": 1, "last_missed": {
        "partition": "2013-01-02", "deadline": "2013-01-03 06:00", "reason": "MISSING"}}
    html = g.panel.info.value
    assert "Schedules and SLA" in html and "<code>30 2 * * *</code>" in html
    assert "SLA <code>06:00</code>: met 1, missed 1; last missed 2013-01-02 (due 2013-01-03 06:00 UTC, missing)" in html
    g.show("clean")
    assert [s["name"] for s in g.panel.view["schedules"]] == ["nightly", "other"]
    assert g.panel.view["sla_record"] is None
    g.close()


def test_select_partition_opens_the_panel_with_the_partition(project):
    g = LineageGraph(project, live=False)
    g.select_partition("clean", "2013-01-04")
    assert g.panel.asset == "clean" and g.panel.partition.value == "2013-01-04"
    assert g.request("materialize")[1]["partitions"].keys == ("2013-01-04",)
    g.close()


def test_the_panel_says_whether_automation_is_paused(tmp_path):
    nb = new_notebook()
    nb.cells = [new_code_cell(f"%%asset raw {DAYS}\nraw = 1"),
                new_code_cell(f"%%asset clean --deps raw {DAYS} --auto\nclean = raw")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "auto.ipynb")
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    with Project(tmp_path) as project:
        g = LineageGraph(project, live=False)
        g.show("raw")
        assert g.panel.view["automation"] is None and "automation" not in g.panel.info.value
        g.show("clean")
        assert g.panel.view["automation"] == {"trigger": None, "paused_since": None}
        assert "automation --auto (runs when its inputs are ready): active" in g.panel.info.value
        project.store.scheduling.pause_auto("clean", now=datetime(2026, 11, 30, 3, 30))
        g.show("clean")
        assert "<b>paused</b> since 2026-11-30 03:30 UTC (nbo auto resume to turn it back on)" in g.panel.info.value
        project.store.scheduling.resume_auto("clean")
        g.show("clean")
        assert g.panel.view["automation"]["paused_since"] is None
        g.close()
