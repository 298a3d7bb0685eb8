"""A broken declaration breaks only itself and what is downstream of it — through ``nbo`` on real notebook files.

Each kind of broken declaration (bad options, unknown dependency, cycle, a mapping that does not fit, a duplicate
name) is saved in a scratch notebook next to a working project; ``status``, ``stale`` and ``lineage`` keep working
and show the broken asset as ``INVALID`` with its problem, ``validate`` lists every problem and exits 1, and
selecting a broken asset to materialize is refused naming its problem, with nothing stored.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.faces.cli import main

DAYS = "--partitions daily:2024-01-01..2024-01-03"
REPO = Path(__file__).resolve().parents[1]


def write(root: Path, name: str, *cells: str) -> None:
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), root / "notebooks" / name)


def cli(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["-C", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    write(tmp_path, "pipeline.ipynb", "%load_ext notebook_orch", f"%%asset raw {DAYS}\nraw = {{'day': partition_key}}",
          f"%%asset clean --deps raw {DAYS}\nclean = raw")
    return tmp_path


def status_json(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    code, out, err = cli(root, "status", "--json", capsys=capsys)
    assert code == 0, err
    return {row["asset"]: row for row in json.loads(out)["assets"]}


BROKEN = {
    "bad options": (["%%asset bad --depz raw\nbad = 1"], {"bad"}, "unrecognized arguments: --depz raw"),
    "unknown dependency": (["%%asset bad --deps nope\nbad = 1"], {"bad"},
                           "Asset 'bad' depends on 'nope', which no asset declares"),
    "cycle": (["%%asset c1 --deps c2\nc1 = 1", "%%asset c2 --deps c1\nc2 = 1"], {"c1", "c2"}, "Dependency cycle"),
    "mapping": (["%%asset bad --deps raw[-1]\nbad = raw"], {"bad"}, "Dependency 'raw[-1]' of asset 'bad' does not fit"),
    "duplicate": (["%%asset clean\nclean = 2"], {"clean"}, "Asset 'clean' is defined twice"),
}  # fmt: skip
READS = {"duplicate": "clean[all]"}  # the first 'clean' is daily: an unpartitioned reader reads all of it


@pytest.mark.parametrize("kind", list(BROKEN))
def test_each_broken_declaration_is_invalid_and_the_rest_keeps_working(proj: Path, kind: str,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cells, invalid, says = BROKEN[kind]
    write(proj, "scratch.ipynb", *cells, "%%asset after --deps " + READS.get(kind, sorted(invalid)[0]) + "\nafter = 1")
    rows = status_json(proj, capsys)
    assert {n for n, r in rows.items() if r["status"] == "INVALID"} == invalid | {"after"}
    valid = {"raw", "clean"} - invalid
    assert all(rows[n]["status"] == "MISSING" and rows[n]["missing"] == 3 for n in valid)
    for name in invalid:
        assert any(says in p for p in rows[name]["problems"]), rows[name]["problems"]
        partitions = 3 if kind == "duplicate" else 1  # the first declaration of 'clean' is daily
        assert (rows[name]["invalid"], rows[name]["fresh"], rows[name]["missing"]) == (partitions, 0, 0)
    assert rows["after"]["problems"] == [
        f"notebooks/scratch.ipynb, cell {len(cells) + 1}: Asset 'after' depends on invalid {sorted(invalid)[0]!r}; "
        "it is left out until that declaration is fixed (nbo validate lists the problem)."]
    assert rows["after"]["invalid_deps"] == [sorted(invalid)[0]]
    totals = json.loads(cli(proj, "status", "--json", capsys=capsys)[1])["totals"]
    assert totals["INVALID"] == sum(r["invalid"] for r in rows.values())

    code, _, err = cli(proj, "validate", capsys=capsys)
    assert code == 1 and says in err
    assert "Also left out, as they depend on an invalid asset: after." in err


def test_status_text_shows_invalid_assets_with_their_problem(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(proj, "scratch.ipynb", "%%asset bad --deps nope\nbad = 1")
    code, out, _ = cli(proj, "status", capsys=capsys)
    assert code == 0
    assert "raw" in out and "clean" in out and "INVALID" in out
    assert "1 invalid asset(s), left out until fixed" in out
    assert "invalid 1" in out.split("totals:")[1]  # the totals agree with the INVALID row
    assert ("bad: INVALID - notebooks/scratch.ipynb, cell 1: Asset 'bad' depends on 'nope', which no asset "
            "declares; fix --deps, or declare 'nope' in a notebook.") in out
    code, out, _ = cli(proj, "status", "bad", capsys=capsys)  # selecting it to look at it is fine
    assert code == 0 and "bad: INVALID" in out and "raw" not in out


def test_validate_json_lists_every_problem(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(proj, "scratch.ipynb", "%%asset bad --deps nope\nbad = 1", "%%asset worse --deps bad\nworse = bad",
          "%%asset c1 --deps c2\nc1 = 1", "%%asset c2 --deps c1\nc2 = 1")
    code, out, _ = cli(proj, "validate", "--json", capsys=capsys)
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and len(data["problems"]) == 3  # c1 also reads c2 from further down
    assert sorted(data["invalid_assets"]) == ["bad", "c1", "c2", "worse"]
    assert "depends on invalid 'bad'" in data["invalid_assets"]["worse"][0]


def test_stale_and_lineage_show_invalid_assets(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(proj, "scratch.ipynb", f"%%asset bad --deps raw,nope {DAYS}\nbad = raw")
    code, out, _ = cli(proj, "stale", capsys=capsys)
    assert code == 0 and "bad: INVALID - notebooks/scratch.ipynb, cell 1: Asset 'bad' depends on 'nope'" in out
    code, out, _ = cli(proj, "stale", "--json", capsys=capsys)
    (item,) = [i for i in json.loads(out)["stale"] if i["status"] == "INVALID"]
    assert item["asset"] == "bad" and "which no asset declares" in item["causes"][0]["message"]
    assert status_json(proj, capsys)["bad"]["invalid"] == 3  # each of its daily partitions

    code, out, _ = cli(proj, "lineage", capsys=capsys)
    assert code == 0 and "bad [INVALID]  <- raw, nope" in out and "INVALID: notebooks/scratch.ipynb, cell 1" in out
    code, out, _ = cli(proj, "lineage", "--json", capsys=capsys)
    assets = {a["name"]: a for a in json.loads(out)["assets"]}
    assert assets["bad"]["status"] == "INVALID" and "which no asset declares" in assets["bad"]["problems"][0]
    assert assets["raw"]["status"] == "MISSING"
    assert {"from": "raw", "to": "bad", "mapping": "identity"} in json.loads(out)["edges"]
    code, out, _ = cli(proj, "lineage", "--format", "mermaid", capsys=capsys)
    assert code == 0 and 'bad["bad<br/>invalid"]' in out and "raw --> bad" in out and "class bad st_invalid" in out
    code, out, _ = cli(proj, "lineage", "--format", "svg", capsys=capsys)
    picture = html.unescape(out)
    assert code == 0 and 'data-asset="bad" data-status="INVALID"' in picture
    assert "INVALID: Asset 'bad' depends on 'nope', which no asset declares" in picture


def test_materializing_an_invalid_asset_is_refused_naming_its_problem(proj: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write(proj, "scratch.ipynb", "%%asset bad --deps nope\nbad = 1", "%%asset worse --deps bad\nworse = 1")
    for selection, says in [("bad", "Asset 'bad' depends on 'nope', which no asset declares"),
                            ("worse", "Asset 'worse' depends on invalid 'bad'")]:
        code, out, err = cli(proj, "materialize", selection, capsys=capsys)
        assert code == 2 and out == ""
        assert err.startswith(f"error: Asset {selection!r} is invalid, so it cannot be used until its declaration is "
                              "fixed: notebooks/scratch.ipynb") and says in err
    with Project(proj) as project:
        assert project.store.list_runs() == []
    assert not (proj / ".notebook_orch" / "data").exists()


def test_project_api_returns_the_valid_graph_and_the_invalid_assets(proj: Path) -> None:
    write(proj, "scratch.ipynb", "%%asset bad --deps nope\nbad = 1")
    with Project(proj) as project:
        assert project.graph.names == ("raw", "clean")  # no ProjectInvalid
        problems = project.invalid_assets()
        assert list(problems) == ["bad"] and problems["bad"][0].notebook == "notebooks/scratch.ipynb"
        assert [str(p) for p in project.problems()] == [str(problems["bad"][0])]


def test_nbo_validate_exits_1_as_a_command(proj: Path) -> None:
    write(proj, "scratch.ipynb", "%%asset bad --deps nope\nbad = 1")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(proj), "validate"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "Asset 'bad' depends on 'nope', which no asset declares" in done.stderr
    done = subprocess.run([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(proj), "status"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and "bad: INVALID" in done.stdout


@pytest.mark.kernel
def test_valid_assets_materialize_next_to_an_invalid_one(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(proj, "scratch.ipynb", f"%%asset bad --deps clean,nope {DAYS}\nbad = clean")
    code, out, err = cli(proj, "materialize", "raw+", "--partition", "2024-01-02", "--json", capsys=capsys)
    assert code == 0, out + err
    rows = status_json(proj, capsys)
    assert (rows["raw"]["fresh"], rows["clean"]["fresh"]) == (1, 1)
    assert rows["bad"]["status"] == "INVALID"
    with Project(proj) as project:
        assert sorted(a for r in project.store.list_runs() for a in r.assets) == ["clean", "raw"]
