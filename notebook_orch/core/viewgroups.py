"""Collapsed notebook groups of the lineage view (pure): which edges stand for a collapsed notebook's assets.

A collapsed notebook is drawn as one node; every edge between one of its assets and an asset outside it is
redrawn once between the notebook node and that outside asset (or that outside asset's own collapsed notebook), so
the picture still says what the notebook reads and what reads it. Both widget adapters draw these same edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def group_of(view: dict[str, Any]) -> dict[str, str]:
    """Asset name -> the id of its notebook group (assets outside any notebook are left out)."""
    return {n["id"]: n["group"] for n in view["nodes"] if n.get("group")}


def collapsed_edges(view: dict[str, Any], collapsed: Iterable[str]) -> list[dict[str, Any]]:
    """The edges to draw for the ``collapsed`` groups: one per (shown end, shown end) pair, in first-seen order.

    Each is ``{id, source, target, label, classes: "meta", count}``; ``count`` is how many asset edges it stands
    for and ``label`` says so when more than one. Edges inside one collapsed group disappear.
    """
    shut = set(collapsed)
    groups = group_of(view)

    def end(asset: str) -> str:
        group = groups.get(asset)
        return group if group in shut else asset

    merged: dict[tuple[str, str], int] = {}
    for edge in view["edges"]:
        source, target = end(edge["source"]), end(edge["target"])
        if source == target or (source == edge["source"] and target == edge["target"]):
            continue  # inside one collapsed group, or not touching a collapsed group at all
        merged[(source, target)] = merged.get((source, target), 0) + 1
    return [{"id": f"meta:{s}->{t}", "source": s, "target": t, "label": f"{n} edges" if n > 1 else "",
             "classes": "meta", "count": n} for (s, t), n in merged.items()]


def hidden_by(view: dict[str, Any], collapsed: Iterable[str]) -> set[str]:
    """The assets hidden because their notebook group is collapsed."""
    shut = set(collapsed)
    return {name for name, group in group_of(view).items() if group in shut}


__all__ = ["collapsed_edges", "group_of", "hidden_by"]
