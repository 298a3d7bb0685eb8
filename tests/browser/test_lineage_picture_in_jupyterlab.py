"""The lineage exports where a person meets them, in JupyterLab 4 and Chromium: ``%nbo lineage`` draws the graph in
the notebook, and ``nbo lineage --format mermaid`` pasted into a Markdown cell renders in JupyterLab's own Mermaid
renderer (it used to fail with a parse error)."""

from __future__ import annotations

from browser_helpers import nbo, notebook, open_notebook, run_all, screenshot

from notebook_orch.core.status import headline_status
from notebook_orch.core.viewmodel import COLOURS
from notebook_orch.project import Project


def test_nbo_lineage_picture_and_mermaid_render_in_jupyterlab(example, lab, page):
    mermaid = nbo(example, "lineage", "--format", "mermaid")
    nb = example / "picture.ipynb"
    notebook(nb, ["%load_ext notebook_orch", "%nbo lineage"],
             markdown=f"# Lineage, as Mermaid\n\n```mermaid\n{mermaid}\n```")
    with Project(example) as project:
        report = project.status()
        expected = {name: headline_status(report.counts(name)) for name in project.graph.order}
    assert expected == {"raw": "FRESH", "clean": "FRESH", "rolling": "MISSING", "summary": "MISSING"}

    open_notebook(page, lab, "picture.ipynb")
    run_all(page)
    page.locator(".jp-OutputArea-output svg.nbo-lineage").wait_for(timeout=60_000)
    shown = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        '.jp-OutputArea-output svg.nbo-lineage g.node')].map(g => [g.dataset.asset,
        {status: g.dataset.status, stroke: g.querySelector('rect').getAttribute('stroke'),
         box: g.getBoundingClientRect().width}]))""")
    assert {n: s["status"] for n, s in shown.items()} == expected
    assert {n: s["stroke"] for n, s in shown.items()} == {n: COLOURS[s] for n, s in expected.items()}
    assert all(s["box"] > 50 for s in shown.values())  # drawn at a readable size, not collapsed
    screenshot(page, "lineage-picture-output")

    # JupyterLab's Mermaid renderer draws a Markdown fence as an <img> of the SVG: no parse-error warning, and a
    # node per asset in that SVG.
    page.locator(".jp-RenderedMermaid img").first.wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelector('.jp-RenderedMermaid img').naturalWidth > 0")
    rendered = page.evaluate("""() => { const box = document.querySelector('.jp-RenderedMermaid');
        const src = box.querySelector('img').getAttribute('src'); const body = src.slice(src.indexOf(',') + 1);
        const svg = src.includes(';base64,') ? atob(body) : decodeURIComponent(body);
        return {warning: box.classList.contains('jp-mod-warning'), text: box.innerText,
                nodes: (svg.match(/class="node[ "]/g) || []).length, labels: ['raw', 'clean', 'rolling', 'summary',
                '[all]', '[-1:0]'].filter(t => svg.includes(t))}; }""")
    assert rendered["warning"] is False, rendered["text"]
    assert rendered["nodes"] == 4, rendered
    assert rendered["labels"] == ["raw", "clean", "rolling", "summary", "[all]", "[-1:0]"]
    page.locator(".jp-RenderedMermaid").first.scroll_into_view_if_needed()
    screenshot(page, "lineage-mermaid-in-jupyterlab")
