"""The lineage graph in Notebook 7 (`jupyter notebook`, the notebook package) and Chromium: it renders with the
store's colours, and a click opens the panel (the example's 4 assets: the ipycytoscape canvas)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser_helpers import (
    Lab,
    adapter,
    click_node,
    node_states,
    open_browser,
    open_notebook,
    rgb,
    run_all,
    screenshot,
    wait_for_graph,
)

from notebook_orch.core.status import headline_status
from notebook_orch.core.viewmodel import COLOURS
from notebook_orch.project import Project


@pytest.fixture(scope="module")
def notebook7(example: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("notebook", reason="Notebook 7 is a test extra (pip install -e '.[test]')")
    server = Lab(example, tmp_path_factory.mktemp("jupyter-nb7"), app="notebook")
    yield server
    server.stop()


def test_graph_renders_and_answers_a_click_in_notebook7(example, notebook7, tmp_path):
    pw, ctx = open_browser(tmp_path / "chromium")
    try:
        page = ctx.new_page()
        open_notebook(page, notebook7, "lineage.ipynb", notebook7=True)
        assert "/notebooks/lineage.ipynb" in page.url and page.locator("#jp-NotebookPanel, .jp-NotebookPanel").count()
        run_all(page)
        wait_for_graph(page, 4)
        assert adapter(page) == "ipycytoscape"
        with Project(example) as project:
            report = project.status()
            expected = {n: headline_status(report.counts(n)) for n in project.graph.order}
        shown = node_states(page)
        assert {n: s["status"] for n, s in shown.items()} == expected
        assert {n: s["colour"] for n, s in shown.items()} == {n: rgb(COLOURS[s]) for n, s in expected.items()}
        click_node(page, "summary")
        page.locator(".nbo-panel h3", has_text="summary").wait_for(timeout=30_000)
        page.get_by_role("button", name="Materialize", exact=True).wait_for(timeout=10_000)
        screenshot(page, "lineage-notebook7")
    finally:
        ctx.close()
        pw.stop()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
