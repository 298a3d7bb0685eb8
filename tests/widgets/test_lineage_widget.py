"""The lineage widget's Python side: built from a real project and SQLite store, its handlers called directly
(``Button.click()``), the front end's click payload sent through the comm message handler, and live patches."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch.core.planning import PartitionSelection
from notebook_orch.project import Project
from notebook_orch.store.records import NewMaterialization
from notebook_orch.widgets import LineageGraph

DAYS = "--partitions daily:2013-01-01..2013-01-05"
KEYS = [f"2013-01-0{i}" for i in range(1, 6)]


def write(root: Path, name: str, *cells: str) -> None:
    nb = new_notebook()
    nb.cells = [new_code_cell(c) for c in cells]
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / "notebooks" / name)


def record(project: Project, name: str, key: str, *, rows: int = 3) -> None:
    spec = project.graph.spec(name)
    run = project.store.start_run(notebook=spec.notebook, targets=[(name, key)], kind="manual")
    project.store.finalize_success(run.run_id, [NewMaterialization(
        asset=name, partition=key, code_version=spec.code_version, data_version="v1",
        deps_signature=spec.deps_signature, row_count=rows, schema={"x": "int64"}, null_rates={"x": 0.0})],
        output_path=f"runs/{run.run_id}.ipynb")


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

    def __init__(self, canvas) -> None:
        self.messages: list[dict] = []
        canvas.send = lambda content, buffers=None: self.messages.append(content)


def test_graph_trait_carries_statuses_from_the_store(project):
    g = LineageGraph(project, live=False)
    nodes = {n["id"]: n for n in g.canvas.graph["nodes"]}
    assert {k: nodes[k]["classes"] for k in nodes} == {
        "raw": "status-fresh partitioned", "clean": "status-missing partitioned", "report": "status-missing"}
    assert nodes["raw"]["counts_text"] == "fresh 3 · missing 2"
    assert nodes["raw"]["x"] < nodes["clean"]["x"] < nodes["report"]["x"]
    assert [e["label"] for e in g.canvas.graph["edges"]] == ["", "[all]"]
    assert g.canvas.groups is True  # a few notebooks: drawn as boxes
    g.close()


def test_front_end_click_payload_opens_the_panel(project):
    g = LineageGraph(project, live=False, adapter="anywidget")
    # Exactly what the page sends on a node tap (anywidget's model.send -> an ipywidgets "custom" comm message).
    g.canvas._handle_msg({"content": {"data": {"method": "custom",
                                                "content": {"type": "click", "node": "raw", "sent_at": 0}}},
                          "buffers": []})
    assert g.panel.asset == "raw"
    html = g.panel.info.value
    assert "fresh 3 · missing 2" in html
    assert "notebooks/raw.ipynb, cell 2" in g.panel.where.outputs[0]["data"]["text/html"]
    assert "3 rows" in html and "output notebook of that run" in html
    assert g.panel.start.value == "2013-01-01" and g.panel.end.value == "2013-01-05"
    assert [b.description for b in g.panel.neighbours.children if b.layout.display != "none"] == ["↓ clean"]
    assert g.panel.actions.layout.display == "flex"
    g.close()


def test_buttons_go_through_project_submit(project):
    calls = []

    class Handle:
        plan = None

        def done(self):
            return False

        def progress(self):
            return None

        def cancel(self):
            calls.append("cancel")

    project.submit = lambda selection, **kw: calls.append((selection, kw)) or Handle()
    g = LineageGraph(project, live=False)
    g.show("clean")
    g.panel.materialize.click()  # clean is missing: every partition not fresh
    g.panel.partition.value = "2013-01-02"
    g.panel.downstream.click()
    g.panel.stale_upstream.click()
    g.panel.start.value, g.panel.end.value = "2013-01-02", "2013-01-04"
    g.panel.backfill.click()
    assert not g.panel.cancel.disabled
    g.panel.cancel.click()
    assert calls == [
        ("clean", {"kind": "manual", "downstream": False, "only_stale": True}),
        ("clean", {"kind": "manual", "partitions": PartitionSelection(keys=("2013-01-02",)), "downstream": True}),
        ("raw", {"kind": "manual", "only_stale": True}),
        ("clean", {"kind": "manual", "partitions": PartitionSelection(start="2013-01-02", end="2013-01-04"),
                   "only_stale": True}),
        "cancel",
    ]
    assert "Canceling" in g.panel.progress.value
    g.close()


def test_backfill_shows_a_dry_run_count_and_bad_keys(project):
    g = LineageGraph(project, live=False)
    g.show("raw")
    assert "Would start 2 run(s) for 2 partition(s), skipping 3." in g.panel.dry_run.value
    g.panel.only_stale.value = False
    assert "Would start 5 run(s) for 5 partition(s)." in g.panel.dry_run.value
    g.panel.start.value = "2013-13-01"
    assert "2013-13-01" in g.panel.dry_run.value and "color:#c62828" in g.panel.dry_run.value
    g.close()


def test_refresh_patches_only_changed_nodes(project):
    g = LineageGraph(project, live=False, adapter="anywidget")
    sent = Sent(g.canvas)
    assert g.refresh() == {}
    record(project, "raw", KEYS[3])
    patches = g.refresh()
    assert list(patches) == ["raw"]
    assert patches["raw"]["counts_text"] == "fresh 4 · missing 1"
    assert [m["type"] for m in sent.messages] == ["patch"]
    assert list(sent.messages[0]["nodes"]) == ["raw"]
    g.close()


def test_live_thread_follows_the_event_log(project):
    g = LineageGraph(project, interval_s=0.05, adapter="anywidget")
    sent = Sent(g.canvas)
    try:
        record(project, "raw", KEYS[3])
        record(project, "raw", KEYS[4])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            patched = [m["nodes"]["raw"]["counts_text"] for m in sent.messages if "raw" in m.get("nodes", {})]
            if patched and patched[-1] == "fresh 5":
                break
            time.sleep(0.05)
        assert patched[-1] == "fresh 5", (patched, g._loop.last_error)
        assert g.canvas.graph["nodes"][0]["counts_text"] == "fresh 3 · missing 2"  # the full graph is not resent
    finally:
        g.close()
    assert not g._loop.running


def test_nbo_graph_magic_returns_the_widget(project, monkeypatch):
    import sys

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
        result = shell.run_cell("%nbo graph +clean")
        assert result.success, result.error_in_exec
        widget = result.result
        assert isinstance(widget, LineageGraph)
        assert [n["id"] for n in widget.canvas.graph["nodes"]] == ["raw", "clean"]
        widget.close()
        bad = shell.run_cell("%nbo graph claen")
        assert not bad.success and "Did you mean 'clean'" in str(bad.error_in_exec)
        assert not shell.run_cell("%nbo graph --all").success
    finally:
        shell.run_cell("%unload_ext notebook_orch")
        InteractiveShell.clear_instance()
        sys.displayhook, sys.excepthook = saved


def test_links_open_project_files_in_the_serving_jupyterlab(project, tmp_path):
    from notebook_orch.widgets._paths import lab_link

    root = project.config.root
    servers = [{"root_dir": "/somewhere/else", "base_url": "/"}, {"root_dir": str(root.parent), "base_url": "/x/"}]
    assert lab_link(root, "notebooks/raw.ipynb", servers) == f"/x/lab/tree/{root.name}/notebooks/raw.ipynb"
    assert lab_link(root, "notebooks/raw.ipynb", servers[:1]) is None
    g = LineageGraph(project, live=False)
    g._servers = servers
    g.show("raw")
    run_id = g.panel.view["last_materialization"]["run_id"]  # the output notebook of the last run links there
    assert f"href='/x/lab/tree/{root.name}/runs/{run_id}.ipynb'" in g.panel.info.value
    g.close()


def test_an_invalid_asset_is_shown_with_its_problem_and_no_buttons(project):
    write(project.config.root, "broken.ipynb", "%%asset broken --deps raw,nowhere\nbroken = raw")
    project.discover()
    g = LineageGraph(project, live=False)
    nodes = {n["id"]: n for n in g.canvas.graph["nodes"]}
    assert nodes["broken"]["classes"] == "status-invalid"
    g.show("broken")
    assert "Not in the graph until fixed" in g.panel.info.value and "nowhere" in g.panel.info.value
    assert g.panel.actions.layout.display == "none"
    g.show("raw")
    assert g.panel.actions.layout.display == "flex"
    g.close()


def test_an_edited_cell_redraws_the_graph_with_what_turned_stale(project):
    g = LineageGraph(project, live=False)
    assert g.canvas.graph["nodes"][0]["classes"] == "status-fresh partitioned"  # 3 built, 2 not yet
    g.show("raw")
    assert "Why stale" not in g.panel.info.value
    write(project.config.root, "raw.ipynb", "import pandas as pd",
          f"%%asset raw {DAYS}\nraw = pd.DataFrame({{'x': [2]}})")  # the body changed: a new code version
    g._stamp_checked = 0.0  # the live loop looks at the notebooks once a second
    g.refresh()
    nodes = {n["id"]: n for n in g.canvas.graph["nodes"]}
    assert nodes["raw"]["counts_text"] == "stale 3 · missing 2"  # and the open panel follows
    assert "code changed since it was built: 2013-01-01..2013-01-03 (3)" in g.panel.info.value
    g.close()
