"""``nbo materialize x+`` says which invalid assets downstream of x it leaves out and why, instead of dropping them
silently (plan, dry run, --json and the report of a real materialization all carry them)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.engine.runner import RunPlanReport
from notebook_orch.faces.cli import main

DAYS = "--partitions daily:2024-01-01..2024-01-03"


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "notebooks").mkdir()
    cells = ["%load_ext notebook_orch", f"%%asset raw {DAYS}\nraw = 1", f"%%asset clean --deps raw {DAYS}\nclean = raw",
             f"%%asset broken --deps raw,nope {DAYS}\nbroken = raw",
             f"%%asset after_broken --deps broken {DAYS}\nafter_broken = broken"]
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), tmp_path / "notebooks" / "p.ipynb")
    return tmp_path


def test_the_plan_names_the_invalid_assets_downstream(proj: Path) -> None:
    with Project(proj) as project:
        plan = project.plan("raw+")
        assert {r.assets for r in plan.runs} == {("raw", "clean")}
        assert [name for name, _ in plan.left_out] == ["after_broken", "broken"]
        why = dict(plan.left_out)
        assert "nope" in why["broken"] and "cell 4" in why["broken"]
        assert "broken" in why["after_broken"]
        assert project.plan("raw").left_out == ()  # not reached: not mentioned
        assert [n for n, _ in project.plan("raw", downstream=True).left_out] == ["after_broken", "broken"]
    text = plan.describe()
    assert "Left out 2 invalid assets the selection reaches" in text
    assert "\n  broken: " in text and "\n  after_broken: " in text


def test_dry_run_prints_and_json_lists_them(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(proj), "materialize", "raw+", "--partition", "2024-01-01", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Left out 2 invalid assets" in out and "  broken: " in out
    assert main(["-C", str(proj), "materialize", "raw+", "--partition", "2024-01-01", "--dry-run", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["asset"] for d in data["left_out"]] == ["after_broken", "broken"]


def test_the_report_summary_counts_them() -> None:
    report = RunPlanReport((), 0.0, (), (("broken", "bad --retries"),))
    assert report.summary().endswith("1 invalid asset(s) left out")
