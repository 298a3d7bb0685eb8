"""The spine's faces: ``nbo validate/status/stale/lineage/runs`` and ``Project`` on real notebooks and SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from notebook_orch import Project
from notebook_orch.config import load_config
from notebook_orch.errors import NotebookOrchError
from notebook_orch.faces.cli import main
from notebook_orch.store import NewMaterialization

REPO = Path(__file__).resolve().parents[1]
DAYS = "--partitions daily:2013-01-01..2013-01-05"


def write(root: Path, name: str, *cells: str) -> None:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(c[3:]) if c.startswith("md:") else new_code_cell(c) for c in cells]
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / "notebooks" / name)


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    write(tmp_path, "raw.ipynb", "import pandas as pd", f"%%asset raw {DAYS}\nraw = {{'x': 1}}")
    write(tmp_path, "clean.ipynb", f"%%asset clean --deps raw {DAYS}\nclean = raw",
          "%%asset report --deps clean[all]\nreport = clean")
    return tmp_path


def record(project: Project, spec_name: str, key: str, data_version: str = "v1", inputs=()) -> None:
    spec = project.graph.spec(spec_name)
    run = project.store.start_run(notebook=spec.notebook, targets=[(spec_name, key)], kind="manual")
    project.store.finalize_success(run.run_id, [NewMaterialization(
        asset=spec_name, partition=key, code_version=spec.code_version, data_version=data_version,
        deps_signature=spec.deps_signature, inputs=tuple(inputs))])


def cli(root: Path, *args: str, capsys) -> tuple[int, str, str]:
    code = main(["-C", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_example_notebooks_validate():
    with Project(REPO) as project:
        assert project.problems() == []
        assert set(project.graph.names) == {"flights_daily", "weather_daily", "delays_daily", "delays_rolling_7d",
                                            "delays_monthly", "carrier_leaderboard"}


def test_validate_lists_every_problem_and_exits_1(proj: Path, capsys):
    (proj / "notebooks" / "broken.ipynb").write_text("{not json")
    write(proj, "dup.ipynb", "%%asset raw\nraw = 2", "%%asset typo --deps claen\ntypo = 1", "%%asset bad --bogus\nx=1")
    code, out, err = cli(proj, "validate", capsys=capsys)
    assert code == 1
    assert "broken.ipynb" in err and "not valid JSON" in err
    assert "defined twice" in err and "notebooks/raw.ipynb" in err and "notebooks/dup.ipynb" in err
    assert "Did you mean 'clean'" in err and "unrecognized arguments: --bogus" in err
    code, out, _ = cli(proj, "validate", "--json", capsys=capsys)
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and len(data["problems"]) == 4


def test_validate_ok_and_nothing_stored(proj: Path, capsys):
    code, out, _ = cli(proj, "validate", capsys=capsys)
    assert (code, out.strip()) == (0, "OK: 3 assets in 2 notebooks")
    assert not (proj / ".notebook_orch").exists()  # validating writes nothing


def test_status_stale_lineage_runs(proj: Path, capsys):
    with Project(proj) as project:
        for k in ["2013-01-01", "2013-01-02"]:
            record(project, "raw", k)
            record(project, "clean", k, inputs=[_consumed(project, "raw", k)])
        record(project, "raw", "2013-01-02", data_version="v2")
    code, out, _ = cli(proj, "status", "--json", capsys=capsys)
    data = json.loads(out)
    rows = {r["asset"]: r for r in data["assets"]}
    assert code == 0
    assert (rows["raw"]["fresh"], rows["raw"]["missing"]) == (2, 3)
    assert (rows["clean"]["fresh"], rows["clean"]["stale"], rows["clean"]["missing"]) == (1, 1, 3)
    assert rows["report"]["missing"] == 1 and data["totals"]["STALE"] == 1
    code, out, _ = cli(proj, "status", capsys=capsys)
    assert code == 0 and "Asset status" in out and "clean" in out
    code, out, _ = cli(proj, "stale", "--json", capsys=capsys)
    stale = json.loads(out)["stale"]
    assert [(s["asset"], s["partition"]) for s in stale] == [("clean", "2013-01-02")]
    assert [c["kind"] for c in stale[0]["causes"]] == ["upstream_data_changed"]
    code, out, _ = cli(proj, "stale", capsys=capsys)
    assert out == ("clean 2013-01-02: 1 stale\n"
                   "  upstream data changed: raw 2013-01-02: 1 with new data\n"
                   "1 stale partition in 1 asset\n")
    code, out, _ = cli(proj, "lineage", "--format", "json", capsys=capsys)
    lineage = json.loads(out)
    assert [a["name"] for a in lineage["assets"]] == ["raw", "clean", "report"]
    assert lineage["edges"] == [{"from": "raw", "to": "clean", "mapping": "identity"},
                                {"from": "clean", "to": "report", "mapping": "[all]"}]
    assert lineage["assets"][1]["status"] == "STALE"
    assert {k: lineage["assets"][0][k] for k in ("notebook", "cell", "partitions", "owner")} == {
        "notebook": "notebooks/raw.ipynb", "cell": 1, "partitions": "daily:2013-01-01..2013-01-05", "owner": None}
    for fmt, needle in [("mermaid", "raw --> clean"), ("dot", '"clean" -> "report" [label="[all]"]'),
                        ("text", "clean [1 fresh, 1 stale, 3 missing]  <- raw"), ("html", 'data-asset="report"')]:
        code, out, _ = cli(proj, "lineage", "--format", fmt, capsys=capsys)
        assert code == 0 and needle in out, (fmt, out)
    code, out, _ = cli(proj, "runs", "--json", "--limit", "2", capsys=capsys)
    runs = json.loads(out)
    assert code == 0 and len(runs) == 2 and runs[0]["status"] == "SUCCESS" and runs[0]["assets"] == ["raw"]


def _consumed(project: Project, asset: str, key: str):
    from notebook_orch.store import ConsumedInput

    rows = project.store.snapshot(keys=[(asset, key)]).assets[asset]
    return ConsumedInput(asset, key, rows.materialization_id[0], rows.data_version[0], rows.data_seq[0])


def test_code_change_in_a_helper_makes_assets_stale(proj: Path):
    with Project(proj) as project:
        record(project, "raw", "2013-01-01")
    write(proj, "raw.ipynb", "import pandas as pd  # a comment changes nothing",
          f"%%asset raw {DAYS}\nraw = {{'x': 1}}")
    with Project(proj) as project:
        assert project.status().status("raw", "2013-01-01") == "FRESH"
    write(proj, "raw.ipynb", "import pandas as pd\nimport json", f"%%asset raw {DAYS}\nraw = {{'x': 1}}")
    with Project(proj) as project:
        assert project.status().status("raw", "2013-01-01") == "FRESH"  # json is not used by raw
    write(proj, "raw.ipynb", "X = 2", f"%%asset raw {DAYS}\nraw = {{'x': X}}")
    with Project(proj) as project:
        causes = project.status().explain("raw", "2013-01-01").causes
        assert [c.kind for c in causes] == ["code_changed"] and "notebooks/raw.ipynb, cell 2" in causes[0].message


def test_incremental_refresh_matches_a_full_pass(proj: Path):
    with Project(proj) as project:
        report = project.status()
        record(project, "raw", "2013-01-03")
        changed = project.refresh(report)
        assert ("raw", "2013-01-03") in changed
        full = project.status()
        for name in project.graph.names:
            assert report.counts(name) == full.counts(name)


def test_bad_inputs_exit_2_and_change_nothing(proj: Path, capsys, monkeypatch):
    code, _, err = cli(proj, "status", "nosuch", capsys=capsys)
    assert code == 2 and "No asset named 'nosuch'" in err
    monkeypatch.setenv("NBO_STORE_URL", "sqlite:////proc/definitely/not/here.db")
    code, _, err = cli(proj, "status", capsys=capsys)
    assert code == 2 and "error:" in err
    monkeypatch.delenv("NBO_STORE_URL")
    (proj / "pyproject.toml").write_text("[tool.notebook_orch]\nnotebok = 'x'\n")
    code, _, err = cli(proj, "status", capsys=capsys)
    assert code == 2 and "unknown key(s) ['notebok']" in err


def test_a_cycle_is_invalid_and_the_rest_keeps_working(proj: Path, capsys):
    write(proj, "cycle.ipynb", "%%asset c1 --deps c2\nc1 = 1", "%%asset c2 --deps c1\nc2 = 1")
    code, out, _ = cli(proj, "status", capsys=capsys)
    assert code == 0 and "c1: INVALID - notebooks/cycle.ipynb" in out and "Dependency cycle" in out
    assert set(Project(proj).graph.names) == {"raw", "clean", "report"}
    assert set(Project(proj).invalid_assets()) == {"c1", "c2"}
    code, _, err = cli(proj, "validate", capsys=capsys)
    assert code == 1 and "Dependency cycle" in err


def test_config_defaults_and_overrides(tmp_path: Path, monkeypatch):
    cfg = load_config(tmp_path)
    assert cfg.notebooks == tmp_path / "notebooks"
    assert cfg.store_url == f"sqlite:///{tmp_path / '.notebook_orch/store.db'}"
    assert cfg.data_dir == tmp_path / ".notebook_orch" / "data"
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "nbs"\nstore = "meta.db"\n')
    monkeypatch.setenv("NBO_DATA_DIR", "elsewhere")
    cfg = load_config(tmp_path)
    assert cfg.notebooks == tmp_path / "nbs" and cfg.store_url == f"sqlite:///{tmp_path / 'meta.db'}"
    assert cfg.data_dir == tmp_path / "elsewhere"
    (tmp_path / "pyproject.toml").write_text("[tool.notebook_orch\n")
    with pytest.raises(NotebookOrchError, match="not valid TOML"):
        load_config(tmp_path)


def test_console_scripts_installed_and_import_is_light():
    for script in ("nbo", "notebook-orch"):
        exe = Path(sys.executable).with_name(script)
        out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "validate" in out.stdout
    code = ("import sys, notebook_orch; heavy = [m for m in ('pandas', 'numpy', 'sqlalchemy', 'papermill', "
            "'IPython', 'rich') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_engine_or_file_until_the_store_is_used(proj: Path):
    project = Project(proj)
    project.problems()
    assert project._store is None and not (proj / ".notebook_orch").exists()


def test_output_piped_into_a_reader_that_leaves_early(proj: Path):
    # Far more than a pipe buffer (64 KiB) of lineage, so the write really fails once `head` has gone.
    write(proj, "many.ipynb", *[f"%%asset many_{i:04d} {DAYS}\nmany_{i:04d} = 1" for i in range(900)])
    exe = Path(sys.executable).with_name("nbo")
    out = subprocess.run(f"'{exe}' -C '{proj}' lineage --no-status | head -1; echo \"${{PIPESTATUS[0]}}\"",
                         shell=True, executable="/bin/bash", capture_output=True, text=True)
    first, code = out.stdout.splitlines()
    assert first.startswith("many_0000") and code == "0" and "BrokenPipeError" not in out.stderr
