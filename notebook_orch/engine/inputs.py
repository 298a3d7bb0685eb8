"""Where the upstream partitions a run reads are: resolved from the store just before the kernel needs them.

The worker resolves them right before it starts the notebook (after the runs this one waited for have finished),
writes them with the run's graph slice into the run folder's ``context.json``, and the kernel reads that file: the
kernel of a run never rediscovers the project nor opens the store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from notebook_orch.core.reads import UpstreamRead
from notebook_orch.kernel.inputs import StoredInput


def resolve_inputs(store: Any, reads: Sequence[UpstreamRead], *, with_paths: bool) -> list[dict[str, StoredInput]]:
    """For each read, its materialized keys -> where the value is (one snapshot read, one lookup of paths)."""
    wanted = [(r.asset, k) for r in reads for k in r.keys]
    if not wanted:
        return [{} for _ in reads]
    snap = store.snapshot(keys=wanted)
    states: dict[tuple[str, str], tuple[int, str, int]] = {}
    for asset, rows in snap.assets.items():
        for j, key in enumerate(rows.partitions):
            if rows.materialization_id[j] is not None:
                states[(asset, key)] = (int(rows.materialization_id[j]), rows.data_version[j], int(rows.data_seq[j]))
    paths = {}
    if with_paths and states:
        records = store.materializations_by_id([s[0] for s in states.values()])
        paths = {i: (r.storage_path, r.io) for i, r in records.items()}
    out = []
    for read in reads:
        found = {}
        for key in read.keys:
            state = states.get((read.asset, key))
            if state is not None:
                path, io = paths.get(state[0], (None, None))
                found[key] = StoredInput(state[0], state[1], state[2], path, io)
        out.append(found)
    return out


def write_run_context(path: Path, *, store: Any, run_id: str, partition: str, notebook: str, data_dir: str,
                      assets: dict[str, dict]) -> None:
    """``assets``: name -> {"cell", "code_version", "reads": [UpstreamRead json]}; adds where each read key is."""
    out = {}
    for name, entry in assets.items():
        reads = [UpstreamRead.from_json(r) for r in entry["reads"]]
        resolved = resolve_inputs(store, reads, with_paths=True)
        out[name] = {**entry, "reads": [{**r.to_json(), "found": {k: v.to_json() for k, v in found.items()}}
                                        for r, found in zip(reads, resolved)]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "partition_key": partition, "notebook": notebook,
                               "data_dir": data_dir, "assets": out}), encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["resolve_inputs", "write_run_context"]
