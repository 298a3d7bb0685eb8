"""Start-up: ``import notebook_orch`` and a cold ``nbo status`` (a new process) on 1,000 assets in 200 notebooks.

The project for ``status_cold`` has every one of its 365,000 partitions materialized, so the status command reads
and classifies all of them, as it would on a real year of daily data.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report
from _synthetic import populate_store, write_project

REPEATS = 5


def _time_command(args: list[str], cwd: str | None = None) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> None:
    python = sys.executable
    baseline = _time_command([python, "-c", "pass"])
    with_import = _time_command([python, "-c", "import notebook_orch"])
    report("import_time", with_import - baseline, "s", "< 0.3 s")
    print(f"# interpreter start alone {baseline:.3f} s (subtracted)", flush=True)

    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.discovery import discover
    from notebook_orch.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_project(root)
        graph = AssetGraph(discover(root / "notebooks", root=root).specs)
        store = open_store(f"sqlite:///{root / '.notebook_orch' / 'store.db'}")
        populate_store(store, graph)
        store.close()
        nbo = str(Path(python).with_name("nbo"))
        report("status_cold", _time_command([nbo, "status", "--json"], cwd=tmp), "s", "< 0.8 s")
