"""The lineage widget in JupyterLab 4 and Chromium: colours match the store, a click opens the panel, Materialize
runs in the background while the kernel stays usable, and runs started elsewhere (the CLI) show live."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import nbformat
from browser_helpers import (
    CY,
    click_node,
    kernel_eval,
    node_states,
    open_notebook,
    rgb,
    run_all,
    screenshot,
    wait_for_graph,
)

from notebook_orch.core.status import headline_status
from notebook_orch.core.viewmodel import COLOURS
from notebook_orch.project import Project


def store_statuses(root) -> dict[str, str]:
    with Project(root) as project:
        report = project.status()
        return {name: headline_status(report.counts(name)) for name in project.graph.order}


def wait_status(page, name: str, status: str, timeout_s: float) -> float:
    t0 = time.monotonic()
    page.wait_for_function(
        f"() => {CY}.getElementById('{name}').data('status') === '{status}'", timeout=timeout_s * 1000)
    return time.monotonic() - t0


def test_graph_colours_click_and_materialize(example, lab, page):
    open_notebook(page, lab, "lineage.ipynb")
    t0 = time.monotonic()
    run_all(page)
    wait_for_graph(page, 4)
    print(f"graph interactive {time.monotonic() - t0:.2f} s after Run All")
    expected = store_statuses(example)
    assert expected == {"raw": "FRESH", "clean": "FRESH", "rolling": "MISSING", "summary": "MISSING"}
    shown = node_states(page)
    assert {n: s["status"] for n, s in shown.items()} == expected
    assert {n: s["colour"] for n, s in shown.items()} == {n: rgb(COLOURS[s]) for n, s in expected.items()}
    screenshot(page, "lineage-graph")

    t0 = time.monotonic()
    click_node(page, "summary")
    page.locator(".nbo-panel h3", has_text="summary").wait_for(timeout=10_000)
    opened = time.monotonic() - t0
    built = kernel_eval(page, "round(Out[2].timings['panel_s'], 3)")
    print(f"panel open {opened:.2f} s after the click; built in the kernel in {built} s")
    assert "Defined in" in page.locator(".nbo-where").inner_text()
    page.get_by_role("button", name="Materialize", exact=True).click()
    # "Started", then "Running n/m" from the live thread, then "Done": any of them says the button did its work.
    page.get_by_text(re.compile(r"(Started|Running|Done:) materialize summary")).wait_for(timeout=60_000)

    # The kernel stays usable while the run goes on in the background.
    t0 = time.monotonic()
    answer = kernel_eval(page, "6 * 7")
    print(f"kernel answered in {time.monotonic() - t0:.2f} s during the run")
    assert answer == "42"

    took = wait_status(page, "summary", "FRESH", 120)
    print(f"summary fresh on the page {took:.1f} s after the kernel answered")
    assert store_statuses(example)["summary"] == "FRESH"
    with Project(example) as project:
        assert [r.status for r in project.store.list_runs(asset="summary")] == ["SUCCESS"]
    page.locator(".nbo-panel", has_text="Last materialization").wait_for(timeout=10_000)
    screenshot(page, "lineage-after-materialize")


def test_cli_run_shows_running_then_fresh(example, lab, page):
    if page.url.find("lineage.ipynb") < 0:
        open_notebook(page, lab, "lineage.ipynb")
        run_all(page)
        wait_for_graph(page, 4)
    page.evaluate(f"""() => {{ window.__seen = []; const n = {CY}.getElementById('rolling');
        window.__watch = setInterval(() => {{ const s = n.data('status');
            if (window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s); }}, 20); }}""")
    cli = subprocess.Popen([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(example), "materialize",
                            "rolling"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_status(page, "rolling", "RUNNING", 60)
        screenshot(page, "lineage-cli-running")
        wait_status(page, "rolling", "FRESH", 120)
    finally:
        out, _ = cli.communicate(timeout=120)
    assert cli.returncode == 0, out
    seen = page.evaluate("() => window.__seen")
    assert seen[0] == "MISSING" and "RUNNING" in seen and seen[-1] == "FRESH", seen
    assert store_statuses(example)["rolling"] == "FRESH"

    # An upstream cell edited and saved: the graph is redrawn and what reads it turns stale.
    path = example / "notebooks" / "sources.ipynb"
    nb = nbformat.read(path, as_version=4)
    raw = next(c for c in nb.cells if c.source.startswith("%%asset raw"))
    raw.source = raw.source.replace("[1.0, 2.0, None]", "[1.0, 2.5, None]")
    nbformat.write(nb, path)
    took = wait_status(page, "rolling", "STALE", 30)
    print(f"an edited upstream cell turned rolling stale on the page in {took:.1f} s")
    assert {n: s["status"] for n, s in node_states(page).items()} == store_statuses(example) == {
        "raw": "STALE", "clean": "STALE", "rolling": "STALE", "summary": "STALE"}
    screenshot(page, "lineage-after-edit")
