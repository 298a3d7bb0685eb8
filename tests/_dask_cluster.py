"""A real Dask cluster on 127.0.0.1 for tests: one ``dask scheduler`` and ``dask worker`` processes
(``--nworkers 1 --nthreads 1 --no-nanny``: each worker's pid is the process that runs notebooks and can be killed),
on random ports, logs in ``folder/logs``, stopped process by process (by pid). Importable by its name from every
folder under ``tests/`` (see ``_shared_helpers``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_OUR_ENV = ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT")
_DASK = [sys.executable, "-m", "dask"]


def cluster_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OUR_ENV}
    # Workers import this checkout's notebook_orch (the venv's editable install may point elsewhere).
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**env, **extra}


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class LocalDaskCluster:
    """``address``; ``workers``: the worker processes started so far (killed ones included), in order."""

    def __init__(self, folder: Path, *, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = env or cluster_env()
        self.workers: list[subprocess.Popen] = []
        self._started: list[subprocess.Popen] = []
        scheduler_file = folder / "scheduler.json"
        try:
            scheduler = self._popen([*_DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                     "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)],
                                    "scheduler.log")
            deadline = time.monotonic() + 60
            while not scheduler_file.exists():
                assert time.monotonic() < deadline, "the dask scheduler did not start in 60 s"
                assert scheduler.poll() is None, (self.logs / "scheduler.log").read_text()
                time.sleep(0.2)
            time.sleep(0.2)  # the file is written once; give it a moment to be complete
            self.address = json.loads(scheduler_file.read_text())["address"]
            for _ in range(workers):
                self.add_worker(wait=False)
            self.wait_for_workers(workers)
        except BaseException:
            self.stop()
            raise

    def _popen(self, args: list[str], log: str) -> subprocess.Popen:
        process = subprocess.Popen(args, env=self.env, cwd=self.folder, stdout=(self.logs / log).open("wb"),
                                   stderr=subprocess.STDOUT)
        self._started.append(process)
        return process

    def add_worker(self, *, wait: bool = True) -> subprocess.Popen:
        i = len(self.workers)
        worker = self._popen([*_DASK, "worker", self.address, "--host", "127.0.0.1", "--nworkers", "1",
                              "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}",
                              "--local-directory", str(self.folder / f"w{i}")], f"worker{i}.log")
        self.workers.append(worker)
        if wait:
            self.wait_for_workers(sum(1 for w in self.workers if w.poll() is None))
        return worker

    def wait_for_workers(self, n: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(self.address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        for process in reversed(self._started):
            stop(process)
