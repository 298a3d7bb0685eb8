"""Render the asset graph (optionally with statuses) as text, Mermaid, Graphviz dot, JSON or HTML (pure)."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.staleness import StalenessReport

FORMATS = ("text", "mermaid", "dot", "json", "html")
_COLOURS = {"FRESH": "#2e7d32", "STALE": "#f9a825", "MISSING": "#9e9e9e", "FAILED": "#c62828",
            "RUNNING": "#1565c0"}


def lineage_data(graph: AssetGraph, report: StalenessReport | None = None) -> dict:
    assets = []
    for spec in graph.specs:
        item = {
            "name": spec.name,
            "notebook": spec.notebook,
            "cell": spec.cell_index,
            "partitions": spec.partitions.describe(),
            "deps": [d.describe() for d in spec.deps],
            "code_version": spec.code_version,
            "owner": spec.owner,
            "description": spec.description,
        }
        if report is not None:
            counts = report.counts(spec.name)
            item["status"] = summary_status(counts)
            item["counts"] = counts
        assets.append(item)
    edges = [
        {"from": d.asset, "to": spec.name, "mapping": d.mapping.describe() or "identity"}
        for spec in graph.specs
        for d in spec.deps
    ]
    return {"assets": assets, "edges": edges}


def summary_status(counts: dict[str, int]) -> str:
    """One word for an asset: the worst status any of its partitions has."""
    for status in ("RUNNING", "FAILED", "STALE", "MISSING"):
        if counts.get(status):
            return status
    return "FRESH"


def _counts_text(counts: dict[str, int]) -> str:
    """``31 fresh, 334 missing``: a colour says the worst status; the label says how many of each."""
    return ", ".join(f"{n} {status.lower()}" for status, n in counts.items() if n) or "no partitions"


def render(graph: AssetGraph, fmt: str, report: StalenessReport | None = None) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown lineage format {fmt!r}; use one of {', '.join(FORMATS)}.")
    data = lineage_data(graph, report)
    if fmt == "json":
        return json.dumps(data, indent=2)
    label = {
        a["name"]: a["name"] + (f" [{_counts_text(a['counts'])}]" if "counts" in a else "") for a in data["assets"]
    }
    if fmt == "text":
        lines = []
        for a in data["assets"]:
            deps = ", ".join(a["deps"]) or "(source)"
            lines.append(f"{label[a['name']]}  <- {deps}    ({a['notebook']}, cell {a['cell']}; {a['partitions']})")
        return "\n".join(lines)
    if fmt == "mermaid":
        lines = ["graph LR"]
        for a in data["assets"]:
            lines.append(f'    {a["name"]}["{label[a["name"]]}"]')
            if "status" in a:
                lines.append(f"    style {a['name']} fill:{_COLOURS[a['status']]},color:#fff")
        for e in data["edges"]:
            arrow = f"-->|{e['mapping']}|" if e["mapping"] != "identity" else "-->"
            lines.append(f"    {e['from']} {arrow} {e['to']}")
        return "\n".join(lines)
    if fmt == "dot":
        lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, style=filled, fontcolor=white];"]
        for a in data["assets"]:
            colour = _COLOURS.get(a.get("status", ""), "#455a64")
            lines.append(f'  "{a["name"]}" [label="{label[a["name"]]}", fillcolor="{colour}"];')
        for e in data["edges"]:
            extra = f' [label="{e["mapping"]}"]' if e["mapping"] != "identity" else ""
            lines.append(f'  "{e["from"]}" -> "{e["to"]}"{extra};')
        lines.append("}")
        return "\n".join(lines)
    mermaid = render(graph, "mermaid", report)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>notebook_orch lineage</title></head><body>"
        f"<pre class='mermaid'>{html.escape(mermaid)}</pre>"
        f"<script type='application/json' id='lineage'>{html.escape(json.dumps(data))}</script></body></html>"
    )
