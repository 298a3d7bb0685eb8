"""The small-graph canvas on ipycytoscape: built from the same view-model as the anywidget canvas, chosen by size,
its front end's click payload opens the panel, live patches reach only the changed node, notebooks collapse."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_lineage_widget import KEYS, project, record  # noqa: F401 - the fixture is used by name

from notebook_orch.widgets import LineageGraph
from notebook_orch.widgets.lineage_graph import choose_adapter


def click_payload(name: str) -> dict:
    """Exactly what ipycytoscape's page sends on a node click (its CytoscapeModel's custom message)."""
    return {"widget": "node", "event": "click", "data": {"data": {"id": name}, "group": "nodes"}}


def test_the_adapter_is_chosen_by_size():
    assert choose_adapter(3) == choose_adapter(150) == "ipycytoscape"
    assert choose_adapter(151) == choose_adapter(1000) == "anywidget"
    assert choose_adapter(3, "anywidget") == "anywidget"
    with pytest.raises(ValueError, match="Unknown graph adapter 'cyto'; choose one of ipycytoscape, anywidget"):
        choose_adapter(3, "cyto")


def test_small_graph_is_drawn_by_ipycytoscape_from_the_view_model(project):  # noqa: F811
    g = LineageGraph(project, live=False)
    assert g.adapter == "ipycytoscape"
    cyto = g.canvas.cyto
    nodes = {n.data["id"]: n for n in cyto.graph.nodes}
    assert set(nodes) == {"raw", "clean", "report", "nb:notebooks/raw.ipynb", "nb:notebooks/clean.ipynb"}
    view = {n["id"]: n for n in g.canvas.graph["nodes"]}
    for name in ("raw", "clean", "report"):  # same classes and positions as the view-model says
        assert nodes[name].classes == view[name]["classes"]
        assert nodes[name].position == {"x": view[name]["x"], "y": view[name]["y"]}
        assert nodes[name].data["parent"] == view[name]["group"]
    assert nodes["raw"].data["text"] == "raw\nfresh 3 · missing 2" and nodes["raw"].data["hasBar"] == 1
    assert sorted((e.data["source"], e.data["target"], e.data["label"]) for e in cyto.graph.edges) == [
        ("clean", "report", "[all]"), ("raw", "clean", "")]
    assert cyto.cytoscape_layout["name"] == "preset"
    assert "fresh <b>3</b>" in g.canvas.legend.value and "missing <b>8</b>" in g.canvas.legend.value
    g.close()


def test_ipycytoscape_click_payload_opens_the_panel_and_patches_touch_one_node(project):  # noqa: F811
    g = LineageGraph(project, live=False)
    g.canvas.cyto._handle_interaction(None, click_payload("raw"), [])
    assert g.panel.asset == "raw" and "fresh 3 · missing 2" in g.panel.info.value
    nodes = {n.data["id"]: n for n in g.canvas.cyto.graph.nodes}
    before = {k: (n.classes, dict(n.data)) for k, n in nodes.items()}
    record(project, "raw", KEYS[3])
    record(project, "raw", KEYS[4])
    patches = g.refresh()
    assert set(patches) == {"raw"}
    assert nodes["raw"].data["text"] == "raw\nfresh 5" and nodes["raw"].classes == "status-fresh partitioned"
    assert {k: (n.classes, dict(n.data)) for k, n in nodes.items() if k != "raw"} == {
        k: v for k, v in before.items() if k != "raw"}
    assert "fresh <b>5</b>" in g.canvas.legend.value
    g.close()


def test_a_notebook_collapses_into_one_node_with_its_edges_and_expands_again(project):  # noqa: F811
    g = LineageGraph(project, live=False)
    canvas = g.canvas
    canvas.cyto._handle_interaction(None, click_payload("nb:notebooks/clean.ipynb"), [])  # a click on the box
    nodes = {n.data["id"]: n for n in canvas.cyto.graph.nodes}
    assert "hidden" in nodes["clean"].classes.split() and "hidden" in nodes["report"].classes.split()
    assert nodes["nb:notebooks/clean.ipynb"].classes == "notebook-collapsed"
    assert nodes["nb:notebooks/clean.ipynb"].data["text"] == "notebooks/clean.ipynb\n2 assets (collapsed)"
    meta = [(e.data["source"], e.data["target"]) for e in canvas.cyto.graph.edges if "meta" in e.classes]
    assert meta == [("raw", "nb:notebooks/clean.ipynb")]  # raw -> clean is now raw -> the notebook
    assert g.panel.asset is None  # a box click is not an asset click
    canvas.toggle_group("nb:notebooks/clean.ipynb")
    assert "hidden" not in nodes["clean"].classes and nodes["nb:notebooks/clean.ipynb"].classes == "notebook"
    assert not [e for e in canvas.cyto.graph.edges if "meta" in e.classes]
    g.close()


def test_a_redraw_keeps_a_collapsed_notebook_collapsed(project, tmp_path: Path):  # noqa: F811
    g = LineageGraph(project, live=False)
    g.canvas.toggle_group("nb:notebooks/raw.ipynb")
    g.canvas.graph = g._view(project.graph, project.status())
    nodes = {n.data["id"]: n for n in g.canvas.cyto.graph.nodes}
    assert "hidden" in nodes["raw"].classes.split()
    assert [(e.data["source"], e.data["target"]) for e in g.canvas.cyto.graph.edges if "meta" in e.classes] == [
        ("nb:notebooks/raw.ipynb", "clean")]
    g.close()
