"""Both graph canvases in JupyterLab and Chromium: the example (4 assets) draws with ipycytoscape by default and
with the anywidget canvas when asked (what 150+ assets get); each shows the store's colours, opens the panel on a
click, and collapses a notebook box into one node whose edges stand for its assets' edges, then expands it."""

from __future__ import annotations

import json

import nbformat
import pytest
from browser_helpers import (
    CY,
    adapter,
    click_node,
    node_states,
    notebook,
    open_notebook,
    rgb,
    run_all,
    screenshot,
    wait_for_graph,
)

from notebook_orch.core.status import headline_status
from notebook_orch.core.viewmodel import COLOURS
from notebook_orch.project import Project

CELLS = {
    "ipycytoscape": ["%load_ext notebook_orch", "%nbo graph"],
    "anywidget": ["%load_ext notebook_orch", "from notebook_orch.widgets import LineageGraph",
                  "LineageGraph(adapter='anywidget')"],
}


def click_box(page, group: str) -> None:
    """Click a notebook box on its label strip (its top edge, where no asset node is)."""
    xy = page.evaluate(f"""() => {{ const cy = {CY}; const g = cy.getElementById({json.dumps(group)});
        const b = g.renderedBoundingBox({{includeLabels: false}}); return [(b.x1 + b.x2) / 2, b.y1 + 6]; }}""")
    page.locator(".nbo-lineage-canvas").click(position={"x": xy[0], "y": xy[1]})


def follow_cell_link(page) -> None:
    """The panel's notebook link opens that notebook in this JupyterLab, scrolled to the asset's cell (40 markdown
    cells come before it, so it is far below the fold unless the link's #cell-id= fragment is followed)."""
    link = page.locator(".nbo-where a.nbo-cell-link")
    assert "#cell-id=" in link.get_attribute("href")
    page.evaluate("() => { window.__graphTab = window.jupyterapp.shell.currentWidget.id; }")
    link.click()
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
            if (!w || !w.context || w.context.path !== 'notebooks/sources.ipynb') return false;
            const nb = w.content, i = nb.widgets.findIndex(c => c.model.sharedModel.getSource()
                .startsWith('%%asset clean'));
            if (i < 40) return false;
            const r = nb.widgets[i].node.getBoundingClientRect(), v = nb.node.getBoundingClientRect();
            return r.height > 0 && r.top >= v.top - 1 && r.bottom <= v.bottom + 1; }""", timeout=60_000)
    screenshot(page, "cell-link-opened")
    page.evaluate("() => window.jupyterapp.shell.activateById(window.__graphTab)")  # back to the graph
    page.locator(".nbo-lineage-canvas").wait_for(state="visible", timeout=30_000)


@pytest.mark.parametrize("kind", ["ipycytoscape", "anywidget"])
def test_each_canvas_draws_clicks_and_collapses(example, lab, page, kind):
    if kind == "ipycytoscape":  # markdown cells above the assets: the cell link must scroll to reach them
        path = example / "notebooks" / "sources.ipynb"
        nb = nbformat.read(path, as_version=4)
        nb.cells = [nbformat.v4.new_markdown_cell(f"Notes {i}") for i in range(40)] + nb.cells
        nbformat.write(nb, path)
    notebook(example / f"graph_{kind}.ipynb", CELLS[kind])
    open_notebook(page, lab, f"graph_{kind}.ipynb")
    run_all(page)
    wait_for_graph(page, 4)
    assert adapter(page) == kind
    with Project(example) as project:
        report = project.status()
        expected = {n: headline_status(report.counts(n)) for n in project.graph.order}
    shown = node_states(page)
    assert {n: s["status"] for n, s in shown.items()} == expected
    assert {n: s["colour"] for n, s in shown.items()} == {n: rgb(COLOURS[s]) for n, s in expected.items()}
    legend = page.locator(".nbo-legend").first.inner_text()
    assert "fresh" in legend and "missing" in legend and "click an asset" in legend

    click_node(page, "clean")
    page.locator(".nbo-panel h3", has_text="clean").wait_for(timeout=20_000)
    assert "Defined in" in page.locator(".nbo-where").inner_text()
    if kind == "ipycytoscape":  # the link is the panel's, the same on both canvases: followed once
        follow_cell_link(page)

    group = "nb:notebooks/model.ipynb"
    click_box(page, group)
    # ipycytoscape sends each changed node and the new edge as widget messages of their own: wait for all of them
    page.wait_for_function(f"() => {CY}.getElementById('rolling').style('display') === 'none' && "
                           f"{CY}.getElementById('summary').style('display') === 'none' && "
                           f"{CY}.edges('.meta').length > 0", timeout=30_000)
    state = page.evaluate(f"""() => {{ const cy = {CY};
        return {{ hidden: cy.nodes(':childless').filter(n => n.style('display') === 'none').map(n => n.id()).sort(),
                 meta: cy.edges('.meta').map(e => [e.source().id(), e.target().id(), e.style('display')]),
                 box: cy.getElementById({json.dumps(group)}).data('text') }}; }}""")
    assert state["hidden"] == ["rolling", "summary"]
    assert state["meta"] == [["clean", group, "element"]]  # clean -> rolling and clean -> summary, drawn once
    assert state["box"] == "notebooks/model.ipynb\n2 assets (collapsed)"
    screenshot(page, f"graph-{kind}-collapsed")
    click_box(page, group)
    page.wait_for_function(f"() => {CY}.getElementById('rolling').style('display') === 'element' && "
                           f"{CY}.edges('.meta').length === 0", timeout=20_000)
    screenshot(page, f"graph-{kind}")
