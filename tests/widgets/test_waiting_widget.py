"""WAITING in the widgets with a real project and SQLite store: a run holds the only slot of the ``warehouse`` pool
and another waits. The graph's model draws the waiting asset WAITING (its panel says which pool, how many ahead,
since when), then running when it gets the slot, then fresh; the heatmap's row follows. Also the panel's "+N more"
list of neighbours past the eight buttons a side."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch.core.pools import run_pools
from notebook_orch.project import Project
from notebook_orch.store.records import NewMaterialization
from notebook_orch.widgets import LineageGraph
from notebook_orch.widgets.heatmap import PartitionHeatmap

WAITING_CODE = 6  # core.viewstates.VIEW_STATUSES.index("WAITING")


def write(root: Path, name: str, *cells: str) -> None:
    nb = new_notebook()
    nb.cells = [new_code_cell(c) for c in cells]
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / "notebooks" / name)


@pytest.fixture
def project(tmp_path: Path):
    write(tmp_path, "load.ipynb", "%%asset first --pool warehouse\nfirst = 1",
          "%%asset second --pool warehouse\nsecond = 2")
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n\n'
                                             "[tool.notebook_orch.concurrency]\npools = { warehouse = 1 }\n")
    with Project(tmp_path) as p:
        yield p


def start(project: Project, name: str):
    spec = project.graph.spec(name)
    pools = run_pools(project.config.concurrency, [name], {name: spec.pools})
    assert pools == {"pool:warehouse": 1}
    return project.store.start_run(notebook=spec.notebook, targets=[(name, "unpartitioned")], kind="manual",
                                   pools=pools), pools


def finish(project: Project, name: str, run_id: str) -> None:
    spec = project.graph.spec(name)
    project.store.finalize_success(run_id, [NewMaterialization(
        asset=name, partition="unpartitioned", code_version=spec.code_version, data_version="v1",
        deps_signature=spec.deps_signature, row_count=1)])


class Sent:
    def __init__(self, canvas) -> None:
        self.messages: list[dict] = []
        canvas.send = lambda content, buffers=None: self.messages.append(content)

    def last_status(self, name: str) -> str | None:
        found = [m["nodes"][name]["status"] for m in self.messages if m.get("type") == "patch" and name in m["nodes"]]
        return found[-1] if found else None


def test_the_graph_shows_waiting_then_running_then_fresh(project):
    holder, pools = start(project, "first")
    waiter, _ = start(project, "second")
    assert (holder.status, waiter.status) == ("RUNNING", "WAITING")

    g = LineageGraph(project, live=False, adapter="anywidget")
    sent = Sent(g.canvas)
    nodes = {n["id"]: n for n in g.canvas.graph["nodes"]}
    assert (nodes["first"]["status"], nodes["second"]["status"]) == ("RUNNING", "WAITING")
    assert nodes["second"]["classes"] == "status-waiting"
    assert g.canvas.graph["colours"]["WAITING"] != g.canvas.graph["colours"]["RUNNING"]
    g.show("second")
    html = g.panel.info.value
    assert f"run {waiter.run_id} waits for pool warehouse with 0 ahead, since" in html
    assert "nbo-live-waiting" in html

    finish(project, "first", holder.run_id)
    g.refresh()
    assert sent.last_status("first") == "FRESH" and sent.last_status("second") is None  # still waiting
    assert project.store.take_pool_slots(waiter.run_id, pools) == "RUNNING"
    g.refresh()
    assert sent.last_status("second") == "RUNNING"
    assert "waits for" not in g.panel.info.value
    finish(project, "second", waiter.run_id)
    g.refresh()
    assert sent.last_status("second") == "FRESH"
    g.close()


def test_the_heatmap_row_of_a_waiting_run(project):
    holder, pools = start(project, "first")
    waiter, _ = start(project, "second")
    heat = PartitionHeatmap(project, live=False)
    sent: list[dict] = []
    heat.send = lambda content, buffers=None: sent.append(content)
    rows = {r["asset"]: r for r in heat.view["rows"]}
    assert rows["second"]["ranges"] == [[WAITING_CODE, 0, 1]] and rows["second"]["status"] == "WAITING"
    assert heat.view["statuses"][WAITING_CODE] == "WAITING"
    assert heat.select("second", "unpartitioned")["status"] == "WAITING"
    assert "is waiting: a run waits for a concurrency-pool slot" in heat.selected["detail"]
    finish(project, "first", holder.run_id)
    project.store.take_pool_slots(waiter.run_id, pools)
    heat.refresh()
    patched = {r["asset"]: r for m in sent for r in m["rows"]}
    assert patched["second"]["ranges"] == [[4, 0, 1]] and patched["second"]["status"] == "RUNNING"
    heat.close()


def test_the_panel_lists_eight_neighbours_a_side_and_the_rest_behind_more(tmp_path: Path):
    ups = [f"up{i:02d}" for i in range(11)]
    downs = [f"down{i:02d}" for i in range(10)]
    write(tmp_path, "hub.ipynb", *[f"%%asset {u}\n{u} = 1" for u in ups],
          f"%%asset hub --deps {','.join(ups)}\nhub = 1", *[f"%%asset {d} --deps hub\n{d} = hub" for d in downs])
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    with Project(tmp_path) as p:
        g = LineageGraph(p, live=False)
        g.show("hub")
        panel = g.panel
        shown = [b.description for b in panel.neighbours.children if b.layout.display != "none"]
        assert shown == [f"↑ {u}" for u in ups[:8]] + [f"↓ {d}" for d in downs[:8]] + ["+3 more ↑", "+2 more ↓"]
        assert panel.more_neighbours("↑") == ups[8:] and panel.more_neighbours("↓") == downs[8:]
        more_up = next(b for b in panel.neighbours.children if b.description == "+3 more ↑")
        assert panel.rest.children[0].layout.display == "none"
        more_up.click()
        assert panel.rest.children[0].layout.display == "flex"
        assert [label for label, _ in panel.rest.children[0].options] == [f"↑ {u} (missing)" for u in ups[8:]]
        panel.rest.children[0].value = "up09"  # pick one from the list: it opens like a button
        assert panel.asset == "up09"
        shown = [b.description for b in panel.neighbours.children if b.layout.display != "none"]
        assert shown == ["↓ hub"]  # and the "+N more" buttons are gone for an asset with few neighbours
        g.close()


def test_a_run_whose_heartbeat_stopped_is_drawn_presumed_dead_until_reaped(project):
    from datetime import timedelta

    from notebook_orch.project import utcnow

    silent = project.store.start_run(notebook="notebooks/load.ipynb", targets=[("first", "unpartitioned")],
                                     kind="manual", now=utcnow() - timedelta(hours=1))
    g = LineageGraph(project, live=False, adapter="anywidget")
    sent = Sent(g.canvas)
    nodes = {n["id"]: n for n in g.canvas.graph["nodes"]}
    assert nodes["first"]["status"] == "PRESUMED_DEAD" and nodes["first"]["classes"] == "status-presumed_dead"
    g.show("first")
    assert f"run {silent.run_id} is presumed dead: no heartbeat since" in g.panel.info.value
    heat = PartitionHeatmap(project, live=False)
    assert {r["asset"]: r["status"] for r in heat.view["rows"]}["first"] == "PRESUMED_DEAD"
    heat.close()
    assert project.reap() and project.store.get_run(silent.run_id).status == "FAILED"  # a writer reaps it
    g.refresh()
    assert sent.last_status("first") == "FAILED"
    g.close()
