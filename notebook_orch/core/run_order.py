"""The runs of a plan as a graph: which runs wait for which, the runs on a cycle, and the order to start them in
(pure; used by ``planning``'s last step).

A unit is one run: ``(notebook, partition key, asset)``, the asset "" when the run does every selected asset of the
notebook at that key, or one asset's name when a notebook feeding another at the same key had to be split.
"""

from __future__ import annotations

import graphlib
import heapq
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.specs import DepSpec
    from notebook_orch.core.staleness import StalenessReport

Unit = tuple[str, str, str]  # (notebook, key, asset or "" for the whole group)


def unit_graph(
    graph: AssetGraph,
    report: StalenessReport,
    kept: dict[str, np.ndarray],
    edges: dict[str, list[tuple[DepSpec, Any, Any]]],
    split: set[tuple[str, str]],
) -> tuple[dict[Unit, list[str]], dict[Unit, set[Unit]]]:
    """Runs (units) with their assets in cell order, and which units each must wait for."""
    import numpy as np

    unit_of: dict[str, list[Unit]] = {}
    units: dict[Unit, list[str]] = {}
    for name, idx in kept.items():
        nb, keys = graph.spec(name).notebook or "", report.keys(name)
        unit_of[name] = [(nb, keys[i], name if (nb, keys[i]) in split else "") for i in idx.tolist()]
        for u in unit_of[name]:
            units.setdefault(u, []).append(name)
    for assets in units.values():
        assets.sort(key=lambda a: cell_order(graph, a))
    deps: dict[Unit, set[Unit]] = {u: set() for u in units}
    for name, idx in kept.items():
        mine = unit_of[name]
        for dep, lo, hi in edges[name]:
            up_idx = kept.get(dep.asset)
            if up_idx is None:
                continue
            theirs = unit_of[dep.asset]
            first = np.searchsorted(up_idx, lo[idx]).tolist()
            last = np.searchsorted(up_idx, hi[idx]).tolist()
            for u, s, e in zip(mine, first, last):
                if s < e:
                    deps[u].update(theirs[s:e])
    for u, before in deps.items():
        before.discard(u)  # upstream cells earlier in the same run
    return units, deps


def units_on_cycles(deps: dict[Unit, set[Unit]]) -> set[Unit]:
    """Every unit on some cycle: the members of strongly connected components larger than one (Tarjan, iterative,
    so that thousands of runs do not hit the recursion limit)."""
    index: dict[Unit, int] = {}
    low: dict[Unit, int] = {}
    stack: list[Unit] = []
    on_stack: set[Unit] = set()
    out: set[Unit] = set()
    for root in deps:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(deps[root]))]
        while work:
            v, successors = work[-1]
            for w in successors:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(deps[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        out.update(component)
    return out


def cell_order(graph: AssetGraph, name: str) -> tuple[bool, int, int]:
    cell = graph.spec(name).cell_index
    return cell is None, cell or 0, graph.position[name]


def order_units(
    graph: AssetGraph, report: StalenessReport, units: dict[Unit, list[str]], deps: dict[Unit, set[Unit]]
) -> list[Unit]:
    """Dependency order; among runs ready together, by the first asset's place in the graph, then its partition order
    (time order; a static list in its declared order)."""
    index_cache: dict[str, dict[str, int]] = {}

    def rank(u: Unit) -> tuple[int, int, Unit]:
        first = units[u][0]
        if first not in index_cache:
            index_cache[first] = {k: i for i, k in enumerate(report.keys(first))}
        return graph.position[first], index_cache[first][u[1]], u

    ranks = {u: rank(u) for u in units}
    sorter: graphlib.TopologicalSorter[Unit] = graphlib.TopologicalSorter()
    for u in sorted(units, key=ranks.__getitem__):
        sorter.add(u, *sorted(deps[u], key=ranks.__getitem__))
    sorter.prepare()
    ready = [ranks[u] for u in sorter.get_ready()]
    heapq.heapify(ready)
    out: list[Unit] = []
    while ready:
        u = heapq.heappop(ready)[2]
        out.append(u)
        sorter.done(u)
        for v in sorter.get_ready():
            heapq.heappush(ready, ranks[v])
    return out


__all__ = ["Unit", "cell_order", "order_units", "unit_graph", "units_on_cycles"]
