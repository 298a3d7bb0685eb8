"""The graph canvas: one anywidget holding the whole view-model as one JSON trait, drawn by cytoscape.js.

cytoscape.js is bundled into the package (``static/lineage.js``, rebuilt by ``scripts/build_widget_js.sh``), so
nothing is fetched from a CDN. Positions come from the kernel (cytoscape's ``preset`` layout): laying out 1,000
nodes with dagre on the page's main thread takes ~45 s, placing them takes well under one. Live updates are
custom messages carrying only the nodes that changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

_BUNDLE = Path(__file__).parent / "static" / "lineage.js"


class CytoscapeGraph(anywidget.AnyWidget):
    _esm = _BUNDLE
    graph = traitlets.Dict().tag(sync=True)
    groups = traitlets.Bool(True).tag(sync=True)  # notebooks drawn as boxes around their assets
    height = traitlets.Unicode("520px").tag(sync=True)  # not ``layout``: that name is the widget's own

    def __init__(self, graph: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(graph=graph, **kwargs)
        self._click: list[Callable[[str], None]] = []
        self._ready: list[Callable[[], None]] = []
        self._seq = 0
        self.on_msg(self._on_front_end)

    def on_click(self, callback: Callable[[str], None]) -> None:
        """``callback(asset_name)`` when a person clicks a node."""
        self._click.append(callback)

    def on_ready(self, callback: Callable[[], None]) -> None:
        """``callback()`` each time a page finishes drawing the graph (e.g. after a reload: resend live state)."""
        self._ready.append(callback)

    def patch(self, nodes: dict[str, dict[str, Any]]) -> None:
        """Send the new status of ``nodes`` (name -> ``viewmodel.node_status``); only these are touched."""
        if not nodes:
            return
        self._seq += 1
        self.send({"type": "patch", "seq": self._seq, "sent_at": time.time() * 1000, "nodes": nodes})

    def shown(self, name: str) -> None:
        """Tell the page the panel of ``name`` is out (it highlights the path then, not before)."""
        self.send({"type": "shown", "node": name})

    def select(self, name: str) -> None:
        self.send({"type": "select", "node": name})

    def _on_front_end(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "click" and isinstance(content.get("node"), str):
            for callback in self._click:
                callback(content["node"])
        elif kind == "ready":
            for callback in self._ready:
                callback()
