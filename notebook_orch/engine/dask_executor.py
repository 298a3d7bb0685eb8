"""``dask``: each planned run is one task on a Dask distributed cluster (``--executor dask --address tcp://H:P``).

The worker runs ``executor.execute_run`` — the same run lifecycle as the local pool: it locks, heartbeats and
finalizes into the store named by the request, runs papermill there and writes the output notebook and values
under the request's ``project_root`` and ``data_dir``. Those are absolute paths of THIS machine, so every worker
must see the project folder, the data folder and the store at the same paths: a shared file system (NFS, a
mounted volume) or all workers on this host, and a store every worker can reach (PostgreSQL, or a SQLite file on
the shared path when all workers are on one host).

Traps the peers fell into, and what this module does about each:

- keys must be unique per run and attempt (concurrent runs collapsed into one task in dagster #21418): the key is
  ``nbo-<first run id>-a<attempt>-<n>``, ``n`` counting this executor's submissions of the request, and
  ``pure=False``;
- the store owns retries, not Dask (``retries=0``; ``execute_run`` retries per ``request.retries``);
- Dask resubmits a task whose worker died (and raises ``KilledWorker`` after ``allowed-failures`` deaths, which
  is no user error): a resubmitted task first asks the store whether one of the request's attempts already
  started, and if so refuses to run it again (``AttemptAlreadyStarted``); the executor reports it, like any
  ``KilledWorker``, as ``WorkerDied``. The ``RunHandle`` then settles the dead attempt in the store (FAILED,
  what it published withdrawn) and starts the next attempt — a new task, with the next attempt number in its
  key — on a worker that is alive: a worker's death is retried ``worker_death_retries`` times (1) even when the
  asset declares no ``--retries`` (it is no failure of the notebook), and beyond that against ``--retries``.
  Set the scheduler's ``distributed.scheduler.allowed-failures`` to 0 to skip the pointless resubmission;
- each future is released as soon as its outcome is in, so the scheduler forgets finished runs and a later
  worker death never re-runs a finished partition (prefect #15442).

``distributed`` is imported only when a ``DaskExecutor`` is made.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import Future
from typing import Any

from notebook_orch.engine.executor import RunOutcome, RunRequest, execute_run
from notebook_orch.engine.executors import WorkerDied
from notebook_orch.errors import NotebookOrchError


class AttemptAlreadyStarted(RuntimeError):
    """Raised on a Dask worker for a task Dask resubmitted after the worker that started it died."""


class DaskAddressMissing(NotebookOrchError):
    pass


class SharedPathMissing(NotebookOrchError):
    """A Dask worker cannot see a path the run needs at the path the submitting machine gave."""


def check_shared_paths(request: RunRequest) -> None:
    """Every path a run reads or writes is the submitting machine's: fail before anything is stored when this
    worker does not see them (not mounted, mounted elsewhere), naming the path and the host."""
    import socket
    from pathlib import Path

    from notebook_orch.engine.executor import data_dir_of

    needed = [("project folder", Path(request.project_root)), ("notebook", Path(request.project_root,
                                                                                  request.notebook))]
    # The submitting machine made the data folder (DaskExecutor.start): missing here means not shared.
    needed.append(("data folder", data_dir_of(request)))
    if request.store_url.startswith("sqlite:///"):
        db = Path(request.store_url[len("sqlite:///"):])
        needed.append(("SQLite store's folder", db.parent))
    missing = [f"{what} {path}" for what, path in needed if not path.exists()]
    if missing:
        raise SharedPathMissing(
            f"Dask worker on host {socket.gethostname()} cannot see the {'; the '.join(missing)}. Every worker must "
            "see the project folder, the data folder and a SQLite store at the same paths as the machine that "
            "submitted the run (a shared file system or volume mounted at the same path), and workers on other "
            "hosts need a store they can reach (store = \"postgresql+psycopg://...\"). Nothing was run or stored.")


def run_on_worker(request: RunRequest) -> RunOutcome:
    """The Dask task: ``execute_run`` unless an attempt of this request already started (a Dask resubmission)."""
    from notebook_orch.engine.executor import store_for

    check_shared_paths(request)
    store = store_for(request.store_url)
    started = [run_id for run_id in request.run_ids if store.get_run(run_id) is not None]
    if started:
        raise AttemptAlreadyStarted(
            f"run {started[-1]} of {request.notebook} [{request.partition}] already started on a worker that went "
            "away; the store settles it instead of running it twice")
    return execute_run(request)


class DaskExecutor:
    """Runs on the Dask cluster at ``address``; ``workers`` runs in flight at once (the handle's limit)."""

    name = "dask"
    # A worker's death (a lost host, an out-of-memory kill) is no failure of the notebook: the handle starts the run
    # again this many times on another worker, beyond the asset's own --retries.
    worker_death_retries = 1

    def __init__(self, *, address: str | None = None, workers: int = 2, timeout_s: float = 30.0, **_: Any) -> None:
        if not address:
            raise DaskAddressMissing(
                "The dask executor needs the scheduler's address: --address tcp://HOST:PORT, "
                "executor_options={'address': ...}, or dask_address in [tool.notebook_orch].")
        from distributed import Client

        self.address = address
        self._slots = max(1, int(workers))
        self._client = Client(address, timeout=timeout_s, set_as_default=False)
        self._lock = threading.Lock()
        # dask future -> our future; only runs in flight (released as soon as their outcome is in)
        self._in_flight: dict[Any, Future[RunOutcome]] = {}
        self._submissions: dict[str, itertools.count] = {}
        self._closed = False

    @property
    def capacity(self) -> int:
        return self._slots

    def start(self, request: RunRequest) -> Future[RunOutcome]:
        from pathlib import Path

        from notebook_orch.engine.executor import data_dir_of

        # Made here, on the submitting machine, so a worker can tell "not shared with me" from "not made yet".
        Path(data_dir_of(request)).mkdir(parents=True, exist_ok=True)
        future: Future[RunOutcome] = Future()
        future.set_running_or_notify_cancel()
        ident = request.run_ids[0] if request.run_ids else f"{request.notebook}-{request.partition}"
        with self._lock:
            if self._closed:
                raise RuntimeError("executor is shut down")
            n = next(self._submissions.setdefault(ident, itertools.count(1)))
            key = f"nbo-{ident}-a{request.first_attempt}-{n}"
            task = self._client.submit(run_on_worker, request, key=key, pure=False, retries=0)
            self._in_flight[task] = future
        task.add_done_callback(self._settle)
        return future

    def _settle(self, task: Any) -> None:
        """Called by the Dask client (its own thread) when ``task`` ends: hand over the outcome, release the task."""
        with self._lock:
            future = self._in_flight.pop(task, None)
        if future is None or future.done():
            return
        try:
            if task.status == "finished":
                future.set_result(task.result())
            elif task.status == "cancelled":
                future.set_exception(WorkerDied("the Dask task was canceled"))
            else:
                future.set_exception(_as_worker_death(task.exception()))
        except BaseException as exc:  # noqa: BLE001 - the client lost the scheduler, say: the run's fate is unknown
            if not future.done():
                future.set_exception(WorkerDied(f"the Dask task's result could not be read ({exc!r})"))
        finally:
            task.release()

    def cancel_all(self) -> None:
        self._cancel_tasks(None)

    def cancel(self, futures: Any) -> None:
        """Stop only the runs of ``futures`` (one plan on a shared executor): other plans' tasks go on."""
        self._cancel_tasks(set(futures))

    def _cancel_tasks(self, only: set[Any] | None) -> None:
        # Dask cannot stop a task that is running (it cannot kill a worker's thread): the handle settles those runs
        # as CANCELED in the store; a run that later tries to finalize finds itself ended and commits nothing.
        with self._lock:
            if only is None:
                in_flight, self._in_flight = self._in_flight, {}
            else:
                in_flight = {t: f for t, f in self._in_flight.items() if f in only}
                for task in in_flight:
                    del self._in_flight[task]
        if in_flight:
            try:
                self._client.cancel(list(in_flight), force=True)
            except Exception:  # noqa: BLE001 - the cluster may be gone already
                pass
        for task, future in in_flight.items():
            if not future.done():
                future.set_exception(WorkerDied("canceled"))
            task.release()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
        self._client.close()


def _as_worker_death(exc: BaseException | None) -> BaseException:
    """``KilledWorker`` and a refused resubmission are a worker's death, not the notebook's failure."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return WorkerDied(f"the Dask worker running the run died ({exc})")
    if isinstance(exc, AttemptAlreadyStarted) or type(exc).__name__ == "AttemptAlreadyStarted":
        return WorkerDied(str(exc))
    return exc if exc is not None else WorkerDied("the Dask task ended without a result")


__all__ = ["AttemptAlreadyStarted", "DaskAddressMissing", "DaskExecutor", "SharedPathMissing", "check_shared_paths",
           "run_on_worker"]
