"""Issue 10, crashes / duplicates / disk and store faults: the long versions of those tests, with their figures.

Runs their tests (test_crashes, test_duplicates, test_faults in tests/reliability) with
``NBO_RELIABILITY_LONG=1`` (100+ SIGKILLs at every publishing step and at random moments, 50 simultaneous
requests for one partition, disk and store faults under the daemon) and prints what each test recorded in
``NBO_RELIABILITY_FIGURES``. "nothing lost: verified" means the test's own check passed after every round: every
published value recorded and whole, every record's value there, no temporary file, no run RUNNING, no lock held,
``nbo doctor`` consistent. Takes 15-40 minutes on a loaded 2-core machine.

Called by ``bench_reliability`` (``python benchmarks/run.py reliability``); alone:
``PYTHONPATH=. python benchmarks/reliability_crashes.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


MINE = ("tests/reliability/test_crashes.py", "tests/reliability/test_duplicates.py", "tests/reliability/test_faults.py")


def run_all() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.jsonl"
        env = {**os.environ, "NBO_RELIABILITY_LONG": "1", "NBO_RELIABILITY_FIGURES": str(figures),
               "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "0",
                               *MINE], cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.perf_counter() - started
        rows = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
    ok = proc.returncode == 0
    verdict = "verified" if ok else "NOT verified (a test failed: see below)"
    by = {}
    for row in rows:
        by.setdefault(row["figure"], []).append(row)
    crash = by.get("crash_fault_points", []) + by.get("crash_random", [])
    kills = sum(r["kills"] for r in crash)
    survived = sum(r["survived"] for r in crash) if ok else 0
    print(f"crash_kills_survived: {survived}/{kills} SIGKILLs, nothing lost: {verdict}")
    for r in by.get("crash_fault_points", []):
        print(f"  at a publishing step (before/during/after publish, after rename, before/after finalize): "
              f"{r['kills']} kills, {r['runs']} runs, {r['values']} values, {r['seconds']} s")
    for r in by.get("crash_random", []):
        print(f"  at a random moment: {r['runner_kills']} runner kills, {r['kernel_kills']} kernel kills, "
              f"{r['seconds']} s")
    for r in by.get("duplicates", []):
        kinds = ", ".join(f"{n} {k}" for k, n in r["kinds"].items())
        print(f"duplicate_requests_collapsed: {r['requests']} simultaneous requests ({kinds}) -> {r['runs']} run; "
              f"{r['told']} of {r['requests'] - 1} others told the run's id, nothing lost: {verdict}")
    faults = [r for k in ("disk_faults", "store_faults", "store_faults_short") for r in by.get(k, [])]
    injected = sum(r["faults"] for r in faults)
    recovered = sum(r["recovered"] for r in faults) if ok else 0
    names = ", ".join(f"{k} {sum(r['faults'] for r in by[k])}" for k in ("disk_faults", "store_faults",
                                                                          "store_faults_short") if k in by)
    print(f"faults_injected: {injected} ({names}), recovered {recovered}, nothing lost: {verdict}")
    print(f"reliability_suite_seconds: {took:.0f} (machine shared, under load)")
    if not ok:
        print(proc.stdout[-4000:])
        print(proc.stderr[-2000:])


if __name__ == "__main__":
    run_all()
