"""Every attempt of a scheduled run carries its tick's `--param` and partition, also a retry of a retry: the daemon
(a real process, with its worker and kernel) is SIGKILLed twice while the scheduled run hangs; each restarted daemon
reaps the dead attempt and starts the next one; the third attempt finishes. Each attempt writes down the parameter
it saw. The schedule is deleted after the tick fired: its tick keeps the parameters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sched_helpers import env, until

from notebook_orch import Project
from notebook_orch.storage import ValueStore

pytestmark = pytest.mark.slow


def _project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "attempts").mkdir()
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell("region = 'us'")
    params.metadata["tags"] = ["parameters"]
    folder = str(root / "attempts")
    nb.cells = [
        new_code_cell("%load_ext notebook_orch\nimport os, time"),
        params,
        new_code_cell("%%asset regional --partitions daily:2024-01-01 --retries 2\n"
                      f"n = len(os.listdir({folder!r})) + 1\n"
                      f"open(os.path.join({folder!r}, f'{{n}}-{{region}}-{{partition_key}}'), 'w').close()\n"
                      "if n < 3:\n"
                      "    time.sleep(600)  # attempts 1 and 2 hang until their daemon is killed\n"
                      "regional = {'region': region, 'day': partition_key}"),
    ]
    nbformat.write(nb, root / "notebooks" / "regional.ipynb")
    return root


def _daemon(root: Path, log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - the process owns it until it exits
    return subprocess.Popen([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), "scheduler",
                             "--interval", "0.2", "--lease-ttl", "2"], stdout=out, stderr=out,
                            env=env(root, NBO_HEARTBEAT_TIMEOUT="3"), start_new_session=True)


def test_a_retry_of_a_retry_keeps_the_ticks_param_and_partition(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    attempts = root / "attempts"
    with Project(root) as p:  # one 06:00 tick is due (catch-up latest): it fires once, at the first start
        p.store.scheduling.add_schedule(name="eu", cron="0 6 * * *", selection="regional", catchup="latest",
                                        params={"region": "eu"}, now=datetime.now(timezone.utc) - timedelta(hours=25))
    log = tmp_path / "daemon.log"
    procs = []
    try:
        for n in (1, 2):
            d = _daemon(root, log)
            procs.append(d)
            until(lambda n=n: len(os.listdir(attempts)) >= n, 120)
            os.killpg(d.pid, signal.SIGKILL)  # the daemon, its worker and the kernel: nobody settles the run
            d.wait(timeout=30)
            if n == 1:  # the tick keeps the parameters it fired with: its schedule may change or go meanwhile
                with Project(root) as p:
                    p.store.scheduling.delete_schedule("eu")
        d = _daemon(root, log)
        procs.append(d)

        def runs():
            with Project(root) as p:
                return sorted(p.store.list_runs(limit=10, asset="regional"), key=lambda r: r.attempt)

        until(lambda: [r for r in runs() if r.status == "SUCCESS"], 180)
    finally:
        for d in procs:
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
                assert d.wait(timeout=60) == 0
    done = runs()
    with Project(root) as p:
        [tick] = p.store.scheduling.ticks("eu")
        values = ValueStore(p.config.data_dir)
        value = values.load(values.latest_published("regional", tick.partition))
    key = tick.partition
    assert [(r.attempt, r.kind, r.status, r.partition_keys) for r in done] == [
        (1, "schedule", "FAILED", (key,)), (2, "schedule", "FAILED", (key,)), (3, "schedule", "SUCCESS", (key,))]
    assert sorted(os.listdir(attempts)) == [f"{n}-eu-{key}" for n in (1, 2, 3)]
    assert value == {"region": "eu", "day": key}
    assert {r.run_id for r in done} <= set(tick.run_ids)  # the retries are linked to their tick
    text = log.read_text()
    assert "died at attempt 1; started attempt 2 of 3" in text and "died at attempt 2; started attempt 3 of 3" in text
