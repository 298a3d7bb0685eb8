"""The run engine seen from a notebook: how soon ``%nbo materialize`` of 365 partitions gives the prompt back.

* ``materialize_return``: a real kernel (jupyter_client) with the extension loaded runs
  ``view = %nbo materialize small --from 2013-01-01 --to 2013-12-31``; the figure is the time from sending the cell
  to the reply of a following ``1 + 1`` (the prompt is usable again), while the 365 runs go on in the background.
  ``_first`` is the first such cell of the kernel (it imports the planner and the store); the plain figure is the
  median of the repeats after it (each cancels the previous materialization first).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import report

REPEATS = 5


def run() -> None:
    from bench_backfill import _project
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _project(root)
        km = KernelManager(kernel_name="python3", shutdown_wait_time=30.0)
        km.start_kernel(cwd=str(root), env={**os.environ, "NBO_PROJECT": str(root)})
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        try:
            _run(kc, "%load_ext notebook_orch")
            times = []
            for _ in range(REPEATS + 1):
                started = time.perf_counter()
                _run(kc, "view = %nbo materialize small --from 2013-01-01 --to 2013-12-31 --workers 2")
                _run(kc, "1 + 1")
                times.append(time.perf_counter() - started)
                _run(kc, "view.cancel(); view.wait(120)", timeout=180)
            report("materialize_return_first", times[0], "s", "")
            report("materialize_return", statistics.median(times[1:]), "s", "< 0.3 s")
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)


def _run(kc, code: str, timeout: float = 120) -> None:  # noqa: ANN001
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed: {reply['content'].get('evalue')}")
