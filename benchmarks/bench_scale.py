"""Beyond one machine: the metadata store on PostgreSQL against SQLite, side by side in one run.

Run with ``python benchmarks/run.py scale``. PostgreSQL is a throw-away server this benchmark starts on 127.0.0.1
(notebook_orch/store/pg_server.py) with durable defaults (fsync and synchronous_commit on), reached over TCP with
psycopg; SQLite is a WAL file on the same disk. Figures, each for ``sqlite`` and ``postgresql``:

- ``scale_finalize_txn_*``: finalize transactions per second (run status + one materialization + partition_state +
  events, one transaction each), one writer; ``_2proc``: two processes finalizing at once (total).
- ``scale_staleness_full_*``: 1,000 assets x 365 daily partitions, from opening the store to the complete staleness
  report (as bench_staleness's ``staleness_full``), with the snapshot cache warm; ``_uncached`` without it.
- ``scale_read_txn_*``: trivial read transactions per second (``last_event_id``): the price of one transaction's
  round trips, which a finalize pays about nine times on PostgreSQL and never on SQLite (in-process).
- ``scale_event_wakeup_*``: from a writer calling ``start_run`` (a transaction of a few ms) to
  ``wait_for_events`` returning in another store (LISTEN/NOTIFY on PostgreSQL, polling on SQLite).
- ``scale_backfill_dask_1w`` / ``_dask_2w`` / ``scale_backfill_local_2w``: a backfill of BACKFILL_PARTITIONS small
  daily partitions (warm kernels, SQLite store) in partitions per second on a local Dask cluster of one worker, of
  two, and on the local executor with two workers; the cluster is started before the clock starts.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from _common import report
from _synthetic import NOW, populate_store, write_project

from notebook_orch.store import NewMaterialization, open_store
from notebook_orch.store.pg_server import PostgresUnavailable, TemporaryPostgres

REPEATS = 3
FINALIZE_TXNS = 1_000
BACKFILL_PARTITIONS = 16


def _mat(j: int) -> NewMaterialization:
    return NewMaterialization(asset=f"a{j % 50}", partition=f"p{j}", code_version="c1", data_version=f"d{j}",
                              row_count=100, schema={"x": "int64"}, duration_s=0.01, io="parquet")


def _finalize_rate(url: str, n: int, tag: str = "") -> float:
    store = open_store(url)
    runs = [store.start_run(notebook="nb.ipynb", targets=[(f"a{j % 50}{tag}", f"p{j}")], kind="manual")
            for j in range(n)]
    t0 = time.perf_counter()
    for j, run in enumerate(runs):
        m = _mat(j)
        store.finalize_success(run.run_id, [replace(m, asset=m.asset + tag)])
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate


def _finalize_worker(url: str, n: int, tag: str, start: mp.synchronize.Barrier, out: mp.Queue) -> None:
    store = open_store(url)
    runs = [store.start_run(notebook="nb.ipynb", targets=[(f"a{j % 50}{tag}", f"p{j}")], kind="manual")
            for j in range(n)]
    start.wait(timeout=60)
    t0 = time.perf_counter()
    for j, run in enumerate(runs):
        m = _mat(j)
        store.finalize_success(run.run_id, [replace(m, asset=m.asset + tag)])
    out.put((t0, time.perf_counter()))
    store.close()


def _two_process_rate(url: str, n: int) -> float:
    ctx = mp.get_context("fork")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_finalize_worker, args=(url, n, tag, start, out)) for tag in ("x", "y")]
    for p in procs:
        p.start()
    spans = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return 2 * n / (max(e for _, e in spans) - min(s for s, _ in spans))


def _read_rate(url: str, n: int = 1_000) -> float:
    store = open_store(url)
    t0 = time.perf_counter()
    for _ in range(n):
        store.last_event_id()
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate


def bench_finalize(urls: dict[str, str]) -> None:
    for backend, make_url in urls.items():
        report(f"scale_read_txn_{backend}", statistics.median(_read_rate(make_url(f"rd{i}")) for i in range(REPEATS)),
               "txn/s")
        one = statistics.median(_finalize_rate(make_url(f"fin{i}"), FINALIZE_TXNS) for i in range(REPEATS))
        two = statistics.median(_two_process_rate(make_url(f"fin2p{i}"), FINALIZE_TXNS) for i in range(REPEATS))
        report(f"scale_finalize_txn_{backend}", one, "txn/s")
        report(f"scale_finalize_txn_{backend}_2proc", two, "txn/s")


def bench_staleness(urls: dict[str, str], root: Path) -> None:
    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.staleness import resolve_staleness
    from notebook_orch.discovery import discover

    write_project(root)
    graph = AssetGraph(discover(root / "notebooks", root=root).specs)
    edited = AssetGraph([replace(s, code_version="edited") if s.name == "a0003" else s for s in graph.specs])
    for backend, make_url in urls.items():
        url = make_url("staleness")
        store = open_store(url)
        t0 = time.perf_counter()
        n = populate_store(store, graph)
        print(f"# {backend}: populated {n:,} materializations in {time.perf_counter() - t0:.1f} s", flush=True)
        store.close()
        for name, options in (("", {}), ("_uncached", {"use_cache": False})):
            times, totals = [], None
            for _ in range(REPEATS + 1):  # the first pass of "" builds the snapshot cache: not counted
                t0 = time.perf_counter()
                fresh = open_store(url)
                rep = resolve_staleness(edited, fresh.snapshot(**options), now=NOW)
                times.append(time.perf_counter() - t0)
                fresh.close()
                totals = rep.totals()
            assert sum(totals.values()) == 365_000, totals
            report(f"scale_staleness_full_{backend}{name}", statistics.median(times[1:]), "s")


def _wakeup(url: str) -> float:
    """Median seconds from a write starting in one store to wait_for_events returning in another."""
    waiter, writer = open_store(url), open_store(url)
    delays = []
    for i in range(20):
        last = waiter.last_event_id()
        called: list[float] = []

        def write(i: int = i, called: list[float] = called) -> None:
            time.sleep(0.05)
            called.append(time.perf_counter())
            writer.start_run(notebook="nb", targets=[("wake", f"p{i}")], kind="manual")

        thread = threading.Thread(target=write)
        thread.start()
        assert waiter.wait_for_events(last, timeout=10)
        woke = time.perf_counter()
        thread.join()
        delays.append(woke - called[0])
    waiter.close()
    writer.close()
    return statistics.median(delays)


def _backfill_rate(root: Path, executor: str, workers: int, address: str | None = None) -> float:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from notebook_orch.core.planning import PartitionSelection
    from notebook_orch.project import Project

    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell('partition_key = "2013-01-01"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_code_cell("%load_ext notebook_orch"), params, new_code_cell(
        '%%asset small --partitions daily:2013-01-01..2013-12-31\nsmall = {"day": partition_key}')]
    nbformat.write(nb, root / "notebooks" / "small.ipynb")
    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n', encoding="utf-8")
    days = PartitionSelection(start="2013-01-01", end=f"2013-01-{BACKFILL_PARTITIONS:02d}")
    with Project(root) as project:
        t0 = time.perf_counter()
        result = project.submit("small", partitions=days, only_stale=True, kind="backfill", executor=executor,
                                workers=workers, executor_options={"address": address} if address else None).wait()
        took = time.perf_counter() - t0
    statuses = [o.status for o in result.outcomes]
    assert statuses == ["SUCCESS"] * BACKFILL_PARTITIONS, statuses
    return BACKFILL_PARTITIONS / took


def bench_dask_backfill(folder: Path) -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("# DASK UNAVAILABLE (pip install notebook_orch[dask]) - no backfill figures on Dask", flush=True)
        return
    from _dask_cluster import local_dask_cluster

    for workers in (1, 2):
        with local_dask_cluster(folder / f"cluster{workers}", workers) as address:
            rate = _backfill_rate(folder / f"dask{workers}", "dask", workers, address)
        report(f"scale_backfill_dask_{workers}w", rate, "partitions/s")
    report("scale_backfill_local_2w", _backfill_rate(folder / "local2", "local", 2), "partitions/s")


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        folder = Path(tmp)
        urls = {"sqlite": lambda name: f"sqlite:///{folder / name}.db"}
        server = None
        try:
            server = TemporaryPostgres(durable=True).start()
            urls["postgresql"] = server.create_database
        except PostgresUnavailable as exc:
            print(f"# POSTGRESQL UNAVAILABLE - only SQLite figures: {exc}", flush=True)
        try:
            bench_finalize(urls)
            for backend, make_url in urls.items():
                report(f"scale_event_wakeup_{backend}", _wakeup(make_url("wakeup")) * 1000, "ms")
            bench_staleness(urls, folder / "project")
            bench_dask_backfill(folder / "backfill")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    run()
