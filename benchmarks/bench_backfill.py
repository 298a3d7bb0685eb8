"""Backfills of a small daily notebook, plain papermill per partition against the warm-kernel mode.

* ``partition_overhead``: our fresh-kernel run of one partition (lock, heartbeat, papermill with injected run
  context, manifest, one-transaction finalize) minus a bare ``papermill.execute_notebook`` of the same cells
  without notebook_orch — what our bookkeeping costs per partition.
* ``backfill_plain``: partitions per second with ``--mode fresh`` (a new kernel per partition, as plain papermill
  does), 2 workers; measured over PLAIN_PARTITIONS partitions (its rate is steady, and 365 would take minutes).
* ``backfill_fast``: partitions per second with ``--mode warm`` over all 365 partitions, 2 workers.
* ``backfill_speedup``: fast / plain. Both produce the same data versions (checked).
* ``interactive_overhead``: an interactive ``%%asset`` cell of a small value minus the same body run as a plain cell
  in the same IPython shell: start run, store the value (temp, fsync, rename, _SUCCESS), finalize.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from _common import report
from nbformat.v4 import new_code_cell, new_notebook

WORKERS = 2
PLAIN_PARTITIONS = 24
BODY = 'small = {"day": str(partition_key), "value": sum(range(1000))}'


def _notebook(path: Path, *, with_orch: bool) -> None:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell('partition_key = "2013-01-01"')
    params.metadata["tags"] = ["parameters"]
    if with_orch:
        nb.cells = [new_code_cell("%load_ext notebook_orch"), params,
                    new_code_cell(f"%%asset small --partitions daily:2013-01-01..2013-12-31\n{BODY}")]
    else:
        nb.cells = [params, new_code_cell(BODY)]
    nbformat.write(nb, path)


def _project(root: Path) -> None:
    (root / "notebooks").mkdir(parents=True)
    _notebook(root / "notebooks" / "small.ipynb", with_orch=True)


def _bare_papermill(root: Path, n: int) -> float:
    import logging

    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.ERROR)
    src = root / "bare.ipynb"
    _notebook(src, with_orch=False)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        pm.execute_notebook(str(src), str(root / f"bare-out{i}.ipynb"), parameters={"partition_key": "2013-01-02"},
                            kernel_name="python3", progress_bar=False, shutdown_kernel="immediate")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _ours_fresh_single(root: Path, n: int) -> float:
    from notebook_orch.engine.executor import FRESH_MODE, RunRequest, execute_run
    from notebook_orch.engine.runner import asset_contexts
    from notebook_orch.project import Project, utcnow

    project = Project(root)
    spec = project.graph.spec("small")
    times = []
    for i in range(n):
        req = RunRequest(project_root=str(root), store_url=project.config.store_url,
                         notebook=spec.notebook, partition=f"2013-02-{i + 1:02d}", assets=("small",),
                         code_versions={"small": spec.code_version}, mode=FRESH_MODE,
                         asset_contexts=asset_contexts(project.graph, ["small"], f"2013-02-{i + 1:02d}", now=utcnow()))
        t0 = time.perf_counter()
        outcome = execute_run(req)
        times.append(time.perf_counter() - t0)
        assert outcome.status == "SUCCESS", outcome
    project.close()
    return statistics.median(times)


def _backfill(root: Path, mode: str, start: str, end: str) -> tuple[float, int]:
    from notebook_orch.core.planning import PartitionSelection
    from notebook_orch.project import Project

    with Project(root) as project:
        t0 = time.perf_counter()
        result = project.materialize("small", partitions=PartitionSelection(start=start, end=end),
                                     workers=WORKERS, mode=mode, kind="backfill")
        took = time.perf_counter() - t0
        assert result.ok, [o for o in result.outcomes if o.status != "SUCCESS"][:3]
        return len(result.outcomes) / took, len(result.outcomes)


def _interactive(root: Path, n: int = 60) -> float:
    from IPython.core.interactiveshell import InteractiveShell

    os.environ["NBO_PROJECT"] = str(root)
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext notebook_orch", store_history=False)
    shell.run_cell("%nbo partition 2013-03-01", store_history=False)
    cell = f"%%asset small --partitions daily:2013-01-01..2013-12-31\n{BODY}"
    shell.run_cell(cell, store_history=False)  # warm-up: discovery, store open, imports
    body = f'partition_key = "2013-03-01"\n{BODY}'
    asset_t, plain_t = [], []
    import contextlib
    import io

    for _ in range(n):
        with contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            ok = shell.run_cell(cell, store_history=False).success
            asset_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            shell.run_cell(body, store_history=False)
            plain_t.append(time.perf_counter() - t0)
        assert ok
    os.environ.pop("NBO_PROJECT", None)
    return statistics.median(asset_t) - statistics.median(plain_t)


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        _project(root)
        bare = _bare_papermill(Path(tmp), 7)
        ours = _ours_fresh_single(root, 7)
        report("partition_overhead", ours - bare, "s", "< 0.2 s")
        print(f"# one partition: ours {ours:.3f} s, bare papermill {bare:.3f} s", flush=True)
        plain_rate, plain_n = _backfill(root, "fresh", "2013-04-01", f"2013-04-{PLAIN_PARTITIONS:02d}")
        report("backfill_plain", plain_rate, "partitions/s", "")
        print(f"# plain: {plain_n} partitions, {WORKERS} workers, a fresh kernel per partition", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        _project(root)
        fast_rate, fast_n = _backfill(root, "warm", "2013-01-01", "2013-12-31")
        report("backfill_fast", fast_rate, "partitions/s", "")
        print(f"# fast: {fast_n} partitions, {WORKERS} workers, warm kernels", flush=True)
        report("backfill_speedup", fast_rate / plain_rate, "x", ">= 20 x")
        report("interactive_overhead", _interactive(root) * 1000, "ms", "< 5 ms")
