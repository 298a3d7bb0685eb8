"""Contention on one SQLite store, four kinds of process at once, each a real one:

- a Jupyter kernel (jupyter_client) materializing ``%%asset`` cells interactively, partition after partition;
- ``nbo backfill`` on the command line, one range after another (papermill runs in warm kernels);
- the scheduler daemon (``nbo scheduler``), starting the ``--auto`` asset as its inputs become fresh;
- two followers of the event log (``EventFollower``, the API widgets and the daemon use), each its own process.

For ``NBO_CONTENTION_S`` seconds (25 in CI, then the last backfill finishes; the benchmark runs minutes).
Afterwards: no "database is locked" (or any "locked") reached a user — every process's stdout and stderr, every
kernel output, every run's error are scanned — and each follower saw every event of the store's events table
exactly once, in id order: nothing lost, nothing twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.kernel

WORKTREE = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("NBO_CONTENTION_S", "25"))
DAYS = "daily:2013-01-01..2016-12-31"  # enough partitions for minutes of backfill and interactive runs
LOCKED = re.compile(r"database is locked|database table is locked|SQLITE_BUSY|OperationalError", re.I)

FOLLOWER = """
import json, sys, time
from pathlib import Path
from notebook_orch.store import open_store
from notebook_orch.store.follow import EventFollower
url, out, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
store = open_store(url)
follower = EventFollower(store)
idle = 0
with out.open("w") as f:
    while True:
        events = follower.wait(0.5)
        for e in events:
            f.write(json.dumps([e.id, e.kind if hasattr(e, "kind") else None]) + "\\n")
        f.flush()
        if stop.exists():
            idle = 0 if events else idle + 1
            if idle >= 3:  # the writers are done: three empty polls in a row
                break
