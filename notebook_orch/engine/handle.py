"""``RunHandle``: a submitted plan running in the background — wait for it, cancel it, read its progress.

The handle's thread walks the plan in dependency order and hands each run to the executor when its prerequisites
succeeded and a slot is free; a run whose prerequisite did not succeed is SKIPPED (nothing downstream of a failure
runs). The handle picks every attempt's run id before it starts, so when a process goes away (a worker killed, the
plan canceled) it knows which records to settle through the run lifecycle — at once, not after the heartbeat
timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from notebook_orch.core.status import Outcome, RunStatus
from notebook_orch.engine.executor import RunOutcome, RunRequest
from notebook_orch.engine.executors import WorkerDied

if TYPE_CHECKING:
    from notebook_orch.core.planning import RunPlan
    from notebook_orch.engine.executors import Executor
    from notebook_orch.engine.runner import RunPlanReport

CANCELED_BY_REQUEST = ("Canceled: the materialization was canceled (Cancel, Ctrl-C, SIGTERM or the kernel shutting "
                       "down); nothing was published. Materialize it again.")
WORKER_DIED = ("The worker process running it died (it or its kernel was killed, e.g. out of memory); run it "
               "again.")
_MAX_RESUBMITS = 2


@dataclass(frozen=True)
class ProgressSnapshot:
    total: int
    done: int
    succeeded: int
    failed: int  # FAILED, LOCKED and SKIPPED: runs that did not produce what was asked
    canceled: int
    running: int
    elapsed_s: float
    eta_s: float | None
    failures: tuple[RunOutcome, ...]

    @property
    def finished(self) -> bool:
        return self.done >= self.total


class RunHandle:
    """A plan being executed by ``executor`` in a background thread. ``Project.submit`` returns one."""

    def __init__(self, plan: RunPlan, requests: list[RunRequest], executor: Executor, *,
                 own_executor: bool = True, store: Any = None) -> None:
        self.plan = plan
        self._requests = [_with_run_ids(r) for r in requests]
        self._executor = executor
        self._own_executor = own_executor
        self._store = store
        self._outcomes: dict[int, RunOutcome] = {}
        self._deaths: dict[int, int] = {}  # run index -> how many of its attempts a worker's death ended
        self._running: dict[Future, int] = {}
        self._listeners: list[Callable[[RunOutcome], None]] = []
        self._finish_listeners: list[Callable[[RunPlanReport], None]] = []
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._report: RunPlanReport | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drive, name="nbo-run-handle", daemon=True)
        self._thread.start()

    # -- what callers use ---------------------------------------------------------------------------------------
    @property
    def run_ids(self) -> tuple[str, ...]:
        """Every attempt id this handle may use, in plan order (a run's record exists once it started)."""
        return tuple(i for r in self._requests for i in r.run_ids)

    def done(self) -> bool:
        return self._done.is_set()

    def waiting(self) -> int:
        """How many of this handle's runs wait for a concurrency-pool slot now (WAITING in the store). Only runs in
        flight that take a pool slot are looked up (at most the executor's capacity), so a project without pools
        costs no read."""
        with self._lock:
            in_flight = sorted(self._running.values())
        count = 0
        for req in (self._requests[i] for i in in_flight):
            if not req.pools:
                continue
            store = self._store_for(req)
            count += sum(1 for run_id in req.run_ids
                         if (run := store.get_run(run_id)) is not None and run.status == "WAITING")
        return count

    def wait(self, timeout: float | None = None) -> RunPlanReport:
        """Block until every run ended; returns the report. ``TimeoutError`` if ``timeout`` passes first.
        Ctrl-C while waiting cancels the plan and raises ``PlanInterrupted`` carrying the report."""
        from notebook_orch.engine.runner import PlanInterrupted

        try:
            finished = self._done.wait(timeout) if timeout is not None else _wait_interruptibly(self._done)
        except KeyboardInterrupt:
            self.cancel()
            self._done.wait()
            raise PlanInterrupted(self.report()) from None
        if not finished:
            raise TimeoutError(f"the plan of {len(self.plan.runs)} run(s) is still running after {timeout:g} s")
        return self.report()

    def report(self) -> RunPlanReport:
        if self._error is not None:
            raise self._error
        if self._report is None:
            raise RuntimeError("the plan is still running; wait() for it")
        return self._report

    def cancel(self) -> None:
        """Stop now: runs in flight are killed and recorded CANCELED (what they published is withdrawn); runs not
        started are SKIPPED. Returns at once; ``wait()`` for the report."""
        self._cancel.set()
        self._stop_runs()

    def settle_abandoned(self) -> int:
        """After ``cancel()``: record every attempt of this handle still RUNNING as CANCELED now, in this thread
        (a kernel shutting down cannot wait for the handle's thread). Returns how many were settled."""
        from notebook_orch.engine.executor import data_dir_of
        from notebook_orch.engine.lifecycle import settle

        settled = 0
        for req in self._requests:
            store = self._store_for(req)
            before = [r for r in (store.get_run(i) for i in req.run_ids)
                      if r is not None and r.status in ("RUNNING", "WAITING")]
            if before:
                settle(store, data_dir_of(req), req.run_ids, project_root=req.project_root, notebook=req.notebook,
                       error=CANCELED_BY_REQUEST, status=Outcome.CANCELED)
                settled += len(before)
        return settled

    def on_outcome(self, callback: Callable[[RunOutcome], None]) -> None:
        """Call ``callback`` (from the handle's thread) with each run's outcome as it ends; already ended ones first."""
        with self._lock:
            self._listeners.append(callback)
            past = list(self._outcomes.values())
        for outcome in past:
            callback(outcome)

    def on_finish(self, callback: Callable[[RunPlanReport], None]) -> None:
        with self._lock:
            if self._report is None:
                self._finish_listeners.append(callback)
                return
        callback(self._report)

    def progress(self) -> ProgressSnapshot:
        with self._lock:
            outcomes = list(self._outcomes.values())
            running = len(self._running)
        total = len(self.plan.runs)
        elapsed = (self._ended or time.perf_counter()) - self._started
        done = len(outcomes)
        eta = None if done == 0 or done >= total else elapsed / done * (total - done)
        failures = tuple(o for o in outcomes if o.status not in (Outcome.SUCCESS, Outcome.CANCELED))
        return ProgressSnapshot(
            total=total, done=done, succeeded=sum(o.status == Outcome.SUCCESS for o in outcomes),
            failed=len(failures), canceled=sum(o.status == Outcome.CANCELED for o in outcomes), running=running,
            elapsed_s=elapsed, eta_s=eta, failures=failures)

    # -- the drive loop --------------------------------------------------------------------------------------------
    def _drive(self) -> None:
        from notebook_orch.engine.runner import RunPlanReport

        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - surfaced by wait()/report()
            self._error = exc
            self._cancel.set()
            self._stop_runs()
            self._settle_all_in_flight()
        finally:
            if self._own_executor:
                try:
                    self._executor.shutdown()
                except Exception:  # noqa: BLE001
                    pass
            self._ended = time.perf_counter()
            if self._error is None:
                took = self._ended - self._started if self.plan.runs else 0.0
                report = RunPlanReport(tuple(self._outcomes[i] for i in range(len(self.plan.runs))), took,
                                       tuple(self.plan.skipped), tuple(getattr(self.plan, "left_out", ())))
                with self._lock:
                    self._report = report
                    listeners = list(self._finish_listeners)
                for callback in listeners:
                    _safely(callback, report)
            self._done.set()

    def _loop(self) -> None:
        runs = self.plan.runs
        pending = set(range(len(runs)))
        resubmitted: dict[int, int] = {}
        while pending or self._running:
            if self._cancel.is_set():
                self._cancel_everything(pending)
                return
            for i in sorted(pending):
                after = runs[i].after
                blocked = next((a for a in after
                                if a in self._outcomes and self._outcomes[a].status != Outcome.SUCCESS), None)
                if blocked is not None:
                    first = runs[blocked]
                    pending.discard(i)
                    self._record(i, _outcome(runs[i], Outcome.SKIPPED,
                                             f"not started: prerequisite run {first.notebook} [{first.partition}] "
                                             "did not succeed"))
                elif all(a in self._outcomes for a in after) and len(self._running) < self._executor.capacity:
                    future = self._executor.start(self._requests[i])
                    with self._lock:
                        self._running[future] = i
                    pending.discard(i)
            if not self._running:
                continue
            finished, _ = wait(list(self._running), timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                with self._lock:
                    i = self._running.pop(future)
                outcome = self._outcome_of(future, i)
                if outcome is not None and self._retry_after_death(i, outcome):
                    pending.add(i)  # its worker died mid-attempt: the next attempt per the retry policy
                    continue
                if outcome is None and resubmitted.get(i, 0) < _MAX_RESUBMITS and not self._cancel.is_set():
                    resubmitted[i] = resubmitted.get(i, 0) + 1
                    pending.add(i)  # its process went away before the run started: start it again
                    continue
                if outcome is None and self._cancel.is_set():
                    outcome = _outcome(runs[i], Outcome.SKIPPED, "not started: the materialization was canceled")
                self._record(i, outcome or _outcome(runs[i], Outcome.FAILED, "worker failed: its process went away "
                                                                       "again and again before the run started"))

    def _outcome_of(self, future: Future, i: int) -> RunOutcome | None:
        exc = future.exception()
        if exc is None:
            return future.result()
        if isinstance(exc, WorkerDied):
            canceled = self._cancel.is_set()
            return self._settle(i, CANCELED_BY_REQUEST if canceled else WORKER_DIED,
                                Outcome.CANCELED if canceled else Outcome.FAILED)
        return _outcome(self.plan.runs[i], Outcome.FAILED, f"worker failed: {type(exc).__name__}: {exc}")

    def _retry_after_death(self, i: int, outcome: RunOutcome) -> bool:
        """A worker that dies takes the retry loop inside it along: when the attempt it ran is settled FAILED and
        the run has attempts left, start it again from the next attempt (the request's remaining run ids).

        An executor whose workers die as a matter of course (``worker_death_retries``: Dask, whose hosts come and
        go) gets that many extra attempts per run for deaths alone: the dead attempt stays recorded FAILED and the
        next one, with the next attempt number, runs on a worker that is alive."""
        from notebook_orch.store.ids import new_run_id

        req = self._requests[i]
        if outcome.status != Outcome.FAILED or outcome.error != WORKER_DIED or self._cancel.is_set():
            return False
        deaths = self._deaths[i] = self._deaths.get(i, 0) + 1
        # An executor whose workers die as a matter of course (Dask: hosts come and go) forgives that many deaths
        # per run: such a death does not use up one of the asset's --retries.
        forgiven = deaths <= int(getattr(self._executor, "worker_death_retries", 0) or 0)
        done = outcome.attempts  # attempts of this request that started (settle counted them from req.run_ids)
        retries = req.retries - done + (1 if forgiven else 0)
        if retries < 0 or done > len(req.run_ids):
            return False
        # The rest of the same request: its remaining run ids (one more drawn now for a forgiven death: settling
        # needs every attempt's id up front) and retries, attempt numbers continuing.
        run_ids = req.run_ids[done:]
        run_ids += tuple(new_run_id() for _ in range(retries + 1 - len(run_ids)))
        self._requests[i] = replace(req, run_ids=run_ids, retries=retries, first_attempt=req.first_attempt + done)
        return True  # no backoff: the drive loop must not sleep, and a new worker starts a new kernel anyway

    def _settle(self, i: int, error: str, status: str) -> RunOutcome | None:
        """The outcome of run ``i`` whose process went away: its last started attempt is settled in the store.
        None when no attempt ever started."""
        from notebook_orch.engine.executor import data_dir_of
        from notebook_orch.engine.lifecycle import settle

        req = self._requests[i]
        store = self._store_for(req)
        started = settle(store, data_dir_of(req), req.run_ids, project_root=req.project_root,
                         notebook=req.notebook, error=error, status=status)
        if not started:
            return None
        record = started[-1]
        final = {RunStatus.SUCCESS: Outcome.SUCCESS, RunStatus.CANCELED: Outcome.CANCELED}.get(
            record.status, Outcome.FAILED)
        return RunOutcome(req.notebook, req.partition, req.assets, final, record.run_id, len(started),
                          error=None if final == Outcome.SUCCESS else record.error, error_cell=record.error_cell,
                          output_path=record.output_path, run_ids=tuple(r.run_id for r in started))

    def _stop_runs(self) -> None:
        """Stop this plan's runs in flight. An executor this handle owns is stopped whole; a shared one (the
        scheduler daemon's, running several plans) only for this plan's runs: one plan's failure or cancel must not
        kill the runs of the others."""
        try:
            if self._own_executor:
                self._executor.cancel_all()
                return
            with self._lock:
                mine = list(self._running)
            cancel = getattr(self._executor, "cancel", None)
            if cancel is not None:
                cancel(mine)
            else:  # an executor without per-run cancel: withdraw what has not started, let the rest finish
                for future in mine:
                    future.cancel()
        except Exception:  # noqa: BLE001 - the drive loop settles whatever is left
            pass

    def _cancel_everything(self, pending: set[int]) -> None:
        self._stop_runs()
        if self._running:
            wait(list(self._running), timeout=30)
        self._settle_all_in_flight()
        for i in sorted(pending):
            self._record(i, _outcome(self.plan.runs[i], Outcome.SKIPPED,
                                     "not started: the materialization was canceled"))
        pending.clear()

    def _settle_all_in_flight(self) -> None:
        with self._lock:
            in_flight = list(self._running.items())
            self._running.clear()
        for future, i in in_flight:
            outcome = None
            if future.done() and not future.cancelled() and future.exception() is None:
                outcome = future.result()  # it finished just before the cancel
            if outcome is None:
                outcome = self._settle(i, CANCELED_BY_REQUEST, Outcome.CANCELED) or _outcome(
                    self.plan.runs[i], Outcome.SKIPPED, "not started: the materialization was canceled")
            self._record(i, outcome)

    def _record(self, i: int, outcome: RunOutcome) -> None:
        with self._lock:
            if i in self._outcomes:
                return
            self._outcomes[i] = outcome
            listeners = list(self._listeners)
        for callback in listeners:
            _safely(callback, outcome)

    def _store_for(self, req: RunRequest) -> Any:
        if self._store is not None:
            return self._store
        from notebook_orch.engine.executor import store_for

        return store_for(req.store_url)


def _wait_interruptibly(event: threading.Event) -> bool:
    while not event.wait(0.2):  # short waits keep Ctrl-C responsive in the main thread
        pass
    return True


def _safely(callback: Callable[[Any], None], value: Any) -> None:
    try:
        callback(value)
    except Exception:  # noqa: BLE001 - a broken progress display must not stop the runs
        import logging

        logging.getLogger("notebook_orch").exception("a run handle listener failed")


def _outcome(run: Any, status: str, error: str) -> RunOutcome:
    return RunOutcome(run.notebook, run.partition, tuple(run.assets), status, error=error)


def _with_run_ids(req: RunRequest) -> RunRequest:
    from notebook_orch.store.ids import new_run_id

    if req.run_ids:
        return req
    return replace(req, run_ids=tuple(new_run_id() for _ in range(req.retries + 1)))


__all__ = ["CANCELED_BY_REQUEST", "ProgressSnapshot", "RunHandle", "WORKER_DIED"]
