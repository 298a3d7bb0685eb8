"""The daemon runs every plan on one executor: a plan that stops on an error stops only its own runs. Two --auto
assets are triggered by the same upstream partition in one pass (real store, real worker processes and kernels);
the plan of `bad` fails in its drive loop while `good` is mid-run (its executor refuses its run, as a Dask client
that lost its scheduler would); `good` still finishes, and the daemon logs the failed plan. And a plan canceled
mid-run on a shared executor kills only its own worker: the other plan's run, mid-run too, succeeds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sched_helpers import until

from notebook_orch import Project
from notebook_orch.core.planning import PartitionSelection
from notebook_orch.scheduler import Scheduler

pytestmark = pytest.mark.slow
DAILY = "--partitions daily:2024-01-01"


def _project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    mark = root / "good-started"
    for name, body in (("good", f"import time\nopen({str(mark)!r}, 'w').close()\ntime.sleep(4)\ngood = up + 1"),
                       ("bad", "bad = up")):
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        cells = [new_code_cell("%load_ext notebook_orch")]
        if name == "good":
            cells.append(new_code_cell(f"%%asset up {DAILY}\nup = 1"))
        cells.append(new_code_cell(f"%%asset {name} --deps up {DAILY} --auto\n{body}"))
        nb.cells = cells
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    return root


class _Refusing:
    """The daemon's executor as `bad`'s plan sees it: it refuses that plan's run once `good` runs."""

    def __init__(self, pool: Any, mark: Path) -> None:
        self._pool, self._mark = pool, mark
        self.name = pool.name

    @property
    def capacity(self) -> int:
        return self._pool.capacity

    def start(self, request: Any) -> Any:
        until(self._mark.exists, 120, step=0.05)
        raise ConnectionError("the executor lost its scheduler")

    def cancel_all(self) -> None:
        self._pool.cancel_all()

    def cancel(self, futures: Any) -> None:
        self._pool.cancel(futures)

    def shutdown(self) -> None:
        pass


def test_one_plans_error_does_not_cancel_another_plans_run(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    root = _project(tmp_path / "p")
    key = "2024-01-03"
    with Project(root) as p:
        daemon = Scheduler(p, workers=2)
        assert daemon.run_once().leader
        submit = p.submit

        def submit_refusing_bad(selection: str, **options: Any) -> Any:
            if selection == "bad":
                options["executor"] = _Refusing(options["executor"], root / "good-started")
            return submit(selection, **options)

        p.submit = submit_refusing_bad  # type: ignore[method-assign]
        assert p.materialize("up", partitions=PartitionSelection(keys=(key,))).ok
        with caplog.at_level(logging.INFO, logger="notebook_orch.scheduler"):
            report = daemon.run_once()
            assert sorted(report.triggered) == [("bad", key), ("good", key)]
            by_asset = {h.plan.runs[0].assets[0]: h for h in daemon.handles}
            good = by_asset["good"].wait(timeout=180)
            with pytest.raises(ConnectionError):
                by_asset["bad"].wait(timeout=60)
            daemon.run_once()  # the next pass forgets the ended plans and says which failed
        daemon.finish()
        assert [o.status for o in good.outcomes] == ["SUCCESS"]
        runs = {r.assets: r.status for r in p.store.list_runs(limit=10) if r.kind == "trigger"}
        assert runs == {("good",): "SUCCESS"}  # bad's run never started: nothing of it is recorded
    assert "a plan of bad stopped on an error" in caplog.text and "lost its scheduler" in caplog.text


def test_canceling_one_plan_on_the_shared_executor_kills_only_its_run(tmp_path: Path) -> None:
    from notebook_orch.engine.executors import default_registry

    root = _project(tmp_path / "p")
    nb = nbformat.read(root / "notebooks" / "bad.ipynb", as_version=4)
    mark = root / "bad-started"  # `bad` now hangs once started: it is the plan canceled mid-run
    nb.cells[-1].source = (f"%%asset bad --deps up {DAILY} --auto\nimport time\nopen({str(mark)!r}, 'w').close()\n"
                           "time.sleep(600)\nbad = up")
    nbformat.write(nb, root / "notebooks" / "bad.ipynb")
    key = PartitionSelection(keys=("2024-01-03",))
    pool = default_registry().create("local", workers=2)
    try:
        with Project(root) as p:
            assert p.materialize("up", partitions=key).ok
            good = p.submit("good", partitions=key, executor=pool)
            bad = p.submit("bad", partitions=key, executor=pool)
            until(lambda: mark.exists() and (root / "good-started").exists(), 120, step=0.05)
            bad.cancel()
            assert [o.status for o in bad.wait(timeout=60).outcomes] == ["CANCELED"]
            assert [o.status for o in good.wait(timeout=120).outcomes] == ["SUCCESS"]
    finally:
        pool.shutdown()
