"""A synthetic project for benchmarks: N assets x 365 daily partitions in notebooks, and a store to match.

Asset ``a0007`` lives in notebook ``nb0001.ipynb`` (five per notebook); each reads one to three earlier assets,
mostly by identity, some through ``[-1]`` or a ``[-6:0]`` window — a layered DAG like a real warehouse's.
"""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PARTITIONS = "daily:2013-01-01..2013-12-31"
NOW = datetime(2014, 1, 2)
T0 = datetime(2026, 1, 1)


def asset_deps(n_assets: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    deps: list[list[str]] = []
    for i in range(n_assets):
        if i < 5:
            deps.append([])
            continue
        chosen = sorted(set(rng.randrange(max(0, i - 50), i) for _ in range(rng.randint(1, 3))))
        out = []
        for j in chosen:
            r = rng.random()
            out.append(f"a{j:04d}" + ("[-6:0]" if r < 0.1 else "[-1]" if r < 0.2 else ""))
        deps.append(out)
    return deps


def write_project(root: Path, *, n_assets: int = 1000, per_notebook: int = 5) -> None:
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    deps = asset_deps(n_assets)
    for nb_index in range(0, n_assets, per_notebook):
        nb = new_notebook()
        cells = [new_markdown_cell(f"# Notebook {nb_index // per_notebook}"), new_code_cell("%load_ext notebook_orch"),
                 new_code_cell("SCALE = 2\n\ndef double(x):\n    return x * SCALE")]
        for i in range(nb_index, min(nb_index + per_notebook, n_assets)):
            dep = f" --deps {','.join(deps[i])}" if deps[i] else ""
            cells.append(new_code_cell(f"%%asset a{i:04d} --partitions {PARTITIONS}{dep}\n"
                                       f"a{i:04d} = {{'value': double({i}), 'day': partition_key}}"))
        nb.cells = cells
        nbformat.write(nb, root / "notebooks" / f"nb{nb_index // per_notebook:04d}.ipynb")


def populate_store(store, graph) -> int:  # noqa: ANN001 - benchmark glue
    """Materialize every partition of every asset once, in topological order, with exact lineage."""
    from notebook_orch.core.mappings import upstream_ranges
    from notebook_orch.store import ConsumedInput, NewMaterialization

    run = store.start_run(notebook="bench.ipynb", targets=[], kind="backfill", now=T0)
    ids: dict[tuple[str, int], int] = {}
    batch: list = []
    total = 0
    next_id = 1
    for name in graph.order:
        spec = graph.spec(name)
        keys = spec.partitions.keys(now=NOW)
        edges = []
        for dep in spec.deps:
            up = graph.spec(dep.asset)
            lo, hi = upstream_ranges(spec.partitions, up.partitions, dep.mapping, len(keys), len(keys))
            edges.append((dep.asset, lo, hi, up.partitions.keys(now=NOW)))
        for p, key in enumerate(keys):
            inputs = tuple(
                ConsumedInput(u, ukeys[q], ids[(u, q)], f"{u}:{q}", ids[(u, q)])
                for u, lo, hi, ukeys in edges for q in range(int(lo[p]), int(hi[p]))
            )
            batch.append(NewMaterialization(asset=name, partition=key, code_version=spec.code_version,
                                            data_version=f"{name}:{p}", deps_signature=spec.deps_signature,
                                            inputs=inputs, row_count=1))
            ids[(name, p)] = next_id
            next_id += 1
            if len(batch) == 2000:
                got = store.record_materializations(run.run_id, batch, now=T0)
                assert got[-1] == next_id - 1, "materialization ids are not sequential"
                total += len(batch)
                batch = []
    if batch:
        store.record_materializations(run.run_id, batch, now=T0)
        total += len(batch)
    store.finalize_success(run.run_id, [], now=T0)
    return total
