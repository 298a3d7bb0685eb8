"""Long versions of the fuzzing, corpus, contention and secrets tests (tests/reliability), called by
bench_reliability.py. Each runs the real test file under pytest in a subprocess with the long settings and prints
its figures; a failure prints the test's output and counts as a failed figure.
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
TESTS = ROOT / "tests" / "reliability"


def _pytest(*args: str, **env: str) -> tuple[bool, str, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    return proc.returncode == 0, proc.stdout + proc.stderr, time.monotonic() - started


def fuzz_long(examples: int | None = None) -> dict:
    """Every fuzzed property with ``examples`` inputs each (NBO_FUZZ_EXAMPLES, default 2,000)."""
    examples = examples or int(os.environ.get("NBO_FUZZ_EXAMPLES", "2000"))
    with tempfile.TemporaryDirectory() as tmp:
        counts_file = Path(tmp, "counts.json")
        ok, out, took = _pytest(str(TESTS / "test_fuzz.py"), NBO_FUZZ_PROFILE="reliability-long",
                                NBO_FUZZ_EXAMPLES=str(examples), NBO_FUZZ_COUNTS=str(counts_file))
        counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    total = sum(counts.values())
    print(f"fuzz_inputs: {total:,} inputs over {len(counts)} properties "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(counts.items()))}) in {took:.0f} s: "
          + ("0 unexpected exceptions, 0 stores changed by a refusal" if ok else "FAILED"), flush=True)
    if not ok:
        print(out[-4000:])
    return {"inputs": total, "ok": ok, "seconds": took}


def corpus() -> dict:
    """The hostile corpus through nbo: files, and whether each got its message with nothing changed."""
    expected = json.loads((TESTS / "corpus" / "expected.json").read_text())
    files = [k for k in expected if not k.startswith("_")]
    kinds = {kind: sum(1 for f in files if f.startswith(kind + "/")) for kind in ("notebooks", "configs", "stores")}
    ok, out, took = _pytest(str(TESTS / "test_corpus.py"), "-n", "2")
    print(f"corpus_files: {len(files)} hostile files ({', '.join(f'{v} {k}' for k, v in kinds.items())}) in "
          f"{took:.0f} s: " + ("each got its message, 0 stores changed, 0 user files replaced" if ok else "FAILED"),
          flush=True)
    if not ok:
        print(out[-4000:])
    return {"files": len(files), "ok": ok}


def _figures(path: Path, name: str) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("figure") == name]


def contention_long(seconds: float | None = None) -> dict:
    """Kernel + CLI backfills + daemon + two followers on one SQLite store for ``seconds`` (NBO_CONTENTION_S,
    default 180)."""
    seconds = seconds or float(os.environ.get("NBO_CONTENTION_S", "180"))
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp, "figures.jsonl")
        ok, out, took = _pytest(str(TESTS / "test_contention.py"), NBO_CONTENTION_S=str(seconds),
                                NBO_RELIABILITY_FIGURES=str(figures))
        rows = _figures(figures, "contention")
    if ok and rows:
        f = rows[-1]
        print(f"contention_events: {f['events']:,} events in {f['seconds']:.0f} s of kernel ({f['interactive']} "
              f"interactive materializations) + {f['backfills']} nbo backfill processes ({f['backfill_runs']} runs) "
              f"+ daemon ({f['auto_runs']} --auto runs) + {f['followers']} followers: lost {f['lost']}, "
              f"duplicates {f['duplicates']}, out of order {f['out_of_order']}, 'locked' messages "
              f"{f['locked_messages']} ({took:.0f} s in all)", flush=True)
    else:
        print("contention_events: FAILED")
        print(out[-4000:])
    return rows[-1] if rows else {"ok": False}


def secrets_scan() -> dict:
    """Runs that read a secret (succeeding, failing, storing it) from nbo, a kernel and Dask; every place scanned."""
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp, "figures.jsonl")
        ok, out, took = _pytest(str(TESTS / "test_secret_scan.py"), NBO_RELIABILITY_FIGURES=str(figures))
        rows = _figures(figures, "secrets")
    if ok and rows:
        f = rows[-1]
        print(f"secret_scans: {f['places']:,} places scanned ({f['files']} project files, {f['tables']} store tables, "
              f"{f['events']} events, {f['kernel_messages']} kernel messages, nbo output, Dask logs) after "
              f"{f['runs']} runs (nbo, kernel, background, Dask; succeeded, failed, refused): "
              f"{f['occurrences']} occurrences of the secret ({took:.0f} s)", flush=True)
    else:
        print("secret_scans: FAILED")
        print(out[-4000:])
    return rows[-1] if rows else {"ok": False}


def run_all() -> None:
    fuzz_long()
    corpus()
    contention_long()
    secrets_scan()
