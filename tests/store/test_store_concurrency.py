"""Several real processes on one store (SQLite file, PostgreSQL): no "database is locked", events in commit order,
one winner per partition, fork safety."""

from __future__ import annotations

import multiprocessing as mp
import os

from store_helpers import mat

from notebook_orch.errors import PartitionLocked
from notebook_orch.store import EV_RUN_STARTED, EV_RUN_SUCCESS, open_store

# Fork: fast to start, and the children open their own store from the URL like executor workers do.
_CTX = mp.get_context("fork")


def _writer(url: str, name: str, runs: int, start: mp.synchronize.Barrier, errors: mp.Queue) -> None:
    try:
        store = open_store(url)
        start.wait(timeout=30)
        for i in range(runs):
            run = store.start_run(notebook=name, targets=[(name, f"p{i}")], kind="manual")
            store.heartbeat(run.run_id)
            store.finalize_success(run.run_id, [mat(name, f"p{i}", f"d{i}")])
            if i % 20 == 0:  # bulk batches interleaved with the single transactions
                store.record_materializations(run.run_id, [mat(f"{name}_bulk", f"q{i}_{j}") for j in range(200)])
            store.snapshot()  # readers alongside writers
        store.close()
    except BaseException as exc:  # reported to the parent, which fails the test with it
        errors.put(f"{name}: {type(exc).__name__}: {exc}")


def test_processes_writing_at_once_never_see_database_is_locked(store_url: str) -> None:
    url = store_url
    open_store(url).close()
    runs, names = 60, ["w0", "w1", "w2"]
    start, errors = _CTX.Barrier(len(names)), _CTX.Queue()
    procs = [_CTX.Process(target=_writer, args=(url, n, runs, start, errors)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert failures == [] and [p.exitcode for p in procs] == [0, 0, 0]

    with open_store(url) as store:
        events = store.events_after(0, limit=100_000)
        assert [e.id for e in events] == list(range(1, len(events) + 1))  # gapless and ordered
        assert sum(e.kind == EV_RUN_STARTED for e in events) == sum(e.kind == EV_RUN_SUCCESS for e in events) == 180
        snap = store.snapshot(use_cache=False)
        assert {a: len(s.partitions) for a, s in snap.assets.items()} == {
            **{n: runs for n in names}, **{f"{n}_bulk": 3 * 200 for n in names}
        }
        assert store.snapshot() == snap
        assert store.running() == {}


def _contender(url: str, start: mp.synchronize.Barrier, results: mp.Queue) -> None:
    store = open_store(url)
    start.wait(timeout=30)
    try:
        run = store.start_run(notebook="nb", targets=[("a", "p"), (f"own{os.getpid()}", "p")], kind="manual")
        results.put(("won", run.run_id))
    except PartitionLocked as exc:
        results.put(("lost", exc.holder_run_id))
    store.close()


def test_of_processes_starting_the_same_partition_one_wins_and_the_others_are_told_who(store_url: str) -> None:
    url = store_url
    open_store(url).close()
    n = 4
    start, results = _CTX.Barrier(n), _CTX.Queue()
    procs = [_CTX.Process(target=_contender, args=(url, start, results)) for _ in range(n)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in range(n)]
    for p in procs:
        p.join(timeout=60)

    winners = [run_id for what, run_id in outcomes if what == "won"]
    assert len(winners) == 1
    assert sorted(outcomes) == sorted([("won", winners[0])] + [("lost", winners[0])] * (n - 1))
    with open_store(url) as store:
        assert [r.run_id for r in store.list_runs()] == winners
        assert store.running()[("a", "p")] == winners[0]
        store.finalize_success(winners[0], [mat("a", "p")])
        store.start_run(notebook="nb", targets=[("a", "p")], kind="manual")  # free again


def _use_inherited(store, out: mp.Queue) -> None:  # noqa: ANN001
    run = store.start_run(notebook="child", targets=[("child", "p")], kind="manual")
    store.finalize_success(run.run_id, [mat("child", "p")])
    out.put(run.run_id)


def test_a_store_inherited_through_fork_opens_its_own_connections(store_url: str) -> None:
    with open_store(store_url) as store:
        parent_run = store.start_run(notebook="parent", targets=[("parent", "p")], kind="manual")
        out = _CTX.Queue()
        child = _CTX.Process(target=_use_inherited, args=(store, out))
        child.start()
        child_run = out.get(timeout=60)
        child.join(timeout=60)
        assert child.exitcode == 0
        store.finalize_success(parent_run.run_id, [mat("parent", "p")])  # the parent's connections still work
        assert {r.run_id: r.status for r in store.list_runs()} == {
            parent_run.run_id: "SUCCESS", child_run: "SUCCESS"
        }
