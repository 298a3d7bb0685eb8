"""Executors: where a planned run executes. One small protocol, a registry object, two built-ins.

``local`` runs each run in a worker process of its own pool (warm or fresh kernels, see ``warm_engine``);
``inprocess`` runs them on threads of this process (papermill still starts the kernels). More come from the
entry-point group ``notebook_orch.executors`` (a factory taking keyword options), loaded on first use.

Every executor runs ``executor.execute_run`` — the one run lifecycle — somewhere; the ``RunHandle`` decides what to
start when, and settles the records of runs whose process went away. The local pool is ours rather than
``ProcessPoolExecutor``: one worker per run in flight, so a worker that dies takes only its own run down, and
cancelling kills exactly our processes.
"""

from __future__ import annotations

import difflib
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

from notebook_orch.engine.executor import WARM_MODE, RunOutcome, RunRequest, die_with_parent, execute_run
from notebook_orch.errors import NotebookOrchError

ENTRY_POINT_GROUP = "notebook_orch.executors"


class WorkerDied(RuntimeError):
    """The process running a run went away without reporting an outcome (killed, out of memory, canceled)."""


@runtime_checkable
class Executor(Protocol):
    """Runs ``RunRequest``s. ``capacity`` runs at once; ``start`` never blocks."""

    name: str

    @property
    def capacity(self) -> int: ...

    def start(self, request: RunRequest) -> Future[RunOutcome]: ...

    def cancel_all(self) -> None:
        """Stop every run in flight now; their futures end with ``WorkerDied``.

        An executor shared by several plans (the scheduler daemon's) may also offer ``cancel(futures)``: stop only
        those runs. ``RunHandle`` uses it when the executor is not its own; without it, a plan stopping on a
        shared executor withdraws its runs that have not started and lets the started ones finish."""

    def shutdown(self) -> None: ...


class UnknownExecutor(NotebookOrchError):
    pass


class ExecutorRegistry:
    """Names -> executor factories. Build one per test; ``default_registry()`` serves the faces."""

    def __init__(self, *, entry_points: bool = True) -> None:
        self._factories: dict[str, Callable[..., Executor]] = {}
        self._entry_points_loaded = not entry_points

    def register(self, name: str, factory: Callable[..., Executor]) -> None:
        self._factories[name] = factory

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._factories)

    def create(self, name: str, **options: Any) -> Executor:
        self._load_entry_points()
        factory = self._factories.get(name)
        if factory is None:
            near = difflib.get_close_matches(name, self._factories, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise UnknownExecutor(
                f"No executor named {name!r}; available: {', '.join(sorted(self._factories))}.{hint} "
                f"Executors come with notebook_orch or from packages declaring the entry point group "
                f"{ENTRY_POINT_GROUP!r}.")
        return factory(**options)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in self._factories:
                self._factories[ep.name] = _lazy(ep)


def _lazy(ep: Any) -> Callable[..., Executor]:
    def factory(**options: Any) -> Executor:
        return ep.load()(**options)

    return factory


_DEFAULT: ExecutorRegistry | None = None


def default_registry() -> ExecutorRegistry:
    global _DEFAULT
    if _DEFAULT is None:
        registry = ExecutorRegistry()
        registry.register("local", LocalExecutor)
        registry.register("inprocess", InProcessExecutor)
        registry.register("dask", _dask_executor)
        _DEFAULT = registry
    return _DEFAULT


def _dask_executor(**options: Any) -> Executor:
    # distributed is heavy: imported when a dask executor is made, not with notebook_orch
    from notebook_orch.engine.dask_executor import DaskExecutor

    return DaskExecutor(**options)


# -- local: a pool of worker processes, one run each at a time ----------------------------------------------------
def _worker_main(conn: Any) -> None:
    import signal

    die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what is canceled and kills workers
    # itself; a worker that died of the signal on its own would report its run as failed instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        if request.mode == WARM_MODE:
            from notebook_orch.engine.warm_engine import launch_early

            launch_early()  # the kernel boots while this worker imports and starts the run (once per worker)
        try:
            conn.send(("ok", execute_run(request)))
        except BaseException as exc:  # noqa: BLE001 - report, the pool decides
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True, name="nbo-worker")
        self.process.start()
        child.close()
        self.future: Future[RunOutcome] | None = None


