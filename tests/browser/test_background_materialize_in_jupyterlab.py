"""In JupyterLab, as a person: %nbo materialize returns at once with a progress view, the next cell runs while the
runs go on, the view ends "done" and the store has every run (issue 6, defect 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from browser_helpers import ARTIFACTS, Lab, notebook, open_browser, open_notebook, run_all, screenshot

from notebook_orch import Project

CELLS = [
    "%load_ext notebook_orch",
    "view = %nbo materialize slow --from 2013-01-01 --to 2013-01-06 --workers 2",
    "import time\nprint('kernel usable at', time.strftime('%H:%M:%S'), 'while done =', view.handle.done())",
]


def test_materialize_in_the_background_while_the_person_keeps_working(tmp_path: Path,
                                                                      tmp_path_factory: Any) -> None:
    root = tmp_path / "proj"
    (root / "pyproject.toml").parent.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n', encoding="utf-8")
    notebook(root / "notebooks" / "slow.ipynb", [
        "%load_ext notebook_orch\nimport time",
        "%%asset slow --partitions daily:2013-01-01..2013-01-31\ntime.sleep(2)\nslow = {'day': partition_key}"])
    notebook(root / "work.ipynb", CELLS)
    lab = Lab(root, tmp_path_factory.mktemp("jupyter"))
    pw, ctx = open_browser(tmp_path_factory.mktemp("chromium"))
    try:
        page = ctx.new_page()
        open_notebook(page, lab, "work.ipynb")
        run_all(page)
        # The third cell printed while the runs were still going: the prompt came back at once.
        page.wait_for_selector("text=while done = False", timeout=90_000)
        page.wait_for_selector("text=/\\d\\/6 · \\d+:\\d\\d elapsed/", timeout=30_000)  # the live view
        screenshot(page, "background-materialize-running")
        page.wait_for_selector("text=/done · 6\\/6/", timeout=180_000)
        shot = screenshot(page, "background-materialize-done")
        assert shot.exists() and shot.parent == ARTIFACTS
    except Exception:
        screenshot(page, "background-materialize-failure")
        raise
    finally:
        ctx.close()
        pw.stop()
        lab.stop()
    with Project(root) as project:
        runs = project.runs(limit=50)
        assert len(runs) == 6 and {r.status for r in runs} == {"SUCCESS"}
        assert project.status().counts("slow")["FRESH"] == 6
