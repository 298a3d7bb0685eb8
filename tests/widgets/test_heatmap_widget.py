"""The partition heatmap widget's Python side on a real project and SQLite store: the trait it draws from, the front
end's click payload through the comm handler, ``select``/``on_select``/``link``, live patches of only the changed
cells, and ``%nbo partitions`` in a real IPython shell."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch.errors import PartitionError
from notebook_orch.project import Project
from notebook_orch.store.records import ConsumedInput, NewMaterialization
from notebook_orch.widgets import LineageGraph, PartitionHeatmap

DAYS = "--partitions daily:2013-01-01..2013-01-05"
KEYS = [f"2013-01-0{i}" for i in range(1, 6)]
FRESH, STALE, MISSING, FAILED, RUNNING = range(5)


def write(root: Path, name: str, *cells: str) -> None:
    nb = new_notebook()
    nb.cells = [new_code_cell(c) for c in cells]
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / "notebooks" / name)


def record(project: Project, name: str, key: str, *, data: str = "v1", reads: str | None = None) -> None:
    """Materialize ``name[key]``, having read ``reads[key]`` as it is now (lineage, as a run records it)."""
    spec = project.graph.spec(name)
    inputs = ()
    if reads is not None:
        up = project.store.snapshot(keys=[(reads, key)]).assets[reads]
        inputs = (ConsumedInput(reads, key, up.materialization_id[0], up.data_version[0], up.data_seq[0]),)
    run = project.store.start_run(notebook=spec.notebook, targets=[(name, key)], kind="manual")
    project.store.finalize_success(run.run_id, [NewMaterialization(
        asset=name, partition=key, code_version=spec.code_version, data_version=data,
        deps_signature=spec.deps_signature, inputs=inputs)])


@pytest.fixture
def project(tmp_path: Path):
    write(tmp_path, "raw.ipynb", "import pandas as pd", f"%%asset raw {DAYS}\nraw = pd.DataFrame({{'x': [1]}})")
    write(tmp_path, "clean.ipynb", f"%%asset clean --deps raw {DAYS}\nclean = raw",
          "%%asset report --deps clean[all]\nreport = clean")
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    with Project(tmp_path) as p:
        for key in KEYS[:3]:
            record(p, "raw", key)
        yield p


class Sent:
    """Records what the widget sends to the front end (the comm is not open without a front end)."""

    def __init__(self, widget) -> None:
        self.messages: list[dict] = []
        widget.send = lambda content, buffers=None: self.messages.append(content)


def click(widget, asset: str, index: int) -> None:
    # Exactly what the page sends on a cell click (anywidget's model.send -> an ipywidgets "custom" comm message).
    widget._handle_msg({"content": {"data": {"method": "custom", "content": {
        "type": "select", "asset": asset, "index": index, "key": "as the page computed it", "sent_at": 0}}},
        "buffers": []})


def test_view_trait_carries_the_store_statuses(project):
    heat = PartitionHeatmap(project, live=False)
    rows = {r["asset"]: r for r in heat.view["rows"]}
    assert list(rows) == ["raw", "clean", "report"]
    assert rows["raw"]["ranges"] == [[FRESH, 0, 3], [MISSING, 3, 5]]
    assert rows["raw"]["counts_text"] == "fresh 3 · missing 2"
    assert rows["clean"]["ranges"] == [[MISSING, 0, 5]]
    assert heat.view["axis"]["days"] == 5
    assert heat.selected == {}
    heat.close()


def test_front_end_click_selects_the_partition_and_calls_back(project):
    heat = PartitionHeatmap(project, "raw", live=False)
    seen = []
    heat.on_select(lambda asset, key: seen.append((asset, key)))
    click(heat, "raw", 1)
    assert seen == [("raw", "2013-01-02")]
    assert heat.selected == {"asset": "raw", "partition": "2013-01-02", "index": 1, "status": "FRESH",
                             "detail": "raw[2013-01-02] is fresh: materialized, up to date"}
    click(heat, "raw", 99)  # out of range (a stale page): ignored, nothing selected
    click(heat, "clean", 0)  # not in this heatmap's selection
    assert seen == [("raw", "2013-01-02")]
    heat.close()


def test_select_refuses_unknown_names_and_keys_and_changes_nothing(project):
    heat = PartitionHeatmap(project, live=False)
    heat.select("raw", "2013-01-04")
    with pytest.raises(ValueError, match="'rwa' is not in this heatmap; it shows raw, clean, report"):
        heat.select("rwa", "2013-01-01")
    with pytest.raises(PartitionError, match="2013-02-01"):
        heat.select("raw", "2013-02-01")
    assert heat.selected["partition"] == "2013-01-04" and heat.selected["status"] == "MISSING"
    heat.close()


def test_link_opens_the_graph_panel_on_the_selected_partition(project):
    graph = LineageGraph(project, live=False)
    heat = PartitionHeatmap(project, live=False)
    heat.link(graph)
    click(heat, "raw", 3)
    assert graph.panel.asset == "raw" and graph.panel.partition.value == "2013-01-04"
    heat.close()
    graph.close()


def test_refresh_sends_only_the_changed_cells(project):
    heat = PartitionHeatmap(project, live=False)
    sent = Sent(heat)
    assert heat.refresh() == []
    record(project, "raw", KEYS[4])
    patches = heat.refresh()
    assert patches == [{"asset": "raw", "ranges": [[FRESH, 4, 5]], "status": "FRESH",
                        "counts": {"FRESH": 4, "MISSING": 1}, "counts_text": "fresh 4 · missing 1"}]
    assert [m["type"] for m in sent.messages] == ["patch"] and sent.messages[0]["rows"] == patches
    # New data upstream makes the built downstream partition stale, and only that cell changes.
    record(project, "clean", KEYS[0], reads="raw")
    assert [(p["asset"], p["ranges"]) for p in heat.refresh()] == [("clean", [[FRESH, 0, 1]])]
    record(project, "raw", KEYS[0], data="v2")
    assert [(p["asset"], p["ranges"]) for p in heat.refresh()] == [("clean", [[STALE, 0, 1]])]
    # A page that (re)draws gets the rows patched since the trait was set, whole.
    click_ready = {"content": {"data": {"method": "custom", "content": {"type": "ready"}}}, "buffers": []}
    heat._handle_msg(click_ready)
    assert [r["asset"] for r in sent.messages[-1]["rows"]] == ["raw", "clean"]
    assert sent.messages[-1]["rows"][1]["full"]["ranges"] == [[STALE, 0, 1], [MISSING, 1, 5]]
    assert heat.view["rows"][0]["counts_text"] == "fresh 3 · missing 2"  # the whole view is not resent
    heat.close()


def test_live_thread_follows_the_event_log(project):
    heat = PartitionHeatmap(project, interval_s=0.05)
    sent = Sent(heat)
    try:
        record(project, "raw", KEYS[3])
        record(project, "raw", KEYS[4])
        deadline = time.monotonic() + 5
        texts: list[str] = []
        while time.monotonic() < deadline:
            texts = [r["counts_text"] for m in sent.messages for r in m["rows"] if r["asset"] == "raw"]
            if texts and texts[-1] == "fresh 5":
                break
            time.sleep(0.05)
        assert texts and texts[-1] == "fresh 5", (texts, heat._loop.last_error)
    finally:
        heat.close()
    assert not heat._loop.running


def test_nbo_partitions_magic_returns_the_heatmap(project, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    for var in ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(project.config.root)
    saved = sys.displayhook, sys.excepthook
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    try:
        assert shell.run_cell("%load_ext notebook_orch").success
        result = shell.run_cell("%nbo partitions +clean")
        assert result.success, result.error_in_exec
        heat = result.result
        assert isinstance(heat, PartitionHeatmap)
        assert [r["asset"] for r in heat.view["rows"]] == ["raw", "clean"]
        heat.close()
        # A graph and a heatmap made by %nbo in one kernel are linked: a cell's click opens the graph's panel.
        graph = shell.run_cell("%nbo graph").result
        heat = shell.run_cell("%nbo partitions").result
        click(heat, "raw", 2)
        assert graph.panel.asset == "raw" and graph.panel.partition.value == "2013-01-03"
        graph.close()
        click(heat, "clean", 1)  # a closed graph is left alone
        assert graph.panel.asset == "raw" and heat.selected["asset"] == "clean"
        heat.close()
        bad = shell.run_cell("%nbo partitions claen")
        assert not bad.success and "Did you mean 'clean'" in str(bad.error_in_exec)
        assert not shell.run_cell("%nbo partitions --all").success
    finally:
        shell.run_cell("%unload_ext notebook_orch")
        InteractiveShell.clear_instance()
        sys.displayhook, sys.excepthook = saved


def test_an_open_ended_asset_gains_its_new_partition_live(tmp_path):
    from datetime import timedelta

    from notebook_orch.project import utcnow

    start = (utcnow() - timedelta(days=3)).strftime("%Y-%m-%d")
    write(tmp_path, "a.ipynb", f"%%asset a --partitions daily:{start}..\na = 1")
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    with Project(tmp_path) as project:
        heat = PartitionHeatmap(project, live=False)
        assert heat.view["rows"][0]["n"] == 3 and heat.refresh() == []
        heat._codes["a"] = heat._codes["a"][:2]  # as if built yesterday: a window has ended since
        heat._stamp_checked = 0
        reloads = []
        reload = heat.reload
        heat.reload = lambda: reloads.append(1) or reload()
        heat.refresh()
        assert reloads == [1] and len(heat._codes["a"]) == 3  # reloaded with today's windows
        heat._stamp_checked = 0
        heat.refresh()
        assert reloads == [1]  # once: nothing has ended since
        heat.close()
