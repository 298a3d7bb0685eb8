"""The daemon reaps a run whose heartbeat stopped and retries it per its asset's --retries: a real `nbo materialize`
is SIGKILLed (with its worker and kernel) mid-run; the daemon, a real process, reaps it and the retry succeeds as
attempt 2. Without retries left nothing is started (store-only, fast)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sched_helpers import daemon, env
from sched_helpers import until as _until

from notebook_orch import Project
from notebook_orch.scheduler import Scheduler


def _project(root: Path, retries: int) -> Path:
    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    mark = root / "first-attempt-started"
    nb.cells = [
        new_code_cell("%load_ext notebook_orch\nimport os, time"),
        new_code_cell(f"%%asset slow --partitions daily:2024-01-01 --retries {retries}\n"
                      f"if not os.path.exists({str(mark)!r}):\n"
                      f"    open({str(mark)!r}, 'w').close()\n"
                      "    time.sleep(600)  # the first attempt hangs until it is killed\n"
                      "slow = {'day': partition_key}"),
    ]
    nbformat.write(nb, root / "notebooks" / "slow.ipynb")
    return root


@pytest.mark.slow
def test_a_killed_run_is_reaped_and_retried_as_its_next_attempt(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", retries=1)
    key = "2024-01-05"
    fast = {"NBO_HEARTBEAT_TIMEOUT": "3"}
    with Project(root) as p:
        p.store.last_event_id()  # create the store before the processes race to
    log = tmp_path / "daemon.log"
    d = daemon(root, log=log, **fast)
    cli = subprocess.Popen([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), "materialize", "slow",
                            "--partition", key], env=env(root, **fast), start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _until(lambda: (root / "first-attempt-started").exists(), 120)
        os.killpg(cli.pid, signal.SIGKILL)  # the command, its worker and the kernel: nobody settles the run
        cli.wait(timeout=30)

        def runs():
            with Project(root) as p:
                return sorted(p.store.list_runs(limit=10, asset="slow"), key=lambda r: r.attempt)

        done = _until(lambda: [r for r in runs() if r.status == "SUCCESS"], 180)
        first, second = runs()
    finally:
        d.send_signal(signal.SIGTERM)
        assert d.wait(timeout=60) == 0
    assert [r.run_id for r in done] == [second.run_id]
    assert (first.attempt, first.status, first.kind) == (1, "FAILED", "manual")
    assert first.error.startswith("heartbeat lost:")
    assert (second.attempt, second.kind, second.partition_keys) == (2, "manual", (key,))
    assert "died at attempt 1; started attempt 2 of 2" in log.read_text()


@pytest.mark.parametrize("retries, attempt", [(0, 1), (1, 2)])
def test_no_retry_left_starts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retries: int,
                                      attempt: int) -> None:
    root = _project(tmp_path / "p", retries=retries)
    monkeypatch.setenv("NBO_HEARTBEAT_TIMEOUT", "0.2")
    with Project(root) as p:
        sched = Scheduler(p)
        assert sched.run_once().leader  # the cursor starts here
        p.store.start_run(notebook="notebooks/slow.ipynb", targets=[("slow", "2024-01-05")], kind="trigger",
                          attempt=attempt)  # a run whose process is gone: no heartbeat ever
        time.sleep(0.4)
        report = sched.run_once()
        assert (report.reaped, report.retried) == (1, 0)
        [run] = p.store.list_runs(limit=10)
        assert run.status == "FAILED" and run.error.startswith("heartbeat lost:")
        sched.finish()


def test_only_reaped_runs_are_the_daemons_to_retry() -> None:
    from notebook_orch.engine.handle import WORKER_DIED
    from notebook_orch.scheduler.retries import died

    assert died("heartbeat lost: no heartbeat since 2024-01-01 00:00:00 UTC (timeout 2 s)")
    assert not died(WORKER_DIED)  # the runner that saw its worker die retries it (engine.handle)
    assert not died("ValueError: bad input") and not died(None)
