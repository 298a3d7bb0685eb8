"""Two processes opening a store that does not exist yet (`nbo scheduler` and `nbo materialize` started together in
a new project) both get it: before, the one that lost the race for the new file's lock failed with "database is
locked" and deleted the file from under the winner, which then failed with "disk I/O error"."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from notebook_orch.store import open_store

ROUNDS = 40  # the file race was lost in about 1 of 20 rounds of this test, the folder race in most


def _open(url: str, start: mp.synchronize.Barrier, out: mp.Queue) -> None:
    start.wait(timeout=60)
    try:
        store = open_store(url)
        store.last_event_id()
        store.close()
        out.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test, which names it
        out.put(f"{type(exc).__name__}: {exc}")


def test_two_processes_creating_the_same_new_store_both_open_it(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    for i in range(ROUNDS):
        path = tmp_path / f"r{i}" / "store.db"
        if i % 2:  # odd rounds race only for the file, even ones for its folder too (a new project's .notebook_orch)
            path.parent.mkdir()
        start, out = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(f"sqlite:///{path}", start, out)) for _ in range(2)]
        for p in procs:
            p.start()
        answers = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert answers == ["ok", "ok"], (i, answers)
        assert path.exists(), f"round {i}: the store file was deleted"
        store = open_store(f"sqlite:///{path}")
        store.close()
