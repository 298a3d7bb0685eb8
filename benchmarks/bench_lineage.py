"""The lineage picture at 1,000 assets and 3,000 edges: the layered layout alone, and the whole HTML page.

``layout_1000x3000_local``: each asset reads 3 of the 100 assets declared before it (a warehouse's shape).
``layout_1000x3000_uniform``: each reads 3 of all the assets before it, so edges span many ranks and need many
dummy nodes (the hard case). ``html_1000x3000``: ``render(graph, "html", report)`` for the local graph with
a status report (365 daily partitions each): view data, layout, SVG and page.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import replace
from datetime import datetime

from _common import median_seconds, report

from notebook_orch.core.graph import build_graph
from notebook_orch.core.layout import layered_layout
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.faces.lineage import render
from notebook_orch.testing import MemoryHistory

N, PER = 1000, 3
NOW = datetime(2014, 1, 2)


def _edges(window: int | None, seed: int = 11) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    out = []
    for i in range(1, N):
        lo = 0 if window is None else max(0, i - window)
        out += [(j, i) for j in sorted(rng.sample(range(lo, i), min(PER, i - lo)))]
    return out[: N * PER]


def _cpu_seconds(fn) -> float:  # noqa: ANN001 - benchmark glue
    """Median CPU time of this process: on a shared machine the wall time also measures the neighbours."""
    times = []
    for _ in range(5):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def run() -> None:
    names = [f"a{i:04d}" for i in range(N)]
    for label, window in (("local", 100), ("uniform", None)):
        edges = [(names[a], names[b]) for a, b in _edges(window)]
        seconds = median_seconds(lambda edges=edges: layered_layout(names, edges))
        layout = layered_layout(names, edges)
        dummies = sum((len(r.points) - 2) // 2 for r in layout.edges)
        report(f"layout_1000x3000_{label}", seconds, "s", "< 1 s")
        report(f"layout_1000x3000_{label}_cpu", _cpu_seconds(lambda edges=edges: layered_layout(names, edges)), "s")
        print(f"# {len(edges)} edges, {len(layout.ranks)} ranks, {dummies} dummy nodes, crossings "
              f"{layout.input_crossings} in input order -> {layout.crossings}", flush=True)

    deps: dict[int, list[int]] = {}
    for a, b in _edges(100):
        deps.setdefault(b, []).append(a)
    specs = [replace(parse_declaration(
        f"{names[i]} --partitions daily:2013-01-01..2013-12-31"
        + (" --deps " + ",".join(names[j] for j in deps[i]) if i in deps else ""),
        notebook=f"nb{i // 5:04d}.ipynb", cell=i % 5), code_version="c") for i in range(N)]
    graph = build_graph(specs)
    history = MemoryHistory()
    for spec in specs[:50]:
        for key in spec.partitions.keys()[:31]:
            history.materialize(spec, key)
    status = resolve_staleness(graph, history.snapshot(), now=NOW)
    seconds = median_seconds(lambda: render(graph, "html", status), repeat=3)
    page = render(graph, "html", status)
    report("html_1000x3000", seconds, "s", "< 2 s")
    report("html_1000x3000_cpu", _cpu_seconds(lambda: render(graph, "html", status)), "s")
    print(f"# page of {len(page) / 1e6:.1f} MB", flush=True)
