"""Shared by the fuzzing, corpus, contention and secrets tests.

Hypothesis profiles: ``reliability`` (CI): 200 examples per property. ``reliability-long`` (``python
benchmarks/run.py reliability``, or ``NBO_FUZZ_PROFILE=reliability-long``): ``NBO_FUZZ_EXAMPLES`` examples per
property (default 5,000). ``FUZZ`` is the one chosen.

``snapshot``: a project folder's content before and after, with SQLite stores as their
rows (a checkpoint moves pages between the WAL and the file without changing any row).

Caches are left out: the ``state_cache`` table (store/snapshot.py, derived from the events) and the discovery
cache under ``.notebook_orch/cache/`` (derived from the notebooks' content) are refreshed by reads on purpose;
nothing the user stored or ran is in them."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, settings

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
             HealthCheck.data_too_large]
settings.register_profile("reliability", deadline=None, max_examples=200, suppress_health_check=_SUPPRESS)
settings.register_profile("reliability-long", deadline=None, suppress_health_check=_SUPPRESS,
                          max_examples=int(os.environ.get("NBO_FUZZ_EXAMPLES", "5000")))
FUZZ = settings.get_profile(os.environ.get("NBO_FUZZ_PROFILE", "reliability"))

CACHE_ROWS = ('INSERT INTO "state_cache"',)


def snapshot(folder: Path) -> dict[str, bytes | str | None]:
    """Every path under ``folder``: links as their target, folders as None, SQLite stores as their SQL dump, other
    files as their bytes. SQLite's -wal/-shm files come and go with connections and are left out."""
    out: dict[str, bytes | str | None] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        if Path(dirpath) == folder / ".notebook_orch":
            dirnames[:] = [d for d in dirnames if d != "cache"]
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = None
            elif name.endswith(("-wal", "-shm", "-journal")):
                continue
            else:
                data = p.read_bytes()
                out[rel] = _dump(p) if data[:16] == b"SQLite format 3\x00" else data
    return out


def _dump(path: Path) -> str | bytes:
    try:
        raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "\n".join(line for line in raw.iterdump() if not line.startswith(CACHE_ROWS))
        finally:
            raw.close()
    except sqlite3.DatabaseError:  # a damaged store: its bytes are what must not change
        return path.read_bytes()
