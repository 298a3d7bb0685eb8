"""A real Dask cluster on 127.0.0.1 for each test: one ``dask scheduler`` and two ``dask worker`` processes
(``--nworkers 1 --nthreads 1 --no-nanny``, so each worker's pid is the process that runs notebooks and can be
killed), on random ports, torn down after the test (each process by its pid)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_OUR_ENV = ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT")


@dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OUR_ENV}
    # Workers import this checkout's notebook_orch (the venv's editable install may point elsewhere).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    logs = folder / "logs"
    logs.mkdir()
    dask_cli = [sys.executable, "-m", "dask"]
    started: list[subprocess.Popen] = []
    try:
        started.append(subprocess.Popen(
            [*dask_cli, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
             "--scheduler-file", str(scheduler_file)],
            env=_env(), cwd=folder, stdout=(logs / "scheduler.log").open("wb"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the dask scheduler did not start in 60 s"
            assert started[0].poll() is None, (logs / "scheduler.log").read_text()
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written once; give it a moment to be complete
        address = json.loads(scheduler_file.read_text())["address"]
        workers = []
        for i in range(2):
            worker = subprocess.Popen(
                [*dask_cli, "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                 "--no-nanny", "--no-dashboard", "--name", f"w{i}", "--local-directory", str(folder / f"w{i}")],
                env=_env(), cwd=folder, stdout=(logs / f"worker{i}.log").open("wb"), stderr=subprocess.STDOUT)
            started.append(worker)
            workers.append(worker)
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield Cluster(address, workers)
    finally:
        for process in reversed(started):
            _stop(process)
