"""Render the asset graph (optionally with statuses) as text, Mermaid, Graphviz dot, JSON, SVG or HTML (pure).

The SVG and HTML pictures are drawn here, in Python (``core.layout`` + ``faces.svg``): the HTML page needs no
network and no script. Mermaid output is checked by Mermaid's own parser in the tests.

A node's colour (every picture format): failed, running or stale when any of its partitions is; otherwise fresh
when any partition is built and fresh; missing (grey) only when nothing is built. So an asset built for January
only is green, and its partition bar and counts say that it is 31 of 365.
"""

from __future__ import annotations

import html
import json
import re
from typing import TYPE_CHECKING, Any

from notebook_orch.core.status import Status, headline_status
from notebook_orch.errors import cell_number

if TYPE_CHECKING:
    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.staleness import StalenessReport

FORMATS = ("text", "mermaid", "dot", "json", "svg", "html")
COLOUR_RULE = ("Colour: failed, running or stale when any partition is; else fresh when any partition is built; "
               "grey only when none is. The bar shows each status's share of the asset's partitions; "
               "the counts above are partitions.")
_TINTS = {Status.FRESH: "#e8f5e9", Status.STALE: "#fff8e1", Status.MISSING: "#f5f5f5", Status.FAILED: "#ffebee",
          Status.RUNNING: "#e3f2fd", Status.INVALID: "#f3e5f5"}


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
    # Invalid assets are shown (status INVALID, with their problems), never hidden; so are their edges from assets
    # that exist (an unknown name has no node to point from).
    for bad in graph.invalid.values():
        spec = bad.spec
        assets.append({
            "name": bad.name,
            "notebook": bad.notebook,
            "cell": bad.cell_index,
            "partitions": spec.partitions.describe() if spec is not None else None,
            "deps": [d.describe() for d in spec.deps] if spec is not None else [],
            "code_version": spec.code_version if spec is not None else None,
            "owner": spec.owner if spec is not None else None,
            "description": spec.description if spec is not None else None,
            "status": Status.INVALID,
            "problems": [str(p) for p in bad.problems],
        })
        edges.extend({"from": dep, "to": bad.name, "mapping": mapping} for dep, mapping in _invalid_edges(graph, bad))
    return {"assets": assets, "edges": edges}


def _invalid_edges(graph: AssetGraph, bad: Any) -> list[tuple[str, str]]:
    """``(upstream, mapping)`` of an invalid asset's dependencies that are drawn (valid or invalid)."""
    deps = bad.spec.deps if bad.spec is not None else ()
    return [(d.asset, d.mapping.describe() or "identity") for d in deps if d.asset in graph or d.asset in graph.invalid]


def summary_status(counts: dict[str, int]) -> str:
    """One word for an asset: the worst status any of its partitions has."""
    for status in (Status.RUNNING, Status.FAILED, Status.STALE, Status.MISSING):
        if counts.get(status):
            return status
    return Status.FRESH


def _counts_text(counts: dict[str, int]) -> str:
    """``31 fresh, 334 missing``: a colour says the worst status; the label says how many of each."""
    return ", ".join(f"{n} {status.lower()}" for status, n in counts.items() if n) or "no partitions"


def render(graph: AssetGraph, fmt: str, report: StalenessReport | None = None) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown lineage format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "svg":
        return render_svg(graph, report)
    if fmt == "html":
        return render_html(graph, report)
    data = lineage_data(graph, report)
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "mermaid":
        return render_mermaid(graph, report)
    label = {
        a["name"]: a["name"] + (f" [{_counts_text(a['counts'])}]" if "counts" in a else "")
        + (" [INVALID]" if "problems" in a else "")
        for a in data["assets"]
    }
    if fmt == "text":
        lines = []
        for a in data["assets"]:
            deps = ", ".join(a["deps"]) or "(source)"
            where = f"{a['notebook']}, cell {cell_number(a['cell'])}"
            lines.append(f"{label[a['name']]}  <- {deps}    ({where}; {a['partitions']})")
            if "problems" in a:
                lines.append(f"    INVALID: {a['problems'][0]}")
        return "\n".join(lines)
    from notebook_orch.core.viewmodel import COLOURS

    lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, style=\"filled,rounded\", fontcolor=black];"]
    for a in data["assets"]:
        status = Status.INVALID if "problems" in a else headline_status(a["counts"]) if "counts" in a else ""
        fill, line = _TINTS.get(status, "#eceff1"), COLOURS.get(status, "#546e7a")
        lines.append(f'  "{a["name"]}" [label="{_dot(label[a["name"]])}", fillcolor="{fill}", color="{line}"];')
    for e in data["edges"]:
        extra = f' [label="{_dot(e["mapping"])}"]' if e["mapping"] != "identity" else ""
        lines.append(f'  "{e["from"]}" -> "{e["to"]}"{extra};')
    lines.append("}")
    return "\n".join(lines)


