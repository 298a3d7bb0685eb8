"""Staleness of 1,000 assets x 365 daily partitions (365,000 partition states), full and incremental.

``staleness_full``: from the store file on disk to the complete report — open the store, read the snapshot, compute
every partition's status and causes. ``staleness_incremental``: after one new materialization, fold the store's new
events into the previous report (read the events and the touched rows, recompute what they reach).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import report
from _synthetic import NOW, populate_store, write_project

from notebook_orch.core.graph import AssetGraph
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.discovery import discover
from notebook_orch.store import NewMaterialization, open_store

REPEATS = 5


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_project(root)
        graph = AssetGraph(discover(root / "notebooks", root=root).specs)
        url = f"sqlite:///{root / 'store.db'}"
        store = open_store(url)
        t0 = time.perf_counter()
        n = populate_store(store, graph)
        print(f"# populated {n:,} materializations in {time.perf_counter() - t0:.1f} s", flush=True)
        store.close()

        # One code change near the root makes a large part of the graph stale: a realistic report to build.
        changed = graph.spec("a0003")
        graph = AssetGraph([replace(s, code_version="edited") if s.name == "a0003" else s for s in graph.specs])
        times, rep = [], None
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            fresh_store = open_store(url)
            rep = resolve_staleness(graph, fresh_store.snapshot(), now=NOW, consumed=fresh_store.consumed_versions)
            times.append(time.perf_counter() - t0)
            fresh_store.close()
        totals = rep.totals()
        assert sum(totals.values()) == 365_000, totals
        print(f"# statuses: { {str(k): v for k, v in totals.items()} }; {changed.name} code-changed", flush=True)
        report("staleness_full", statistics.median(times), "s", "< 1 s")
        # The same without the store's per-asset snapshot cache: what a status costs right after every asset
        # changed (e.g. a daily run touched them all), before the cache is rewritten.
        cold = []
        for _ in range(3):
            t0 = time.perf_counter()
            fresh_store = open_store(url)
            resolve_staleness(graph, fresh_store.snapshot(use_cache=False), now=NOW,
                              consumed=fresh_store.consumed_versions)
            cold.append(time.perf_counter() - t0)
            fresh_store.close()
        report("staleness_full_uncached", statistics.median(cold), "s")

        store = open_store(url)
        # As Project.status does: the report asks the open store what materializations read, where it must.
        rep = resolve_staleness(graph, store.snapshot(), now=NOW, consumed=store.consumed_versions)
        run_rec = store.start_run(notebook="bench.ipynb", targets=[], kind="manual")
        inc = []
        for i in range(20):
            name = f"a{(i * 37) % 1000:04d}"
            key = f"2013-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}"
            spec = graph.spec(name)
            store.record_materializations(run_rec.run_id, [NewMaterialization(
                asset=name, partition=key, code_version=spec.code_version, data_version=f"new{i}",
                deps_signature=spec.deps_signature)])
            t0 = time.perf_counter()
            events = store.events_after(rep.event_id, limit=10_000)
            touched = sorted({(e.asset, e.partition) for e in events if e.asset and e.partition})
            snap = store.snapshot(keys=touched)
            rep.apply(snap.assets, running=snap.running, event_id=events[-1].id)
            inc.append(time.perf_counter() - t0)
        check = resolve_staleness(graph, store.snapshot(), now=NOW, consumed=store.consumed_versions)
        assert check.totals() == rep.totals(), (check.totals(), rep.totals())
        store.close()
        report("staleness_incremental", statistics.median(inc) * 1000, "ms", "< 20 ms")
        print(f"# incremental p90 {sorted(inc)[int(len(inc) * 0.9)] * 1000:.1f} ms; report equals a full "
              "recompute afterwards", flush=True)
