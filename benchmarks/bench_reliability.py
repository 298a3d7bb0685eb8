"""Issue 10 (reliability): every figure of the README's reliability section from ONE run of tests/reliability.

``python benchmarks/run.py reliability [--size small|full]`` runs the whole folder once, serially, under pytest with
the long settings (``NBO_RELIABILITY_LONG=1``) and the chosen sizes, collects what each test recorded
(``NBO_RELIABILITY_FIGURES``, JSON lines) and prints one line per figure: kills survived (publishing steps, random
moments, the scheduler daemon, Dask workers), events under contention, duplicate requests collapsed, faults
injected, inputs fuzzed and hostile files, places scanned for secrets. "nothing lost: verified" means the tests
behind that figure passed — their own check after every round: every published value recorded and whole, every
record's value there, no temporary file, no run RUNNING, no lock held, ``nbo doctor`` consistent (and, for the
secrets, zero occurrences); a failed test prints its output and the figure says NOT verified.

``--size small`` is a sanity check of the machinery (a few minutes); ``full`` (the default) is the measurement,
for a quiet machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "reliability"

# NBO_RELIABILITY_<NAME> (tests/reliability/reliability_helpers.size) and the two older knobs
SIZES = {
    "full": {"FAULT_ROUNDS": 8, "RANDOM_ROUNDS": 6, "DAEMON_KILLS": 3, "DASK_KILLS": 20, "DUPLICATE_REQUESTS": 50,
             "fuzz_examples": 2000, "contention_s": 180},
    "small": {"FAULT_ROUNDS": 1, "RANDOM_ROUNDS": 2, "DAEMON_KILLS": 1, "DASK_KILLS": 3, "DUPLICATE_REQUESTS": 12,
              "fuzz_examples": 30, "contention_s": 20},
}


def run(size: str = "full") -> None:
    sizes = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp:
        figures, counts, junit = Path(tmp, "figures.jsonl"), Path(tmp, "fuzz_counts.json"), Path(tmp, "junit.xml")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NBO_RELIABILITY_LONG": "1",
               "NBO_RELIABILITY_FIGURES": str(figures), "NBO_FUZZ_PROFILE": "reliability-long",
               "NBO_FUZZ_EXAMPLES": str(sizes["fuzz_examples"]), "NBO_FUZZ_COUNTS": str(counts),
               "NBO_CONTENTION_S": str(sizes["contention_s"]),
               **{f"NBO_RELIABILITY_{k}": str(v) for k, v in sizes.items() if k.isupper()}}
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "0",
                               f"--junitxml={junit}", str(TESTS)], cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.perf_counter() - started
        rows = [json.loads(line) for line in figures.read_text().splitlines() if line.strip()] \
            if figures.exists() else []
        fuzz_counts = json.loads(counts.read_text()) if counts.exists() else {}
        outcomes = _outcomes(junit)
    report(rows, fuzz_counts, outcomes, size=size)
    print(f"reliability_suite_seconds: {took:.0f} ({size} size, one pytest run of tests/reliability)", flush=True)
    if proc.returncode != 0:
        print(proc.stdout[-6000:])
        print(proc.stderr[-2000:])


def _outcomes(junit: Path) -> dict[str, str]:
    """test file stem -> 'passed' / 'failed' / 'skipped' (the worst of its tests)."""
    if not junit.exists():
        return {}
    out: dict[str, str] = {}
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    for case in ET.parse(junit).iter("testcase"):
        stem = case.get("classname", "").rsplit(".", 1)[-1]
        state = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
        if rank[state] >= rank[out.get(stem, "passed")]:
            out[stem] = state
    return out


def report(rows: list[dict], fuzz_counts: dict[str, int], outcomes: dict[str, str], *, size: str) -> None:
    by: dict[str, list[dict]] = {}
    for row in rows:
        by.setdefault(row["figure"], []).append(row)

    def verdict(*stems: str) -> str:
        states = [outcomes.get(s, "not run") for s in stems]
        if all(s == "passed" for s in states):
            return "nothing lost: verified"
        return "nothing lost: NOT verified (" + ", ".join(f"{s} {st}" for s, st in zip(stems, states)
                                                          if st != "passed") + ")"

    def one(name: str) -> dict:
        return (by.get(name) or [{}])[-1]

    points, rand, daemon, dask = (one(n) for n in ("crash_fault_points", "crash_random", "crash_daemon",
                                                   "crash_dask"))
    kills = sum(f.get("kills", 0) for f in (points, rand, daemon, dask))
    print(f"crash_kills_survived: {kills} SIGKILLs ({points.get('kills', 0)} at publishing steps, "
          f"{rand.get('kills', 0)} runner/kernel at random moments, {daemon.get('kills', 0)} scheduler daemon, "
          f"{dask.get('kills', 0)} Dask workers), {verdict('test_crashes', 'test_crashes_dask')}", flush=True)
    if dask:
        hows = ", ".join(f"{n} {h}" for h, n in sorted(dask.get("by_how", {}).items()))
        print(f"  Dask worker kills: {dask['kills']} ({hows}); {dask.get('attempts_failed', 0)} attempts FAILED "
              f"and retried on a live worker, {dask.get('seconds', 0)} s", flush=True)
    c = one("contention")
    if c:
        print(f"contention_events: {c['events']:,} events in {c['seconds']:.0f} s (kernel: {c['interactive']} "
              f"interactive materializations, {c['backfills']} nbo backfills with {c['backfill_runs']} runs, daemon: "
              f"{c['auto_runs']} --auto runs, {c['followers']} followers): lost {c['lost']}, duplicates "
              f"{c['duplicates']}, out of order {c['out_of_order']}, 'locked' messages {c['locked_messages']}, "
              f"{verdict('test_contention')}", flush=True)
    else:
        print(f"contention_events: no figure, {verdict('test_contention')}")
    d = one("duplicates")
    if d:
        kinds = ", ".join(f"{n} {k}" for k, n in d["kinds"].items())
        print(f"duplicate_requests_collapsed: {d['requests']} simultaneous requests ({kinds}) -> {d['runs']} run; "
              f"{d['told']} of {d['requests'] - 1} others told its run id, {verdict('test_duplicates')}", flush=True)
    else:
        print(f"duplicate_requests_collapsed: no figure, {verdict('test_duplicates')}")
    kinds = ("disk_faults", "store_faults_short", "store_faults", "store_overwritten")
    injected = {k: sum(r["faults"] for r in by.get(k, [])) for k in kinds}
    recovered = sum(r["recovered"] for k in kinds for r in by.get(k, []))
    disk = "" if by.get("disk_faults") else " (disk faults skipped: no tmpfs mount here)"
    print(f"faults_injected: {sum(injected.values())} ({', '.join(f'{k} {v}' for k, v in injected.items())}), "
          f"recovered {recovered}{disk}, {verdict('test_faults', 'test_store_overwritten')}", flush=True)
    total = sum(fuzz_counts.values())
    expected = json.loads((TESTS / "corpus" / "expected.json").read_text())
    corpus = len([k for k in expected if not k.startswith("_")])
    print(f"inputs_fuzzed: {total:,} over {len(fuzz_counts)} properties "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(fuzz_counts.items()))}) + {corpus} hostile files: "
          f"0 unexpected exceptions, 0 stores changed by a refusal, {verdict('test_fuzz', 'test_corpus')}", flush=True)
    s, sd = one("secrets"), one("secrets_daemon")
    print(f"secret_places_scanned: {s.get('places', 0) + sd.get('places', 0):,} places after "
          f"{s.get('runs', 0) + sd.get('runs', 0)} runs (nbo, kernel, background, Dask: {s.get('places', 0)} places; "
          f"the scheduler daemon's schedule and trigger, its log and the alert hook: {sd.get('places', 0)}): "
          f"{s.get('occurrences', 0) + sd.get('occurrences', 0)} occurrences, "
          f"{verdict('test_secret_scan', 'test_secret_scan_daemon')}", flush=True)
    print(f"# sizes: {size} {SIZES[size]}", flush=True)