class LocalExecutor:
    """``workers`` worker processes (spawned: no forked zmq or SQLite state), each running one run at a time."""

    name = "local"

    def __init__(self, *, workers: int = 2, **_: Any) -> None:
        self._slots = max(1, int(workers))
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._queue: list[tuple[RunRequest, Future[RunOutcome]]] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._closed = False
        self._thread = threading.Thread(target=self._dispatch, name="nbo-local-executor", daemon=True)
        self._thread.start()

    @property
    def capacity(self) -> int:
        return self._slots

    def start(self, request: RunRequest) -> Future[RunOutcome]:
        future: Future[RunOutcome] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("executor is shut down")
            self._queue.append((request, future))
        self._wake_w.send(None)
        return future

    def cancel_all(self) -> None:
        with self._lock:
            queued, self._queue = self._queue, []
            busy = [w for w in self._workers if w.future is not None]
        for _, future in queued:
            future.set_exception(WorkerDied("canceled before it started"))
        for worker in busy:
            worker.process.kill()  # its kernel follows: ipykernel exits when its parent is gone
        for worker in busy:
            worker.process.join(timeout=10)
        self._wake_w.send(None)

    def cancel(self, futures: Any) -> None:
        """Stop only the runs of ``futures`` (one plan on a shared executor): other plans' runs go on."""
        only = set(futures)
        with self._lock:
            queued = [(r, f) for r, f in self._queue if f in only]
            self._queue = [(r, f) for r, f in self._queue if f not in only]
            busy = [w for w in self._workers if w.future is not None and w.future in only]
        for _, future in queued:
            future.set_exception(WorkerDied("canceled before it started"))
        for worker in busy:
            worker.process.kill()
        for worker in busy:
            worker.process.join(timeout=10)
        self._wake_w.send(None)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
        self._wake_w.send(None)
        self._thread.join(timeout=30)

    # The dispatcher thread: hands queued requests to idle workers, collects outcomes, notices deaths.
    def _dispatch(self) -> None:
        from multiprocessing.connection import wait

        while True:
            with self._lock:
                closing = self._closed and not self._queue and all(w.future is None for w in self._workers)
                if not closing:
                    self._assign()
            if closing:
                break
            waitables: list[Any] = [self._wake_r]
            for worker in self._workers:
                if worker.future is not None:
                    waitables += [worker.conn, worker.process.sentinel]
            for ready in wait(waitables, timeout=1.0):
                if ready is self._wake_r:
                    while self._wake_r.poll():
                        self._wake_r.recv()
            with self._lock:
                self._collect()
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self._workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()

    def _assign(self) -> None:
        self._workers = [w for w in self._workers if w.process.is_alive() or w.future is not None]
        while self._queue:
            idle = next((w for w in self._workers if w.future is None), None)
            if idle is None:
                if len(self._workers) >= self._slots:
                    return
                idle = _Worker(self._ctx)
                self._workers.append(idle)
            request, future = self._queue.pop(0)
            if not future.set_running_or_notify_cancel():
                continue
            idle.future = future
            try:
                idle.conn.send(request)
            except OSError:
                idle.future = None
                future.set_exception(WorkerDied("the worker process was gone before the run could be sent"))

    def _collect(self) -> None:
        for worker in self._workers:
            future = worker.future
            if future is None:
                continue
            message = None
            try:
                if worker.conn.poll():
                    message = worker.conn.recv()
            except (EOFError, OSError):
                message = None
            if message is not None:
                worker.future = None
                kind, value = message
                if kind == "ok":
                    future.set_result(value)
                else:
                    future.set_exception(RuntimeError(value))
            elif not worker.process.is_alive():
                worker.future = None
                future.set_exception(WorkerDied(f"worker process exited with code {worker.process.exitcode}"))


# -- inprocess: threads of this process ---------------------------------------------------------------------------
class InProcessExecutor:
    """Runs on threads of this process: no worker processes to spawn (tests, small interactive jobs)."""

    name = "inprocess"

    def __init__(self, *, workers: int = 1, **_: Any) -> None:
        self._slots = max(1, int(workers))
        self._pool = ThreadPoolExecutor(max_workers=self._slots, thread_name_prefix="nbo-inprocess")

    @property
    def capacity(self) -> int:
        return self._slots

    def start(self, request: RunRequest) -> Future[RunOutcome]:
        return self._pool.submit(execute_run, request)

    def cancel_all(self) -> None:
        # A thread cannot be killed: runs not started are dropped, a run in flight finishes and is then settled.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def cancel(self, futures: Any) -> None:
        for future in futures:  # those not started yet; a thread in flight finishes and is then settled
            future.cancel()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


__all__ = ["ENTRY_POINT_GROUP", "Executor", "ExecutorRegistry", "InProcessExecutor", "LocalExecutor",
           "UnknownExecutor", "WorkerDied", "default_registry"]
