"""The graph canvas for small graphs on ipycytoscape, from the same view-model as the anywidget canvas.

ipycytoscape (the package the project first named) makes one widget per node and per edge, so a graph costs about
four widget comms per asset: fine up to ~150 assets, hopeless at 1,000 (the page stalled after ~2,800 comms here;
see the README). ``LineageGraph`` picks this canvas up to ``_sizes.IPYCYTOSCAPE_LIMIT`` assets and the anywidget canvas
above. Its last release (1.3.3) predates ipywidgets 8: the browser console warns once about the
``@jupyter-widgets/base`` version and it works.

Same interface as ``_cytoscape.CytoscapeGraph``: ``graph`` (assign a new view to redraw), ``patch``, ``select``,
``shown``, ``on_click``, ``on_ready``, ``toggle_group``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import ipywidgets as w
from ipycytoscape import CytoscapeWidget, Edge, Node

from notebook_orch.core import viewgroups
from notebook_orch.core.viewstates import COLOURS, TEXT_COLOURS
from notebook_orch.widgets._panel_html import legend_html


def bar_image(bar: list[list]) -> str:
    """The partition bar as a data-URI SVG (the anywidget page draws the same picture in JavaScript)."""
    if not bar:
        return "none"
    rects = "".join(f'<rect x="{a * 100:.2f}" y="0" width="{(b - a) * 100:.2f}" height="10" '
                    f'fill="{COLOURS.get(status, "#000")}"/>' for status, a, b in bar)
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="10" viewBox="0 0 100 10" '
           f'preserveAspectRatio="none"><rect width="100" height="10" fill="#fff"/>{rects}</svg>')
    return "data:image/svg+xml;utf8," + quote(svg)


def node_data(node: dict[str, Any], *, groups: bool) -> dict[str, Any]:
    """What one node carries on the page (the same fields the anywidget page builds)."""
    text = node["label"]
    if node.get("counts_text") and node["counts_text"] != node["status"].lower():
        text = f"{node['label']}\n{node['counts_text']}"
    data = {"id": node["id"], "name": node["label"], "status": node["status"], "text": text,
            "counts": node.get("counts", {}), "fg": TEXT_COLOURS.get(node["status"], "#fff"),
            "bar": bar_image(node.get("bar") or []), "hasBar": 1 if node.get("bar") else 0}
    if groups and node.get("group"):
        data["parent"] = node["group"]
    return data


def style() -> list[dict[str, Any]]:
    """cytoscape.js style, as the anywidget page uses for graphs of this size."""
    s = [
        {"selector": "node", "style": {
            "shape": "round-rectangle", "width": 200, "height": 52, "label": "data(text)", "text-wrap": "wrap",
            "text-max-width": 190, "text-valign": "center", "text-halign": "center", "font-size": 12,
            "font-family": "sans-serif", "color": "data(fg)", "border-width": 1, "border-color": "#37474f",
            "background-color": "#9e9e9e"}},
        {"selector": "node[hasBar = 1]", "style": {
            "background-image": "data(bar)", "background-width": "100%", "background-height": 6,
            "background-position-y": "100%", "background-clip": "node", "background-image-containment": "inside"}},
        {"selector": "node.notebook", "style": {
            "shape": "round-rectangle", "background-color": "#eceff1", "background-opacity": 0.6,
            "border-color": "#90a4ae", "border-style": "dashed", "label": "data(text)", "color": "#455a64",
            "text-valign": "top", "text-halign": "center", "font-size": 13, "padding": 18}},
        # One class of its own: a two-class selector ("node.notebook.collapsed") did not restyle a box whose
        # classes changed in ipycytoscape 1.3.3's page.
        {"selector": "node.notebook-collapsed", "style": {
            "shape": "round-rectangle", "background-color": "#eceff1", "border-color": "#546e7a",
            "border-style": "solid", "border-width": 2, "label": "data(text)", "color": "#263238", "text-wrap": "wrap",
            "text-valign": "center", "text-halign": "center", "font-size": 13, "width": 200, "height": 52}},
        {"selector": ".hidden", "style": {"display": "none"}},
        {"selector": "edge", "style": {
            "width": 1.5, "line-color": "#90a4ae", "target-arrow-color": "#90a4ae", "target-arrow-shape": "triangle",
            "curve-style": "bezier", "arrow-scale": 0.9}},
        {"selector": "edge.mapped, edge.meta", "style": {
            "label": "data(label)", "font-size": 10, "color": "#37474f", "text-background-color": "#fff",
            "text-background-opacity": 0.9, "text-background-padding": 2}},
        {"selector": "edge.mapped", "style": {"line-style": "dashed"}},
        {"selector": "edge.meta", "style": {"width": 2.5}},
        {"selector": "edge.invalid", "style": {
            "line-color": "#6a1b9a", "target-arrow-color": "#6a1b9a", "line-style": "dotted"}},
        {"selector": "node:selected", "style": {"border-width": 4, "border-color": "#000"}},
    ]
    s += [{"selector": f"node.status-{status.lower()}", "style": {"background-color": colour}}
          for status, colour in COLOURS.items()]
    return s


class IpyCytoscapeGraph(w.VBox):
    """A legend above an ipycytoscape ``CytoscapeWidget`` drawn at the kernel's positions (``preset`` layout)."""

    def __init__(self, graph: dict[str, Any], *, height: str = "520px", groups: bool = True) -> None:
        self.groups = groups
        self._click: list[Callable[[str], None]] = []
        self._ready: list[Callable[[], None]] = []
        self.collapsed: set[str] = set()
        self.cyto = CytoscapeWidget(layout=w.Layout(width="100%", height=height))
        self.cyto.add_class("nbo-lineage-canvas")
        self.cyto.add_class("nbo-ipycytoscape")  # the browser tests read the page's cytoscape through these
        self.cyto.set_style(style())
        self.cyto.cytoscape_layout = {"name": "preset", "fit": True, "padding": 20}
        self.cyto.min_zoom, self.cyto.max_zoom, self.cyto.wheel_sensitivity = 0.05, 3.0, 0.3
        self.cyto.auto_unselectify = False
        self.cyto.on("node", "click", self._on_node)
        self.legend = w.HTML()
        self._nodes: dict[str, Node] = {}
        self._meta: list[Edge] = []
        super().__init__([self.legend, self.cyto])
        self.graph = graph

    # -- drawing ---------------------------------------------------------------------------------------------
    @property
    def graph(self) -> dict[str, Any]:
        return self._view

    @graph.setter
    def graph(self, view: dict[str, Any]) -> None:
        self._view = view
        self.collapsed &= {g["id"] for g in view["groups"]}
        nodes: list[Node] = []
        if self.groups:
            for g in view["groups"]:
                nodes.append(Node(data={"id": g["id"], "name": g["label"], "text": g["label"],
                                        "members": g["members"]}, classes="notebook"))
        for n in view["nodes"]:
            nodes.append(Node(data=node_data(n, groups=self.groups), classes=n["classes"],
                              position={"x": n["x"], "y": n["y"]}, grabbable=False))
        edges = [Edge(data={"id": e["id"], "source": e["source"], "target": e["target"], "label": e["label"]},
                      classes=e["classes"]) for e in view["edges"]]
        self._nodes = {n.data["id"]: n for n in nodes}
        self._meta = []
        with self.cyto.hold_sync():
            self.cyto.graph.clear()
            self.cyto.graph.add_nodes(nodes)
            self.cyto.graph.add_edges(edges, directed=True)
        self.legend.value = legend_html(view, view.get("totals", {}))
        for group in sorted(self.collapsed):
            self._apply_collapse(group, True)

    def patch(self, nodes: dict[str, dict[str, Any]]) -> None:
        """Set the new status of ``nodes`` (name -> ``viewmodel.node_status``): one trait change per node."""
        for name, p in nodes.items():
            node = self._nodes.get(name)
            if node is None:
                continue
            hidden = " hidden" if "hidden" in node.classes.split() else ""
            node.data = {**node.data, **node_data({**p, "id": name, "label": node.data["name"]}, groups=False),
                         **({"parent": node.data["parent"]} if "parent" in node.data else {})}
            node.classes = p["classes"] + hidden
        totals: dict[str, int] = {}
        for node in self._nodes.values():
            for status, count in (node.data.get("counts") or {}).items():
                totals[status] = totals.get(status, 0) + count
        self.legend.value = legend_html(self._view, totals)

    def select(self, name: str) -> None:
        for node_id, node in self._nodes.items():
            node.selected = node_id == name

    def shown(self, name: str) -> None:
        """The panel of ``name`` is out (nothing to do: this canvas highlights with the selection)."""

    # -- collapsing notebooks --------------------------------------------------------------------------------
    def toggle_group(self, group: str) -> bool:
        """Collapse ``group`` (a notebook box) into one node, or expand it again. Returns True when collapsed."""
        shut = group not in self.collapsed
        if shut:
            self.collapsed.add(group)
        else:
            self.collapsed.discard(group)
        self._apply_collapse(group, shut)
        return shut

    def _apply_collapse(self, group: str, shut: bool) -> None:
        box = self._nodes.get(group)
        if box is None:
            return
        hidden = viewgroups.hidden_by(self._view, self.collapsed)
        members = [n for n in self._view["nodes"] if n.get("group") == group]
        with self.cyto.hold_sync():
            for n in members:
                node = self._nodes[n["id"]]
                classes = [c for c in node.classes.split() if c != "hidden"]
                node.classes = " ".join(classes + (["hidden"] if n["id"] in hidden else []))
            box.classes = "notebook-collapsed" if shut else "notebook"
            box.data = {**box.data, "text": f"{box.data['name']}\n{len(members)} assets (collapsed)" if shut
                        else box.data["name"]}
            for edge in self._meta:
                self.cyto.graph.remove_edge(edge)
            self._meta = [Edge(data={k: e[k] for k in ("id", "source", "target", "label")}, classes="meta")
                          for e in viewgroups.collapsed_edges(self._view, self.collapsed)]
            if self._meta:
                self.cyto.graph.add_edges(self._meta, directed=True)

    # -- events ----------------------------------------------------------------------------------------------
    def on_click(self, callback: Callable[[str], None]) -> None:
        """``callback(asset_name)`` when a person clicks an asset's node."""
        self._click.append(callback)

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Kept for the adapters' common interface: this canvas's state lives in its widgets, nothing to resend."""
        self._ready.append(callback)

    def _on_node(self, node: dict[str, Any]) -> None:
        data = node.get("data", {}) if isinstance(node, dict) else {}
        name = data.get("id")
        if not isinstance(name, str):
            return
        if name in self._nodes and self._nodes[name].classes in ("notebook", "notebook-collapsed"):
            self.toggle_group(name)
            return
        for callback in self._click:
            callback(name)