def _dot(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# -- Mermaid -----------------------------------------------------------------------------------------------
# Words Mermaid's flowchart grammar reads as keywords when they stand as a node id.
_MERMAID_RESERVED = {"end", "graph", "flowchart", "subgraph", "style", "classdef", "class", "click", "linkstyle",
                     "direction", "default", "call", "href", "callback", "interpolate", "accdescr", "acctitle"}
_MERMAID_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def mermaid_ids(names: list[str]) -> dict[str, str]:
    """A Mermaid node id per asset: the name itself where Mermaid reads it as a plain id, else ``n<i>`` (unique)."""
    taken = set(names)
    out = {}
    for i, name in enumerate(names):
        if _MERMAID_ID.match(name) and name.lower() not in _MERMAID_RESERVED:
            out[name] = name
            continue
        candidate, k = f"n{i}", 0
        while candidate in taken:
            k += 1
            candidate = f"n{i}_{k}"
        taken.add(candidate)
        out[name] = candidate
    return out


def _mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: quotes and ``#`` as Mermaid entity codes, markup characters escaped."""
    text = text.replace("#", "#35;").replace('"', "#quot;")
    return text.replace("<", "#lt;").replace(">", "#gt;")


def render_mermaid(graph: AssetGraph, report: StalenessReport | None = None) -> str:
    from notebook_orch.core.viewmodel import COLOURS, counts_text, edge_label

    ids = mermaid_ids([*graph.names, *graph.invalid])
    lines = ["flowchart LR"]
    classes: dict[str, list[str]] = {}
    for spec in graph.specs:
        text = _mermaid_text(spec.name)
        if report is not None:
            counts = report.counts(spec.name)
            status = headline_status(counts)
            classes.setdefault(status, []).append(ids[spec.name])
            detail = counts_text(counts) if spec.partitions.grain != "unpartitioned" else status.lower()
            text += "<br/>" + _mermaid_text(detail)
        lines.append(f'    {ids[spec.name]}["{text}"]')
    for bad in graph.invalid.values():
        classes.setdefault(Status.INVALID, []).append(ids[bad.name])
        lines.append(f'    {ids[bad.name]}["{_mermaid_text(bad.name)}<br/>invalid"]')
        for dep, mapping in _invalid_edges(graph, bad):
            arrow = f'-->|"{_mermaid_text(mapping)}"|' if mapping != "identity" else "-->"
            lines.append(f"    {ids[dep]} {arrow} {ids[bad.name]}")
    for spec in graph.specs:
        for edge in graph.upstream_edges(spec.name):
            label = edge_label(graph, edge)
            arrow = f'-->|"{_mermaid_text(label)}"|' if label else "-->"
            lines.append(f"    {ids[edge.upstream]} {arrow} {ids[spec.name]}")
    for status, members in classes.items():
        lines.append(f"    classDef st_{status.lower()} fill:{_TINTS[status]},stroke:{COLOURS[status]},"
                     "stroke-width:2px,color:#212121")
        lines.append(f"    class {','.join(members)} st_{status.lower()}")
    return _size_notice(sum(len(spec.deps) for spec in graph.specs), "\n".join(lines))


def _size_notice(n_edges: int, text: str) -> str:
    """Mermaid refuses diagrams past 500 edges or 50,000 characters unless the page raises those limits
    (JupyterLab 4.6 allows 100,000 of each); a diagram cannot raise them itself. Say so at the top."""
    if n_edges <= 500 and len(text) <= 50_000:
        return text
    return (f"%% {n_edges} edges, {len(text):,} characters: Mermaid refuses more than 500 edges or 50,000 characters "
            "unless the page raises its maxEdges/maxTextSize (JupyterLab: 100,000 each); "
            "`nbo lineage --format html` draws any size.\n" + text)


# -- the picture -------------------------------------------------------------------------------------------
def svg_parts(graph: AssetGraph, report: StalenessReport | None = None) -> tuple[list, list, Any]:
    """The plain data ``faces.svg`` draws: nodes, edges and the legend."""
    from notebook_orch.core.staleness import STATUSES
    from notebook_orch.core.viewmodel import MEANINGS, counts_text, edge_label, partition_bar
    from notebook_orch.faces.svg import SvgEdge, SvgLegend, SvgNode

    nodes = []
    totals: dict[str, int] = {}
    for spec in graph.specs:
        partitioned = spec.partitions.grain != "unpartitioned"
        tip = [spec.name, f"{spec.notebook}, cell {spec.cell_index + 1}" if spec.cell_index is not None
               else str(spec.notebook), f"partitions: {spec.partitions.describe()}"]
        if report is None:
            nodes.append(SvgNode(spec.name, spec.name, None, spec.partitions.describe(), (), "\n".join(tip)))
            continue
        counts = report.counts(spec.name)
        for s, n in counts.items():
            totals[s] = totals.get(s, 0) + n
        status = headline_status(counts)
        total = sum(counts.values())
        detail = counts_text(counts) if partitioned else status.lower()
        if partitioned:
            tip.append(f"{counts_text(counts)} (of {total})")
            if total:
                tip.append(f"fresh: {100 * counts.get('FRESH', 0) / total:.0f}% of the partitions")
        else:
            tip.append(f"status: {status.lower()}")
        tip += [f"owner: {spec.owner}"] * bool(spec.owner) + [str(spec.description)] * bool(spec.description)
        bar = partition_bar(report.status_codes(spec.name), STATUSES) if partitioned else ()
        nodes.append(SvgNode(spec.name, spec.name, status, detail, bar, "\n".join(tip)))
    for bad in graph.invalid.values():
        tip = [bad.name, f"{bad.notebook}, cell {bad.cell_index + 1}" if bad.cell_index is not None
               else str(bad.notebook), *(f"INVALID: {p.message}" for p in bad.problems)]
        # The node says why in short (cut to its width); the tooltip has every problem.
        nodes.append(SvgNode(bad.name, bad.name, Status.INVALID, "invalid: " + bad.describe(), (), "\n".join(tip)))
        # Counted in assets: an invalid asset has no partitions.
        totals[Status.INVALID] = totals.get(Status.INVALID, 0) + 1
    edges = [SvgEdge(dep, bad.name, "" if mapping == "identity" else mapping, f"{dep} → {bad.name}")
             for bad in graph.invalid.values() for dep, mapping in _invalid_edges(graph, bad)]
    for spec in graph.specs:
        for edge in graph.upstream_edges(spec.name):
            label = edge_label(graph, edge)
            title = f"{edge.upstream} → {spec.name}" + (f": reads {label}" if label else ": same partition key")
            edges.append(SvgEdge(edge.upstream, spec.name, label, title))
    legend = None
    if report is not None:
        legend = SvgLegend({s: n for s, n in totals.items() if n}, dict(MEANINGS), COLOUR_RULE,
                           units={Status.INVALID: "assets"})
    return nodes, edges, legend


def render_svg(graph: AssetGraph, report: StalenessReport | None = None) -> str:
    from notebook_orch.faces.svg import render_svg as draw

    nodes, edges, legend = svg_parts(graph, report)
    return draw(nodes, edges, legend=legend, title=f"notebook_orch lineage: {len(nodes)} assets")


def notebook_html(graph: AssetGraph, report: StalenessReport | None = None) -> str:
    """The picture for a notebook output: the SVG in a scroll box (no stylesheet that would leak into the page)."""
    return ('<div class="nbo-lineage-output" style="max-height:640px;overflow:auto;border:1px solid #cfd8dc;'
            f'border-radius:4px">{render_svg(graph, report)}</div>')


def render_html(graph: AssetGraph, report: StalenessReport | None = None) -> str:
    """A whole page that draws offline: inline SVG, no script to run, nothing fetched."""
    svg = render_svg(graph, report)
    data = json.dumps(lineage_data(graph, report)).replace("</", "<\\/")  # cannot close the script element
    n_edges = sum(len(spec.deps) for spec in graph.specs) + sum(len(_invalid_edges(graph, b))
                                                                  for b in graph.invalid.values())
    n_invalid = len(graph.invalid)
    summary = (f"{len(graph) + n_invalid} assets" + (f" ({n_invalid} invalid)" if n_invalid else "")
               + f", {n_edges} dependencies" + ("" if report else " (statuses not read)"))
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>notebook_orch lineage</title><style>"
        "body{font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;margin:16px;"
        "color:#263238}h1{font-size:18px;margin:0 0 4px}p{margin:0 0 12px;color:#546e7a;font-size:13px}"
        ".scroll{overflow:auto;border:1px solid #cfd8dc;border-radius:4px;max-height:calc(100vh - 90px)}"
        ".scroll svg{display:block}g.node:hover rect:first-of-type{stroke-width:3}"
        "</style></head><body>"
        f"<h1>Lineage</h1><p>{html.escape(summary)}. Hover a node or an edge for details.</p>"
        f"<div class='scroll'>{svg}</div>"
        f"<script type='application/json' id='lineage'>{data}</script></body></html>"
    )
