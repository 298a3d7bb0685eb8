"""Metadata store throughput on a fresh SQLite file: bulk ingest, finalize transactions, run lifecycles, snapshot.

Run with ``python benchmarks/run.py store``. Figures are medians of REPEATS runs, each on a freshly opened store.
``store_ingest_batched`` feeds batches partition by partition across all 1,000 assets (each batch dirties a page
per asset in every index: the slow order); ``_asset_major`` feeds one asset's partitions after another.
Snapshot figures: ``store_snapshot_365k`` reuses the packed per-asset cache a previous snapshot left (the
common case: few assets change between two snapshots); ``_uncached`` reads all 365,000 rows (what any snapshot
costs when most assets changed); ``_first`` is a snapshot that also builds the cache; ``_100_assets_changed``
follows a run that rematerialized 10 partitions of 100 assets.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from _common import report

from notebook_orch.store import ConsumedInput, MetadataStore, NewMaterialization, open_store

REPEATS = 5
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


def _batches(partitions: int, *, asset_major: bool = False) -> list[list[NewMaterialization]]:
    """ASSETS x ``partitions`` new materializations in batches of BATCH.

    Partition by partition (every asset's new day, like a daily schedule: each batch touches all 1,000 assets, the
    hard case for the indexes) unless ``asset_major`` (one asset's partitions after another, like a backfill).
    """
    if asset_major:
        keys = [(a, f"2026-01-{p:03d}") for a in range(ASSETS) for p in range(partitions)]
    else:
        keys = [(a, f"2026-01-{p:03d}") for p in range(partitions) for a in range(ASSETS)]
    return [[_new(a, p, i) for a, p in keys[i : i + BATCH]] for i in range(0, len(keys), BATCH)]


def _ingest(store: MetadataStore, batches: list[list[NewMaterialization]]) -> int:
    run = store.start_run(notebook="bench.ipynb", targets=[], kind="backfill", now=T0)
    for batch in batches:
        store.record_materializations(run.run_id, batch, now=T0)
    return sum(map(len, batches))


def bench_ingest(folder: str, *, asset_major: bool = False) -> float:
    batches = _batches(PARTITIONS, asset_major=asset_major)  # built outside the timing: only the store is measured
    rates = []
    for i in range(REPEATS):
        store = _fresh(folder, f"ingest{i}{'a' if asset_major else 'p'}.db")
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


def _timed_snapshot(url: str, **options: object) -> tuple[float, int]:
    store = open_store(url)  # freshly opened: no warm connection, no cached statements
    t0 = time.perf_counter()
    snap = store.snapshot(**options)
    seconds = time.perf_counter() - t0
    store.close()
    return seconds, sum(len(s.partitions) for s in snap.assets.values())


def bench_snapshot(folder: str) -> dict[str, float]:
    """Snapshot of ASSETS x SNAPSHOT_PARTITIONS partitions: warm cache, uncached, and after some assets changed."""
    url = f"sqlite:///{Path(folder) / 'snapshot.db'}"
    store = open_store(url)
    _ingest(store, _batches(SNAPSHOT_PARTITIONS))
    store.close()
    expected = ASSETS * SNAPSHOT_PARTITIONS
    figures: dict[str, list[float]] = {"uncached": [], "first": [], "warm": [], "changed": []}
    for i in range(REPEATS):
        for name, options in (("uncached", {"use_cache": False}), ("first", {}), ("warm", {})):
            if name == "first":
                _clear_cache(url)
            seconds, rows = _timed_snapshot(url, **options)
            assert rows == expected, rows
            figures[name].append(seconds)
        # A run rematerializes 10 partitions of 100 assets: those 100 are read, the other 900 come from cache.
        store = open_store(url)
        run = store.start_run(notebook="bench.ipynb", targets=[], kind="manual", now=T0)
        store.record_materializations(
            run.run_id, [_new(a, f"2026-01-{p:03d}", 10_000 + i) for a in range(0, ASSETS, 10) for p in range(10)]
        )
        store.close()
        seconds, rows = _timed_snapshot(url)
        assert rows == expected, rows
        figures["changed"].append(seconds)
    return {name: statistics.median(values) for name, values in figures.items()}


def _clear_cache(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM state_cache")
    engine.dispose()


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_store_") as folder:
        report("store_ingest_batched", bench_ingest(folder), "events/s", ">= 20,000 events/s")
        report("store_ingest_batched_asset_major", bench_ingest(folder, asset_major=True), "events/s")
        finalize, lifecycle = bench_finalize(folder)
        report("store_finalize_txn", finalize, "txn/s", ">= 1,000 txn/s")
        report("store_run_lifecycle", lifecycle, "runs/s")
        snap = bench_snapshot(folder)
        report("store_snapshot_365k", snap["warm"], "s", "< 0.5 s")
        report("store_snapshot_365k_uncached", snap["uncached"], "s")
        report("store_snapshot_365k_first", snap["first"], "s")
        report("store_snapshot_365k_100_assets_changed", snap["changed"], "s")


if __name__ == "__main__":
    run()
