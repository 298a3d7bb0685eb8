"""The lineage widget's view-model (pure): graph + staleness report + records -> plain data.

Every widget adapter (anywidget, ipycytoscape) and every test reads only what this module returns: JSON-able
dicts and lists. Status goes out as run-length ranges and counts, never as a list of every partition key (listing
every key is what freezes a partitions UI past tens of thousands of partitions), so a node of 40,000 partitions
costs what a node of 1 costs when its partitions agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from notebook_orch.core.status import Status
from notebook_orch.core.viewstates import (
    COLOURS,
    COUNT_ORDER,
    LABELS,
    MEANINGS,
    PRESUMED_DEAD,
    SEVERITY,
    TEXT_COLOURS,
    VIEW_STATUSES,
    WAITING,
    headline,
    live_run_view,
    run_states,
    view_codes,
    view_counts,
)

if TYPE_CHECKING:
    from notebook_orch.core.graph import AssetGraph, Edge, InvalidAsset
    from notebook_orch.core.staleness import StalenessReport
    from notebook_orch.store.records import MaterializationRecord, RunRecord

BAR_BUCKETS = 120  # the partition bar is at most this many segments wide, whatever the partition count
X_STEP, Y_STEP = 280, 90  # layered layout spacing in cytoscape model units

Positions = dict[str, tuple[float, float]]
LayoutFn = Callable[["AssetGraph", Sequence[str]], Positions]


# -- small pure helpers ----------------------------------------------------------------------------------
def worst_status(counts: dict[str, int]) -> Status:
    for status in SEVERITY:
        if counts.get(status):
            return status
    return Status.FRESH


def counts_text(counts: Mapping[str, int]) -> str:
    """``fresh 31 · stale 2 · missing 332`` (zero counts left out)."""
    return " · ".join(f"{LABELS[s]} {counts[s]}" for s in COUNT_ORDER if counts.get(s)) or "no partitions"


def run_lengths(codes: Sequence[int]) -> list[tuple[int, int, int]]:
    """``[(code, start, stop), ...]`` covering ``codes`` with maximal runs of equal values (stop exclusive)."""
    import numpy as np

    arr = np.asarray(codes)
    if len(arr) == 0:
        return []
    cuts = np.flatnonzero(arr[1:] != arr[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    stops = np.concatenate((cuts, [len(arr)]))
    values = arr[starts].tolist()  # plain ints at once: indexing numpy per run cost 0.13 s on 1,000 nodes
    return list(zip(values, starts.tolist(), stops.tolist()))


def status_ranges(report: StalenessReport, asset: str) -> list[dict[str, Any]]:
    """The asset's partitions as runs of one status: ``{status, start, stop, first, last, count}``."""
    from notebook_orch.core.staleness import STATUSES

    keys = report.keys(asset)
    return [
        {"status": STATUSES[code], "start": a, "stop": b, "first": keys[a], "last": keys[b - 1], "count": b - a}
        for code, a, b in run_lengths(report.status_codes(asset))
    ]


def partition_bar(codes: Sequence[int], statuses: Sequence[str], *, buckets: int = BAR_BUCKETS) -> list[list]:
    """A thin bar: ``[[status, from, to], ...]`` with from/to as fractions of the width (0..1).

    Past ``buckets`` partitions, each bucket shows the worst status inside it, so one failed day in a decade still
    shows.
    """
    import numpy as np

    arr = np.asarray(codes)
    n = len(arr)
    if n == 0:
        return []
    if n > buckets:
        rank = np.array([SEVERITY.index(s) if s in SEVERITY else len(SEVERITY) for s in statuses])
        edges = np.linspace(0, n, buckets + 1).astype(np.int64)
        worst_rank = np.minimum.reduceat(rank[arr], edges[:-1])
        by_rank = {SEVERITY.index(s) if s in SEVERITY else len(SEVERITY): i for i, s in enumerate(statuses)}
        arr = np.array([by_rank[int(r)] for r in worst_rank])
        n = buckets
    return [[statuses[c], round(a / n, 4), round(b / n, 4)] for c, a, b in run_lengths(arr)]