store.close()
"""


def make_project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    pipe = new_notebook()
    pipe.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    pipe.cells = [
        new_code_cell("%load_ext notebook_orch"),
        new_code_cell(f"%%asset raw --partitions {DAYS}\nraw = {{'day': partition_key, 'n': 3}}"),
        new_code_cell(f"%%asset clean --deps raw --partitions {DAYS}\nclean = {{'day': raw['day'], 'n': raw['n']}}"),
        new_code_cell(f"%%asset auto_total --deps clean --partitions {DAYS} --auto\n"
                      "auto_total = {'day': clean['day'], 'total': clean['n'] * 2}"),
    ]
    nbformat.write(pipe, root / "notebooks" / "pipe.ipynb")
    inter = new_notebook()
    inter.cells = [new_code_cell(f"%%asset typed --partitions {DAYS}\ntyped = {{'day': partition_key}}")]
    nbformat.write(inter, root / "notebooks" / "interactive.ipynb")
    (root / "pyproject.toml").write_text("[tool.notebook_orch]\nheartbeat_timeout = 300\n")
    return root


def env(root: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NBO_")}
    return {**clean, "PYTHONPATH": str(WORKTREE), "NBO_PROJECT": str(root)}


def nbo(root: Path, *args: str, log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - the process owns it until it exits
    return subprocess.Popen([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args],
                            stdout=out, stderr=out, env=env(root))


class Kernel:
    def __init__(self, root: Path) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3", shutdown_wait_time=20.0)
        self.km.start_kernel(cwd=str(root), env=env(root))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.shown: list[str] = []  # every output text, scanned at the end

    def run(self, code: str, timeout: float = 120) -> str:
        outputs: list[dict] = []
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=outputs.append)
        text = "".join(str(m["content"].get("text", "")) + str(m["content"].get("data", {}).get("text/plain", ""))
                       + "\n".join(m["content"].get("traceback", [])) for m in outputs)
        self.shown.append(text)
        assert reply["content"]["status"] == "ok", (code, reply["content"], text)
        return text

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _keys(start: int, n: int) -> list[str]:
    from datetime import date, timedelta

    first = date(2013, 1, 1)
    return [(first + timedelta(days=start + i)).isoformat() for i in range(n)]


def test_four_processes_share_the_store_without_locked_errors_or_lost_events(tmp_path: Path) -> None:
    from notebook_orch.store import open_store

    root = make_project(tmp_path / "project")
    url = f"sqlite:///{root / '.notebook_orch' / 'store.db'}"
    open_store(url).close()  # created once, before the crowd arrives
    logs = tmp_path / "logs"
    logs.mkdir()
    stop = tmp_path / "stop"
    followers = [subprocess.Popen([sys.executable, "-c", FOLLOWER, url, str(tmp_path / f"seen{i}.jsonl"), str(stop)],
                                  stdout=open(logs / f"follower{i}.log", "ab"),  # noqa: SIM115
                                  stderr=subprocess.STDOUT, env=env(root)) for i in range(2)]
    daemon = nbo(root, "scheduler", "--interval", "0.2", log=logs / "daemon.log")
    kernel = Kernel(root)
    backfills: list[subprocess.Popen] = []
    typed = 0
    try:
        kernel.run("%load_ext notebook_orch")
        deadline = time.monotonic() + SECONDS
        next_range = 0
        backfill: subprocess.Popen | None = None
        while time.monotonic() < deadline:
            if backfill is None or backfill.poll() is not None:
                first, last = _keys(next_range, 2)[0], _keys(next_range, 2)[-1]
                backfill = nbo(root, "backfill", "+clean", "--from", first, "--to", last, "--workers", "2",
                               log=logs / f"backfill{len(backfills)}.log")
                backfills.append(backfill)
                next_range += 2
            # The kernel: one partition of the interactive asset per cell, as a person clicking through them.
            key = _keys(1000 + typed % 400, 1)[0]  # apart from the backfill's ranges; again after 400
            kernel.run(f"%nbo partition {key}")
            kernel.run(kernel_cell(root), timeout=180)
            typed += 1
        for proc in backfills:
            proc.wait(timeout=300)
        time.sleep(2.0)  # the daemon's last trigger pass
    finally:
        kernel.close()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        stop.touch()
        for f in followers:
            f.wait(timeout=120)

    # What every user saw: process output, the kernel's outputs, each run's error.
    texts = {p.name: p.read_text(errors="replace") for p in logs.iterdir()}
    texts.update({f"kernel output {i}": t for i, t in enumerate(kernel.shown)})
    with open_store(url) as store:
        runs = store.list_runs(limit=1_000_000)
        texts.update({f"run {r.run_id} error": r.error or "" for r in runs})
        store_ids = [e.id for e in store.events_after(0, limit=10_000_000)]
    locked = {name: LOCKED.findall(text) for name, text in texts.items() if LOCKED.search(text)}
    assert not locked, f"'locked' reached a user: {locked}"
    failed = {f"backfill{i}": texts.get(f"backfill{i}.log") for i, b in enumerate(backfills) if b.returncode != 0}
    assert not failed, failed
    assert daemon.returncode in (0, -signal.SIGTERM), texts.get("daemon.log")
    assert not [r for r in runs if r.status not in ("SUCCESS",)], [(r.assets, r.status, r.error) for r in runs
                                                                   if r.status != "SUCCESS"]
    auto_runs = [r for r in runs if "auto_total" in r.assets]
    backfill_runs = [r for r in runs if r.kind == "backfill"]
    assert typed >= 3 and backfill_runs and auto_runs, (typed, len(backfill_runs), len(auto_runs))

    counts = {}
    for i, f in enumerate(followers):
        assert f.returncode == 0, texts.get(f"follower{i}.log")
        seen = [json.loads(line)[0] for line in (tmp_path / f"seen{i}.jsonl").read_text().splitlines()]
        assert len(seen) == len(set(seen)), "an event was delivered twice"
        assert seen == sorted(seen), "events were delivered out of id order"
        assert seen == store_ids, f"lost: {sorted(set(store_ids) - set(seen))[:20]}"
        counts[f"follower{i}"] = len(seen)
    from reliability_helpers import record_figure

    record_figure("contention", seconds=SECONDS, events=len(store_ids), lost=0, duplicates=0, out_of_order=0,
                  runs=len(runs), interactive=typed, backfills=len(backfills), backfill_runs=len(backfill_runs),
                  auto_runs=len(auto_runs),
                  locked_messages=0, followers=len(followers))


def kernel_cell(root: Path) -> str:
    """The saved ``typed`` cell, run as the person would run it."""
    nb = nbformat.read(root / "notebooks" / "interactive.ipynb", as_version=4)
    return nb.cells[0].source
