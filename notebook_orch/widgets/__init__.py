"""Widgets: ``LineageGraph(project)``, the live lineage graph with a side panel, and ``PartitionHeatmap(project)``,
assets x partitions coloured by status.

Imported lazily so that ``import notebook_orch`` does not import ipywidgets or anywidget.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LineageGraph", "PartitionHeatmap"]


def __getattr__(name: str) -> Any:
    if name == "LineageGraph":
        from notebook_orch.widgets.lineage_graph import LineageGraph

        return LineageGraph
    if name == "PartitionHeatmap":
        from notebook_orch.widgets.heatmap import PartitionHeatmap

        return PartitionHeatmap
    raise AttributeError(f"module 'notebook_orch.widgets' has no attribute {name!r}")