def key_ranges(all_keys: Sequence[str], chosen: Iterable[str]) -> list[tuple[str, str, int]]:
    """Compress ``chosen`` (a subset of ``all_keys``) into runs consecutive in ``all_keys``: (first, last, n)."""
    index = {k: i for i, k in enumerate(all_keys)}
    out: list[tuple[str, str, int]] = []
    previous = -2
    for p in sorted({index[k] for k in chosen}):
        if p == previous + 1:
            first, _, n = out[-1]
            out[-1] = (first, all_keys[p], n + 1)
        else:
            out.append((all_keys[p], all_keys[p], 1))
        previous = p
    return out


def ranges_text(ranges: Sequence[tuple[str, str, int]], *, limit: int = 4) -> str:
    """``2013-01-01..2013-01-31 (31), 2013-03-02`` — the first ``limit`` runs, then how many more."""
    parts = [first if n == 1 else f"{first}..{last} ({n})" for first, last, n in ranges[:limit]]
    if len(ranges) > limit:
        rest = sum(n for _, _, n in ranges[limit:])
        parts.append(f"and {rest} more in {len(ranges) - limit} runs")
    return ", ".join(parts)


def edge_label(graph: AssetGraph, edge: Edge) -> str:
    """The mapping where it is not identity: ``[-6:0]``, ``[all]``, ``daily→monthly``; empty for same-key edges."""
    text = edge.dep.mapping.describe()
    if text:
        return text
    up, down = graph.spec(edge.upstream).partitions, graph.spec(edge.downstream).partitions
    if up.grain != down.grain:
        return f"{up.grain}→{down.grain}"
    return ""


def layered_positions(graph: AssetGraph, names: Sequence[str]) -> Positions:
    """Left-to-right layers: x by dependency depth, y by order within a layer (grouped by notebook, then the
    mean position of upstream nodes, which removes most crossings in one sweep). Linear in nodes + edges."""
    chosen = set(names)
    depth: dict[str, int] = {}
    for name in graph.order:  # topological: upstream depths are known
        if name in chosen:
            ups = [depth[u] for u in graph.upstream(name) if u in chosen]
            depth[name] = 1 + max(ups) if ups else 0
    layers: dict[int, list[str]] = {}
    for name in graph.order:
        if name in chosen:
            layers.setdefault(depth[name], []).append(name)
    y: dict[str, float] = {}
    out: Positions = {}
    for d in sorted(layers):
        def key(name: str) -> tuple:
            ups = [y[u] for u in graph.upstream(name) if u in y]
            return (graph.spec(name).notebook or "", sum(ups) / len(ups) if ups else -1.0, name)

        members = sorted(layers[d], key=key)
        offset = (len(members) - 1) / 2
        for i, name in enumerate(members):
            y[name] = i
            out[name] = (d * X_STEP, (i - offset) * Y_STEP)
    return out


SHARED_LAYOUT_LIMIT = 300


def default_layout(n_nodes: int = 0) -> LayoutFn:
    """The layered layout shared with the HTML export (fewer crossings, dummy nodes for long edges) up to
    ``SHARED_LAYOUT_LIMIT`` nodes; past that the one-sweep layout above, which places 1,000 nodes in ~10 ms where
    the shared one took 0.5-3 s of the kernel's time on the benchmark graph (2,932 edges, many of them long)."""
    if n_nodes > SHARED_LAYOUT_LIMIT:
        return layered_positions
    try:
        from notebook_orch.core import layout as shared  # written alongside the HTML export
    except ImportError:
        return layered_positions
    fn = getattr(shared, "widget_positions", None)
    return fn if callable(fn) else layered_positions


