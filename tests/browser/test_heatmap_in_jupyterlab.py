"""The partition heatmap where a person meets it: ``%nbo partitions`` in JupyterLab 4 and Chromium. The canvas's
pixels match the store's statuses, hovering a cell names it, a click reaches Python (``selected``, ``on_select``),
and a run started by another process turns its cell running, then fresh, on the open page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, kernel_eval, open_notebook, run_all, screenshot
from heatmap_helpers import inputs_now, write_example

from notebook_orch.core.viewmodel import COLOURS
from notebook_orch.project import Project
from notebook_orch.store.records import NewMaterialization

CANVAS = ".nbo-partitions-canvas"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Overrides the shared example: a half year of daily assets with every status already in the store."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    pytest.importorskip("playwright")
    return write_example(tmp_path_factory.mktemp("heatmap"))


# Where a cell is drawn (CSS px in the canvas) and the colour of its centre pixel, as ``#rrggbb``.
PIXEL = """(asset, index) => {
    const c = document.querySelector('.nbo-partitions-canvas'); const b = c._nboHeatmap.cellBox(asset, index);
    const dpr = c.width / c.clientWidth;
    const [r, g, bl] = c.getContext('2d').getImageData(Math.floor((b.x + b.w / 2) * dpr),
        Math.floor((b.y + b.h / 2) * dpr), 1, 1).data;
    const hex = (v) => v.toString(16).padStart(2, '0');
    return {...b, colour: '#' + hex(r) + hex(g) + hex(bl)}; }"""


def cell(page, asset: str, index: int) -> dict:
    return page.evaluate(f"([a, i]) => ({PIXEL})(a, i)", [asset, index])


def centre(box: dict) -> dict:
    return {"x": box["x"] + box["w"] / 2, "y": box["y"] + box["h"] / 2}


def test_heatmap_colours_hover_click_and_live_cells(example, lab, page):
    with Project(example) as project:
        report = project.status()
        keys = {name: report.keys(name) for name in project.graph.order}
        status = {name: [str(s) for s in (report.status(name, k) for k in keys[name])] for name in keys}
    # One partition of each status the store holds, and a static key.
    samples = [("orders", "2013-01-15"), ("orders", "2013-06-11"), ("orders", "2013-06-20"),
               ("orders_clean", "2013-03-12"), ("daily_revenue", "2013-03-12"), ("monthly_revenue", "2013-03"),
               ("regions", "asia"), ("regions", "latam"), ("summary", "unpartitioned")]
    expected = {(a, k): status[a][keys[a].index(k)] for a, k in samples}
    assert set(expected.values()) == {"FRESH", "FAILED", "MISSING", "STALE"}

    open_notebook(page, lab, "heatmap.ipynb")
    t0 = time.monotonic()
    run_all(page)
    page.wait_for_function(f"() => {{ const c = document.querySelector('{CANVAS}');"
                           " return c && c.dataset.ready === '1' && c.clientWidth > 0; }", timeout=60_000)
    drawn_s = time.monotonic() - t0
    page.locator(CANVAS).scroll_into_view_if_needed()
    assert page.evaluate(f"() => document.querySelector('{CANVAS}').dataset.rows") == "7"

    # Pixels: each sampled cell is painted in the legend's colour of its status in the store.
    for (asset, key), want in expected.items():
        got = cell(page, asset, keys[asset].index(key))
        assert got["colour"] == COLOURS[want], (asset, key, want, got)
    # A daily cell is one day wide, a monthly one as wide as its month, on the same axis.
    day, march = cell(page, "orders", 0), cell(page, "monthly_revenue", 2)
    assert march["w"] == pytest.approx(31 * day["w"], rel=1e-6) and day["w"] > 2
    assert march["x"] == pytest.approx(cell(page, "orders", 59)["x"], abs=1e-6)  # 2013-03-01 is day 60
    ticks = page.evaluate("() => document.querySelector('.nbo-partitions-axis').width") > 0
    assert ticks

    # Hover names the asset, the partition and its status.
    stale = cell(page, "orders_clean", keys["orders_clean"].index("2013-03-12"))
    page.locator(CANVAS).hover(position=centre(stale))
    tip = page.locator(".nbo-partitions-tip")
    tip.wait_for(state="visible", timeout=5_000)
    assert tip.inner_text() == "orders_clean · 2013-03-12 · stale"
    page.locator(CANVAS).hover(position=centre(cell(page, "regions", 2)))
    assert tip.inner_text() == "regions · asia · failed"

    # Click: the selection reaches Python (trait and callback) and the page says why.
    # (Out[2] first: a displayed result of kernel_eval, not stored in history, would overwrite Out[2].)
    kernel_eval(page, "heat = Out[2]; picked = []; heat.on_select(lambda asset, key: picked.append((asset, key)))")
    failed = cell(page, "orders", keys["orders"].index("2013-06-12"))
    t1 = time.monotonic()
    page.locator(CANVAS).click(position=centre(failed))
    page.wait_for_function("() => document.querySelector('.nbo-partitions-selected').dataset.partition"
                           " === '2013-06-12'", timeout=30_000)
    click_s = time.monotonic() - t1
    assert kernel_eval(page, "picked") == "[('orders', '2013-06-12')]"
    selected = kernel_eval(page, "repr(heat.selected)")
    assert "'asset': 'orders', 'partition': '2013-06-12', 'index': 162, 'status': 'FAILED'" in selected, selected
    assert "the last run failed" in page.locator(".nbo-partitions-selected").inner_text()
    # The graph below (%nbo graph in the same kernel) opened its panel on that asset, the partition filled in.
    page.locator(".nbo-panel h3", has_text="orders").wait_for(timeout=30_000)
    field = page.locator(".widget-text", has=page.locator(".widget-label", has_text="Partition")).locator("input")
    assert field.input_value() == "2013-06-12"
    page.locator(CANVAS).click(position=centre(cell(page, "daily_revenue", keys["daily_revenue"].index("2013-03-12"))))
    page.wait_for_function("() => document.querySelector('.nbo-partitions-selected').dataset.asset"
                           " === 'daily_revenue'", timeout=30_000)
    assert "root cause: orders_clean[2013-03-12] (code changed)" in page.locator(
        ".nbo-partitions-selected").inner_text()
    page.locator(CANVAS).hover(position=centre(cell(page, "orders", keys["orders"].index("2013-06-13"))))
    assert tip.inner_text() == "orders · 2013-06-13 · failed"
    screenshot(page, "heatmap-in-jupyterlab")
    # The README's figure: the widget alone, with a selection, its reason and a tooltip.
    page.locator(".nbo-partitions").screenshot(path=str(ARTIFACTS / "heatmap-widget.png"))
    page.mouse.move(5, 5)

    # Live: another process's run turns its cell running, then fresh, without redrawing the rest.
    target = keys["daily_revenue"].index("2013-05-01")
    assert cell(page, "daily_revenue", target)["colour"] == COLOURS["MISSING"]
    with Project(example) as project:
        spec = project.graph.spec("daily_revenue")
        run = project.store.start_run(notebook=spec.notebook, targets=[("daily_revenue", "2013-05-01")],
                                      kind="manual")
        page.wait_for_function(f"([a, i, c]) => ({PIXEL})(a, i).colour === c",
                               arg=["daily_revenue", target, COLOURS["RUNNING"]], timeout=10_000)
        inputs = inputs_now(project, "daily_revenue", ["2013-05-01"])["2013-05-01"]
        committed = time.time() * 1000
        project.store.finalize_success(run.run_id, [NewMaterialization(
            asset="daily_revenue", partition="2013-05-01", code_version=spec.code_version, data_version="v1",
            deps_signature=spec.deps_signature, inputs=inputs)])
        page.wait_for_function(f"([a, i, c]) => ({PIXEL})(a, i).colour === c",
                               arg=["daily_revenue", target, COLOURS["FRESH"]], timeout=10_000)
    applied = json.loads(page.evaluate(f"() => document.querySelector('{CANVAS}').dataset.lastPatch"))
    assert applied["applied_at"] - committed < 5_000
    assert page.evaluate("() => document.querySelector('.nbo-partitions-legend').innerText").count("fresh") == 1
    # Drag across March on the time rows: the axis zooms to those days, cells widen, hover and pixels still agree.
    page.locator(CANVAS).scroll_into_view_if_needed()
    canvas = page.locator(CANVAS).bounding_box()
    a, b = cell(page, "orders", 59), cell(page, "orders", 89)  # 2013-03-01, 2013-03-31
    page.mouse.move(canvas["x"] + a["x"] + a["w"] / 2, canvas["y"] + a["y"] + a["h"] / 2)
    page.mouse.down()
    page.mouse.move(canvas["x"] + b["x"], canvas["y"] + b["y"] + 2, steps=5)
    page.mouse.move(canvas["x"] + b["x"] + b["w"] / 2, canvas["y"] + b["y"] + b["h"] / 2, steps=2)
    page.mouse.up()
    page.wait_for_function(f"() => document.querySelector('{CANVAS}').dataset.zoom === '59..90'", timeout=5_000)
    day, march = cell(page, "orders", 59), cell(page, "monthly_revenue", 2)
    assert march["x"] == pytest.approx(day["x"]) and march["w"] == pytest.approx(31 * day["w"], rel=1e-6)
    assert day["w"] > 15  # a person can point at one day now
    mid = cell(page, "orders_clean", keys["orders_clean"].index("2013-03-15"))
    assert mid["colour"] == COLOURS["STALE"]
    page.locator(CANVAS).hover(position=centre(mid))
    assert tip.inner_text() == "orders_clean · 2013-03-15 · stale"
    screenshot(page, "heatmap-zoomed")
    page.locator(".nbo-partitions-unzoom").click()
    page.wait_for_function(f"() => document.querySelector('{CANVAS}').dataset.zoom === ''", timeout=5_000)
    assert cell(page, "orders", 59)["w"] == pytest.approx(day["w"] * 31 / 181, rel=1e-3)
    errors = [m for m in page.console_log if m.startswith("error") and "heatmap" in m.lower()]
    assert not errors, errors
    print(f"heatmap drawn {drawn_s:.2f} s after Run All; click to Python and back {click_s:.2f} s; "
          f"live cell {(applied['applied_at'] - committed) / 1000:.2f} s after commit")
