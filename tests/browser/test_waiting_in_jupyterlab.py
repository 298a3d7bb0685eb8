"""A run waiting for a pool slot, as a person sees it in JupyterLab and Chromium: with ``max_runs = 1`` one run holds
the only slot and a run of ``summary`` waits. On both graph canvases the ``summary`` node is painted in the WAITING
colour (read back from the canvas pixels, not only the style), the legend lists "waiting", its panel says which pool
it waits for, and the heatmap paints that partition WAITING too; when it gets the slot the node (and the heatmap
cell) turns the RUNNING colour on the open page."""

from __future__ import annotations

import json

import pytest
from browser_helpers import (
    CY,
    KEYS,
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

from notebook_orch.core.viewstates import COLOURS
from notebook_orch.project import Project

GLOBAL = {"global": 1}
CELLS = {
    "ipycytoscape": ["%load_ext notebook_orch", "%nbo graph"],
    "anywidget": ["%load_ext notebook_orch", "from notebook_orch.widgets import LineageGraph",
                  "LineageGraph(adapter='anywidget')", "%nbo partitions"],
}
# The colour of a heatmap cell's centre pixel, as ``#rrggbb`` (the heatmap test's recipe).
HEAT_PIXEL = """([asset, index]) => {
    const c = document.querySelector('.nbo-partitions-canvas');
    if (!c || c.dataset.ready !== '1' || !c._nboHeatmap) return null;
    const b = c._nboHeatmap.cellBox(asset, index); const dpr = c.width / c.clientWidth;
    const [r, g, bl] = c.getContext('2d').getImageData(Math.floor((b.x + b.w / 2) * dpr),
        Math.floor((b.y + b.h / 2) * dpr), 1, 1).data;
    const hex = (v) => v.toString(16).padStart(2, '0');
    return '#' + hex(r) + hex(g) + hex(bl); }"""


def pixel(page, name: str) -> str:
    """The colour cytoscape painted inside ``name``'s box (left of its label, above any partition bar), read from
    the topmost canvas layer that has paint there."""
    return page.evaluate(f"""() => {{ const cy = {CY}; const n = cy.getElementById({json.dumps(name)});
        const p = n.renderedPosition(), w = n.renderedWidth(), h = n.renderedHeight();
        const x = p.x - 0.4 * w, y = p.y - 0.2 * h;
        const layers = [...document.querySelector('.nbo-lineage-canvas').querySelectorAll('canvas')].reverse();
        for (const c of layers) {{
            const r = c.width / c.clientWidth || 1;
            const d = c.getContext('2d').getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data;
            if (d[3] > 0) return `rgb(${{d[0]}},${{d[1]}},${{d[2]}})`;
        }}
        return 'none'; }}""")


@pytest.mark.parametrize("kind", ["ipycytoscape", "anywidget"])
def test_a_waiting_run_is_drawn_waiting_then_running(example, lab, page, kind):
    pyproject = example / "pyproject.toml"
    if "max_runs" not in pyproject.read_text():
        pyproject.write_text(pyproject.read_text() + "\n[tool.notebook_orch.concurrency]\nmax_runs = 1\n")
    with Project(example) as project:
        store = project.store
        holder = store.start_run(notebook="notebooks/model.ipynb", targets=[("rolling", KEYS[0])], kind="manual",
                                 pools=GLOBAL)
        waiter = store.start_run(notebook="notebooks/model.ipynb", targets=[("summary", "unpartitioned")],
                                 kind="manual", pools=GLOBAL)
        assert (holder.status, waiter.status) == ("RUNNING", "WAITING")
        try:
            notebook(example / f"waiting_{kind}.ipynb", CELLS[kind])
            open_notebook(page, lab, f"waiting_{kind}.ipynb")
            run_all(page)
            wait_for_graph(page, 4)
            assert adapter(page) == kind
            page.locator(".nbo-lineage-canvas").scroll_into_view_if_needed()
            shown = node_states(page)
            assert shown["summary"]["status"] == "WAITING" and "status-waiting" in shown["summary"]["classes"]
            assert shown["summary"]["colour"] == rgb(COLOURS["WAITING"])
            assert shown["rolling"]["colour"] == rgb(COLOURS["RUNNING"])
            page.wait_for_function(f"() => {CY}.getElementById('summary').renderedWidth() > 20", timeout=10_000)
            assert pixel(page, "summary") == rgb(COLOURS["WAITING"])
            assert pixel(page, "rolling") == rgb(COLOURS["RUNNING"])
            assert "waiting" in page.locator(".nbo-legend").first.inner_text()
            click_node(page, "summary")
            live = page.locator(".nbo-live-waiting")
            live.wait_for(timeout=20_000)
            assert f"run {waiter.run_id} waits for max_runs (global) with 0 ahead, since" in live.inner_text()
            screenshot(page, f"waiting-{kind}")
            if kind == "anywidget":  # the heatmap below the graph paints the waiting partition in the same colour
                page.locator(".nbo-partitions-canvas").wait_for(timeout=30_000)
                page.locator(".nbo-partitions-canvas").scroll_into_view_if_needed()
                page.wait_for_function(f"(a) => ({HEAT_PIXEL})(a) === {json.dumps(COLOURS['WAITING'])}",
                                       arg=["summary", 0], timeout=30_000)

            # The holder ends and the waiter takes the slot: the open page turns the node running.
            store.finalize_success(holder.run_id, [])
            assert store.take_pool_slots(waiter.run_id, GLOBAL) == "RUNNING"
            page.wait_for_function(f"() => {CY}.getElementById('summary').data('status') === 'RUNNING'",
                                   timeout=20_000)
            page.wait_for_function(f"() => {CY}.getElementById('summary').style('background-color') === "
                                   f"{json.dumps(rgb(COLOURS['RUNNING']))}", timeout=10_000)
            page.locator(".nbo-live-waiting").wait_for(state="detached", timeout=20_000)
            if kind == "anywidget":
                page.wait_for_function(f"(a) => ({HEAT_PIXEL})(a) === {json.dumps(COLOURS['RUNNING'])}",
                                       arg=["summary", 0], timeout=30_000)
            screenshot(page, f"waiting-{kind}-then-running")
        finally:
            for run in (holder, waiter):
                if store.get_run(run.run_id).status in ("RUNNING", "WAITING"):
                    store.finalize_failure(run.run_id, error="test over", status="CANCELED")
