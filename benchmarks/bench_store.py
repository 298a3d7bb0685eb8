"""Metadata store throughput on a fresh SQLite file: bulk ingest, finalize transactions, run lifecycles, snapshot.

Run with ``python benchmarks/run.py store``. Figures are medians of several repeats, each on a fresh store.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from _common import report

from notebook_orch.store import ConsumedInput, MetadataStore, NewMaterialization, open_store

REPEATS = 3
ASSETS, PARTITIONS, BATCH = 1_000, 100, 1_000
FINALIZE_TXNS = 2_000
SNAPSHOT_PARTITIONS = 365
T0 = datetime(2026, 1, 1)


def _fresh(folder: str, name: str) -> MetadataStore:
    return open_store(f"sqlite:///{Path(folder) / name}")


def _new(asset: int, partition: str, version: int) -> NewMaterialization:
    inputs = (ConsumedInput(f"asset_{asset - 1:04d}", partition, asset, f"d{asset}", asset),) if asset else ()
    return NewMaterialization(
        asset=f"asset_{asset:04d}", partition=partition, code_version="c1", data_version=f"d{version}",
        deps_signature="s1", inputs=inputs, row_count=100, schema={"x": "int64"}, duration_s=0.01,
        storage_path=f"data/asset_{asset:04d}/{partition}.parquet", io="parquet",
    )


def _batches(partitions: int) -> list[list[NewMaterialization]]:
    """ASSETS x ``partitions`` new materializations in batches of BATCH, partition by partition (a daily run)."""
    keys = [(a, f"2026-01-{p:03d}") for p in range(partitions) for a in range(ASSETS)]
    return [[_new(a, p, i) for a, p in keys[i : i + BATCH]] for i in range(0, len(keys), BATCH)]


def _ingest(store: MetadataStore, batches: list[list[NewMaterialization]]) -> int:
    run = store.start_run(notebook="bench.ipynb", targets=[], kind="backfill", now=T0)
    for batch in batches:
        store.record_materializations(run.run_id, batch, now=T0)
    return sum(map(len, batches))


def bench_ingest(folder: str) -> float:
    batches = _batches(PARTITIONS)  # built once, outside the timing: only the store's work is measured
    rates = []
    for i in range(REPEATS):
        store = _fresh(folder, f"ingest{i}.db")
        t0 = time.perf_counter()
        n = _ingest(store, batches)
        rates.append(n / (time.perf_counter() - t0))
        store.close()
    return statistics.median(rates)


def bench_finalize(folder: str) -> tuple[float, float]:
    finalize_rates, lifecycle_rates = [], []
    for i in range(REPEATS):
        store = _fresh(folder, f"finalize{i}.db")
        runs = [
            store.start_run(notebook="nb.ipynb", targets=[(f"a{j % 50}", f"p{j}")], kind="manual", now=T0)
            for j in range(FINALIZE_TXNS)
        ]
        t0 = time.perf_counter()
        for j, run in enumerate(runs):
            store.finalize_success(run.run_id, [_new(j % 50, f"p{j}", j)], now=T0)
        finalize_rates.append(FINALIZE_TXNS / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for j in range(FINALIZE_TXNS):
            run = store.start_run(notebook="nb.ipynb", targets=[(f"a{j % 50}", f"p{j}")], kind="manual", now=T0)
            store.heartbeat(run.run_id, now=T0 + timedelta(seconds=1))
            store.finalize_success(run.run_id, [_new(j % 50, f"p{j}", j)], now=T0 + timedelta(seconds=2))
        lifecycle_rates.append(FINALIZE_TXNS / (time.perf_counter() - t0))
        store.close()
    return statistics.median(finalize_rates), statistics.median(lifecycle_rates)


def bench_snapshot(folder: str) -> tuple[float, int]:
    url = f"sqlite:///{Path(folder) / 'snapshot.db'}"
    store = open_store(url)
    _ingest(store, _batches(SNAPSHOT_PARTITIONS))
    store.close()
    times = []
    rows = 0
    for _ in range(REPEATS):
        store = open_store(url)  # freshly opened: no warm connection, no cached statements
        t0 = time.perf_counter()
        snap = store.snapshot()
        times.append(time.perf_counter() - t0)
        rows = sum(len(s.partitions) for s in snap.assets.values())
        store.close()
    return statistics.median(times), rows


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_store_") as folder:
        report("store_ingest_batched", bench_ingest(folder), "events/s", ">= 20,000 events/s")
        finalize, lifecycle = bench_finalize(folder)
        report("store_finalize_txn", finalize, "txn/s", ">= 1,000 txn/s")
        report("store_run_lifecycle", lifecycle, "runs/s")
        seconds, rows = bench_snapshot(folder)
        assert rows == ASSETS * SNAPSHOT_PARTITIONS, rows
        report("store_snapshot_365k", seconds, "s", "< 0.5 s")


if __name__ == "__main__":
    run()
