"""Crash torture on a real Dask cluster (a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, as
tests/dask uses): ``nbo backfill --executor dask`` while a worker is SIGKILLed at a random moment, or while the
kernel it runs is parked in the middle of publishing a value (``NOTEBOOK_ORCH_FAULT_PAUSE``: before publishing,
with the value file half-written, after the rename, after ``_SUCCESS``) — and, in the long version, while the worker
itself is parked just before its finalize transaction. A new worker joins after each kill.

Afterwards (``check_nothing_lost``): no half-written value visible, every record's value there and whole, no value
without a record, no temporary file, no run RUNNING, ``nbo doctor`` consistent; every killed attempt is FAILED
within the heartbeat timeout of the kill and the partition SUCCEEDED afterwards on a worker that was alive.

CI: two kills (one mid-publish, one at a random moment). ``NBO_RELIABILITY_LONG=1`` (``python benchmarks/run.py
reliability``): 20 kills (``NBO_RELIABILITY_DASK_KILLS``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from _dask_cluster import LocalDaskCluster, cluster_env
from _shared_helpers import alive, cmdline, descendants
from reliability_helpers import DAYS, LONG, check_nothing_lost, nbo_popen, record_figure, size, store_of, write_project

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

KERNEL_POINTS = ("before_publish", "during_publish", "after_rename", "after_publish")
HEARTBEAT_TIMEOUT = 15.0  # a loaded machine delays beats; Dask settles a dead worker's run long before this


def dask_project(root: Path) -> Path:
    """One asset, three days per round. Its cell arms, for the partition named in plan.json, a fault point that
    parks its kernel (once per partition: the retry passes); the value records the worker that ran it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "plan.json").write_text("{}")
    return write_project(root, [
        "import pandas as pd",
        f"""
        %%asset value --partitions {DAYS} --retries 1
        import json, os, pathlib
        _point = json.loads(pathlib.Path({str(root / "plan.json")!r}).read_text()).get(partition_key, "")
        os.environ["NOTEBOOK_ORCH_FAULT"] = _point
        os.environ["NOTEBOOK_ORCH_FAULT_ONCE"] = str(pathlib.Path({str(root / "once")!r}) / partition_key)
        os.environ["NOTEBOOK_ORCH_FAULT_PAUSE"] = {str(root / "parked")!r}
        value = pd.DataFrame({{"day": [partition_key] * 200, "n": range(200), "worker": os.getppid()}})
        """,
    ], heartbeat_timeout=HEARTBEAT_TIMEOUT)


def days(n: int, start: int) -> list[str]:
    import datetime as dt

    return [(dt.date(2013, 1, 1) + dt.timedelta(days=start + i)).isoformat() for i in range(n)]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def kernels_below(pid: int) -> list[int]:
    return [p for p in descendants(pid) if "ipykernel_launcher" in cmdline(p)]


def worker_of(pid: int, cluster: LocalDaskCluster) -> int | None:
    """The Dask worker that is ``pid`` or runs it (a kernel it started)."""
    for w in cluster.workers:
        if w.poll() is None and (w.pid == pid or pid in descendants(w.pid)):
            return w.pid
    return None


def kill_worker(cluster: LocalDaskCluster, pid: int) -> datetime:
    killed = next(w for w in cluster.workers if w.pid == pid)
    os.kill(pid, signal.SIGKILL)
    killed.wait(timeout=30)
    return utcnow()


def kill_round(root: Path, cluster: LocalDaskCluster, keys: list[str], how: str, rng: random.Random) -> list[dict]:
    """One backfill over ``keys`` on the cluster with one worker killed ``how`` (a kernel point or 'random'); every
    worker parked at a point (the long version's before_finalize too) is killed as well. Returns the kills."""
    (root / "plan.json").write_text(json.dumps({keys[1]: how} if how in KERNEL_POINTS else {}))
    parked = root / "parked"
    runner = nbo_popen(root, "backfill", "value", "--from", keys[0], "--to", keys[-1], "--workers", "2",
                       "--executor", "dask", "--address", cluster.address)
    kills: list[dict] = []
    random_at = None
    try:
        while runner.poll() is None:
            for flag in sorted(parked.glob("*.*")) if parked.exists() else []:
                if flag.suffix == ".tmp":
                    continue
                point, pid = flag.name.split(".")
                victim = worker_of(int(pid), cluster)
                if victim is not None:
                    kills.append({"at": kill_worker(cluster, victim), "pid": victim, "how": point})
                    time.sleep(rng.uniform(0.0, 1.5))  # the parked kernel may go on before it notices, or not
                flag.unlink(missing_ok=True)
                cluster.add_worker()
            if how == "random" and not kills:
                busy = [w.pid for w in cluster.workers if w.poll() is None and kernels_below(w.pid)]
                if busy and random_at is None:
                    random_at = time.monotonic() + rng.uniform(0.0, 2.5)
                if random_at is not None and time.monotonic() >= random_at:
                    live = [w.pid for w in cluster.workers if w.poll() is None]
                    busy = [p for p in live if kernels_below(p)] or live
                    victim = rng.choice(busy)
                    kills.append({"at": kill_worker(cluster, victim), "pid": victim, "how": "random"})
                    cluster.add_worker()
            time.sleep(0.02)
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0, out + err  # every killed attempt was retried and succeeded
    # a parked round always kills; a random moment can come after a fast backfill ended (the caller tries again)
    assert kills or how == "random", f"no worker was killed in the {how} round"
    return kills