# -- the graph -------------------------------------------------------------------------------------------
def node_status(report: StalenessReport | None, graph: AssetGraph, name: str,
                states: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What changes when runs progress: status, class, counts and bar. The live updater sends only this.
    ``states``: partition -> WAITING / PRESUMED_DEAD for this asset's partitions held by such runs (``run_states``)."""
    if report is None:
        return {"status": Status.MISSING, "classes": "status-missing", "counts": {}, "counts_text": "", "bar": []}
    codes = view_codes(report, name, states)
    counts = view_counts(report, name, codes)
    status = headline(counts)
    partitioned = graph.spec(name).partitions.grain != "unpartitioned"
    bar = partition_bar(codes, VIEW_STATUSES) if partitioned else []
    return {
        "status": status,
        "classes": f"status-{status.lower()}" + (" partitioned" if partitioned else ""),
        "counts": {s: counts[s] for s in COUNT_ORDER if counts.get(s)},
        "counts_text": counts_text(counts) if partitioned else status.lower(),
        "bar": bar,
    }


def graph_view(
    graph: AssetGraph,
    report: StalenessReport | None,
    *,
    names: Sequence[str] | None = None,
    layout: LayoutFn | None = None,
    invalid: Sequence[InvalidAsset] = (),
    states: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Everything the graph widget draws: nodes (with positions), edges, notebook groups, the legend and the
    colours (the pages draw with these, never a copy of their own).

    ``invalid``: assets left out of the graph (broken declarations and what reads them), drawn as INVALID nodes
    one layer right of what they read, so nothing broken is hidden. ``states``: ``run_states`` (live runs that wait
    for a pool slot or stopped heartbeating).
    """
    states = states or {}
    names = list(graph.order if names is None else graph.sorted(names))
    chosen = set(names)
    positions = (layout or default_layout(len(names)))(graph, names)
    nodes, groups = [], {}
    for name in names:
        spec = graph.spec(name)
        group = f"nb:{spec.notebook}" if spec.notebook else None
        if group and group not in groups:
            groups[group] = {"id": group, "label": spec.notebook, "members": 0}
        if group:
            groups[group]["members"] += 1
        x, y = positions[name]
        nodes.append({
            "id": name,
            "label": name,
            "notebook": spec.notebook,
            "cell": spec.cell_index + 1 if spec.cell_index is not None else None,
            "group": group,
            "partitions": spec.partitions.describe(),
            "x": float(x),
            "y": float(y),
            **node_status(report, graph, name, states.get(name)),
        })
    edges = []
    for name in names:
        for edge in graph.upstream_edges(name):
            if edge.upstream in chosen:
                label = edge_label(graph, edge)
                edges.append({"id": f"{edge.upstream}->{name}", "source": edge.upstream, "target": name,
                              "label": label, "classes": "mapped" if label else ""})
    _add_invalid(nodes, edges, groups, invalid)
    totals = dict.fromkeys(COUNT_ORDER, 0)
    for node in nodes:
        for s, n in node["counts"].items():
            totals[s] += n
    return {
        "nodes": nodes,
        "edges": edges,
        "groups": list(groups.values()),
        "legend": legend(),
        "colours": {str(s): c for s, c in COLOURS.items()},
        "text_colours": {str(s): c for s, c in TEXT_COLOURS.items()},
        "totals": {s: n for s, n in totals.items() if n},
    }


def _add_invalid(nodes: list[dict], edges: list[dict], groups: dict[str, dict], invalid: Sequence[InvalidAsset]
                 ) -> None:
    where = {n["id"]: (n["x"], n["y"]) for n in nodes}
    lowest: dict[float, float] = {}
    for x, y in where.values():
        lowest[x] = max(lowest.get(x, y), y)
    pending = list(invalid)
    for _ in range(len(pending) + 1):  # invalid assets may read each other: place those whose deps are placed
        later = []
        for bad in pending:
            deps = [d for d in bad.deps if d in where or any(b.name == d for b in pending)]
            if any(d not in where for d in deps):
                later.append(bad)
                continue
            x = max((where[d][0] for d in deps), default=-X_STEP) + X_STEP
            y = lowest.get(x, -Y_STEP) + Y_STEP
            lowest[x] = y
            where[bad.name] = (x, y)
            spec = bad.spec
            notebook = spec.notebook if spec else (bad.problems[0].notebook if bad.problems else None)
            group = f"nb:{notebook}" if notebook else None
            if group:
                groups.setdefault(group, {"id": group, "label": notebook, "members": 0})["members"] += 1
            nodes.append({
                "id": bad.name, "label": bad.name, "notebook": notebook,
                "cell": spec.cell_index + 1 if spec and spec.cell_index is not None else None,
                "group": group, "partitions": spec.partitions.describe() if spec else "", "x": float(x),
                "y": float(y), "status": Status.INVALID, "classes": "status-invalid", "counts": {Status.INVALID: 1},
                "counts_text": "invalid", "bar": [],
            })
            edges.extend({"id": f"{d}->{bad.name}", "source": d, "target": bad.name, "label": "",
                          "classes": "invalid"} for d in deps)
        if not later or len(later) == len(pending):
            break
        pending = later


def invalid_panel_view(bad: InvalidAsset) -> dict[str, Any]:
    """The panel of an asset left out of the graph: its problems, each naming the cell and the fix."""
    spec = bad.spec
    first = bad.problems[0] if bad.problems else None
    notebook = spec.notebook if spec else (first.notebook if first else None)
    cell = spec.cell_index if spec and spec.cell_index is not None else (first.cell if first else None)
    return {
        "asset": bad.name, "status": Status.INVALID, "classes": "status-invalid", "counts": {Status.INVALID: 1},
        "counts_text": "invalid", "bar": [], "partitions": spec.partitions.describe() if spec else "",
        "partitioned": False, "keys_total": 0, "ranges": [], "notebook": notebook,
        "cell": cell + 1 if cell is not None else None, "description": spec.description if spec else None,
        "owner": spec.owner if spec else None, "checks_declared": list(spec.checks) if spec else [],
        "schedule": None, "sla": None, "reasons": [], "root_causes": [],
        "problems": [str(p) for p in bad.problems], "invalid_deps": list(bad.invalid_deps),
        "last_materialization": None, "last_run": None,
        "upstream": [{"name": d, "status": "", "mapping": ""} for d in bad.deps], "downstream": [],
    }


def legend() -> list[dict[str, str]]:
    return [{"status": s, "label": LABELS[s], "colour": COLOURS[s], "meaning": MEANINGS[s]} for s in COUNT_ORDER]


def changed_nodes(before: dict[str, dict], graph: AssetGraph, report: StalenessReport,
                  names: Iterable[str], states: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, dict]:
    """The node patches that differ from ``before`` (name -> node_status) among ``names``."""
    out = {}
    states = states or {}
    for name in names:
        now = node_status(report, graph, name, states.get(name))
        if before.get(name) != now:
            out[name] = now
    return out


# -- the side panel --------------------------------------------------------------------------------------
_REASON_WORDS = {
    "code_changed": "the cell's code changed since it was built",
    "dependencies_changed": None,  # the cause's own message says what was added or removed
    "upstream_data_changed": "upstream {up} has new data",
    "upstream_stale": "upstream {up} is stale",
    "upstream_missing": "upstream {up} is missing",
    "upstream_failed": "upstream {up} failed",
}


def stale_reasons(report: StalenessReport, asset: str) -> dict[str, list[dict[str, Any]]]:
    """Why the asset's partitions are stale, grouped by reason with the partitions as ranges, and the root causes
    upstream (the partitions that are bad for their own reasons), grouped the same way."""
    from notebook_orch.core.staleness import STALE

    keys = report.keys(asset)
    by_reason: dict[tuple[str, str | None, str], list[str]] = {}
    by_root: dict[tuple[str, str, tuple[str, ...]], set[str]] = {}
    for key in report.partitions_with(asset, STALE):
        explained = report.explain(asset, key)
        for cause in explained.causes:
            words = _REASON_WORDS.get(cause.kind)
            text = words.format(up=cause.upstream) if words else cause.message
            by_reason.setdefault((cause.kind, cause.upstream, text), []).append(key)
        for root in explained.root_causes:
            by_root.setdefault((root.asset, root.status, root.kinds), set()).add(root.partition)
    reasons = []
    for (kind, upstream, text), parts in by_reason.items():
        ranges = key_ranges(keys, parts)
        reasons.append({"kind": kind, "upstream": upstream, "text": text, "count": len(parts),
                        "ranges": [list(r) for r in ranges], "partitions": ranges_text(ranges)})
    roots = []
    for (root_asset, status, kinds), parts in by_root.items():
        ranges = key_ranges(report.keys(root_asset), parts)
        why = ", ".join(k.replace("_", " ") for k in kinds) or status.lower()
        roots.append({"asset": root_asset, "status": status, "why": why, "count": len(parts),
                      "ranges": [list(r) for r in ranges],
                      "text": f"{root_asset}[{ranges_text(ranges)}] ({why})"})
    roots.sort(key=lambda r: (report.graph.position[r["asset"]], r["text"]))
    return {"reasons": reasons, "root_causes": roots}


def materialization_view(mat: MaterializationRecord | None, run: RunRecord | None) -> dict[str, Any] | None:
    if mat is None:
        return None
    return {
        "partition": mat.partition,
        "at": mat.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "rows": mat.row_count,
        "columns": [{"name": c, "type": t, "null_rate": mat.null_rates.get(c)} for c, t in mat.schema.items()],
        "checks": [{"expr": c.expr, "passed": c.passed, "detail": c.detail} for c in mat.checks],
        "duration_s": None if mat.duration_s is None else round(mat.duration_s, 3),
        "run_id": mat.run_id,
        "output_notebook": run.output_path if run is not None else None,
        "storage_path": mat.storage_path,
    }


def run_view(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"run_id": run.run_id, "status": run.status, "kind": run.kind, "error": run.error,
            "error_cell": run.error_cell + 1 if run.error_cell is not None else None,
            "output_notebook": run.output_path}


def panel_view(
    graph: AssetGraph,
    report: StalenessReport,
    asset: str,
    *,
    materialization: MaterializationRecord | None = None,
    materialization_run: RunRecord | None = None,
    last_run: RunRecord | None = None,
    states: Mapping[str, str] | None = None,
    live_runs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Everything the side panel shows for one asset. ``states``: its partitions' live states (``run_states``);
    ``live_runs``: its runs that wait for a pool slot or stopped heartbeating (``live_run_view``)."""
    spec = graph.spec(asset)
    status = node_status(report, graph, asset, states)

    def neighbour(name: str, label: str) -> dict[str, str]:
        return {"name": name, "status": headline(report.counts(name)), "mapping": label}

    return {
        "asset": asset,
        **status,
        "partitions": spec.partitions.describe(),
        "partitioned": spec.partitions.grain != "unpartitioned",
        "keys_total": len(report.keys(asset)),
        "ranges": status_ranges(report, asset),
        "notebook": spec.notebook,
        "cell": spec.cell_index + 1 if spec.cell_index is not None else None,
        "description": spec.description,
        "owner": spec.owner,
        "checks_declared": list(spec.checks),
        "schedule": spec.schedule,
        "sla": spec.sla.text if spec.sla else None,
        **stale_reasons(report, asset),
        "last_materialization": materialization_view(materialization, materialization_run),
        "last_run": run_view(last_run),
        "live_runs": list(live_runs),
        "upstream": [neighbour(e.upstream, edge_label(graph, e)) for e in graph.upstream_edges(asset)],
        "downstream": [neighbour(e.downstream, edge_label(graph, e)) for e in graph.downstream_edges(asset)],
    }


__all__ = [
    "COLOURS",
    "COUNT_ORDER",
    "LABELS",
    "PRESUMED_DEAD",
    "SEVERITY",
    "TEXT_COLOURS",
    "VIEW_STATUSES",
    "WAITING",
    "changed_nodes",
    "counts_text",
    "edge_label",
    "graph_view",
    "headline",
    "live_run_view",
    "invalid_panel_view",
    "key_ranges",
    "layered_positions",
    "legend",
    "node_status",
    "panel_view",
    "partition_bar",
    "ranges_text",
    "run_lengths",
    "run_states",
    "stale_reasons",
    "status_ranges",
    "view_codes",
    "view_counts",
    "worst_status",
]