def check_round(root: Path, keys: list[str], kills: list[dict]) -> int:
    """Each partition SUCCEEDED last, on a worker not killed; each earlier attempt FAILED by a worker's death,
    settled within the heartbeat timeout of a kill. Returns how many attempts the kills cost."""
    import pandas as pd

    from notebook_orch.storage import ValueStore

    victims = {k["pid"]: k["at"] for k in kills}  # a pid is killed once: a new worker gets a new pid
    store = store_of(root)
    try:
        runs = [r for r in store.list_runs(limit=10_000, asset="value") if r.partition_keys[0] in keys]
        failed = 0
        for key in keys:
            attempts = sorted((r for r in runs if r.partition_keys[0] == key), key=lambda r: r.attempt)
            statuses = [r.status for r in attempts]
            assert statuses[-1] == "SUCCESS" and set(statuses[:-1]) <= {"FAILED"}, (key, statuses)
            assert [r.attempt for r in attempts] == list(range(1, len(attempts) + 1)), key
            for dead in attempts[:-1]:
                assert "died" in (dead.error or ""), dead.error
                assert any(k["at"] - timedelta(seconds=1) <= dead.ended_at
                           <= k["at"] + timedelta(seconds=HEARTBEAT_TIMEOUT) for k in kills), (dead, kills)
            failed += len(attempts) - 1
            m = store.latest_materialization("value", key)
            got = ValueStore(root / ".notebook_orch" / "data").load(str(Path(m.storage_path).parent))
            # a worker killed at a random moment may have finished earlier partitions: those records stand; what
            # must never stand is a value recorded by a worker at or after its death
            writer = int(got["worker"].iloc[0])
            assert writer not in victims or m.created_at < victims[writer], (
                f"value[{key}] was recorded by worker {writer} after it was killed at {victims[writer]}")
            want = pd.DataFrame({"day": [key] * 200, "n": range(200)})
            assert got[["day", "n"]].equals(want), key
    finally:
        store.close()
    return failed


def test_dask_workers_killed_at_random_moments_and_mid_publish_lose_nothing(tmp_path: Path) -> None:
    rng = random.Random(40)
    kills_wanted = size("dask_kills", ci=2, long=20)
    if LONG:  # one kill a round, and the worker parked before its finalize once (the first round has two)
        rounds = [KERNEL_POINTS[(i // 2) % 4] if i % 2 == 0 else "random" for i in range(max(kills_wanted - 1, 1))]
    else:
        rounds = ["during_publish", "random"][:kills_wanted]
    root = dask_project(tmp_path / "p")
    extra = {}
    if LONG:  # the worker itself parked before its finalize transaction, once in the whole run
        extra = {"NOTEBOOK_ORCH_FAULT": "before_finalize", "NOTEBOOK_ORCH_FAULT_ONCE": str(root / "once" / "worker"),
                 "NOTEBOOK_ORCH_FAULT_PAUSE": str(root / "parked")}
    cluster = LocalDaskCluster(tmp_path / "dask", env=cluster_env(**extra))
    started = time.perf_counter()
    kills: list[dict] = []
    cost = 0
    try:
        for r, how in enumerate(rounds):
            for attempt in range(3):  # new partitions each try, until the random moment falls inside the backfill
                keys = days(3, start=(r + attempt * len(rounds)) * 3)
                made = kill_round(root, cluster, keys, how, rng)
                if made:
                    break
            assert made, f"no worker was killed in 3 tries of the {how} round: each backfill ended first"
            failed = check_round(root, keys, made)
            # A worker killed while it (or its kernel) was parked in a run cost that run an attempt; one killed at a
            # random moment may have been between runs.
            parked = sum(1 for k in made if k["how"] != "random")
            assert failed >= parked, (failed, made)
            cost += failed
            kills += made
            check_nothing_lost(root)
            assert not [p for k in made for p in [k["pid"]] if alive(p)], "a killed worker lives on"
            record_figure("crash_dask_round", kills=len(made), how=[k["how"] for k in made], failed=failed)
    finally:
        cluster.stop()
    by_how: dict[str, int] = {}
    for k in kills:
        by_how[k["how"]] = by_how.get(k["how"], 0) + 1
    record_figure("crash_dask", kills=len(kills), survived=len(kills), attempts_failed=cost, by_how=by_how,
                  seconds=round(time.perf_counter() - started, 1))
