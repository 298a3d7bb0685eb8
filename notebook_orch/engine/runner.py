"""Run a ``RunPlan``: worker processes, dependency order, parallel where independent, progress as runs finish.

The runner only schedules; each worker executes whole runs (``executor.execute_run``). A run whose prerequisite
failed is not started (SKIPPED) — nothing downstream of a failure runs. No more runs are in flight than workers,
and the runner picks each attempt's run id, so it always knows which runs a failure touched:

* a worker that dies (its kernel or the worker killed, e.g. out of memory) takes the pool's other workers with it:
  the runs that had started are FAILED at once (not after the heartbeat timeout), the rest go to a new pool;
* an interrupt (Ctrl-C; ``nbo`` maps SIGTERM to it) kills the workers, marks their runs CANCELED and raises
  ``PlanInterrupted`` (a ``KeyboardInterrupt``) carrying the report.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from notebook_orch.engine.executor import WARM_MODE, RunOutcome, RunRequest, die_with_parent, execute_run

if TYPE_CHECKING:
    from notebook_orch.core.planning import RunPlan
    from notebook_orch.project import Project


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, outcome: RunOutcome) -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True)
class RunPlanReport:
    outcomes: tuple[RunOutcome, ...]
    duration_s: float
    skipped: tuple[tuple[str, str, str], ...] = ()  # the plan's (asset, partition, "fresh" | "running")

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def running_elsewhere(self) -> tuple[tuple[str, str], ...]:
        """Requested (asset, partition) pairs not run because another run held them when the plan was made."""
        return tuple((a, p) for a, p, why in self.skipped if why == "running")

    @property
    def ok(self) -> bool:
        """Every run succeeded and nothing asked for was left to another run (that is the LOCKED case, found early)."""
        return all(o.status == "SUCCESS" for o in self.outcomes) and not self.running_elsewhere

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s.lower()}" for s in ("SUCCESS", "FAILED", "CANCELED", "LOCKED", "SKIPPED")
                 if self.count(s)]
        if self.running_elsewhere:
            parts.append(f"{len(self.running_elsewhere)} partition(s) not run: another run is materializing them")
        return f"{len(self.outcomes)} run(s) in {self.duration_s:.1f} s: " + (", ".join(parts) or "nothing to do")


def build_requests(project: Project, plan: RunPlan, *, kind: str, mode: str = WARM_MODE,
                   retries: int | None = None, execution_timeout_s: float | None = None) -> list[RunRequest]:
    from notebook_orch.core.partitions import partition_date

    graph = project.graph
    cfg = project.config
    requests = []
    for run in plan.runs:
        specs = [graph.spec(a) for a in run.assets]
        date = partition_date(specs[0].partitions, run.partition)
        requests.append(RunRequest(
            project_root=str(cfg.root),
            store_url=cfg.store_url,
            notebook=run.notebook,
            partition=run.partition,
            assets=tuple(run.assets),
            code_versions={s.name: s.code_version for s in specs},
            kind=kind,
            mode=mode,
            retries=max(s.retries for s in specs) if retries is None else retries,
            heartbeat_s=max(0.5, min(15.0, cfg.heartbeat_timeout_s / 4)),
            execution_timeout_s=execution_timeout_s,
            partition_date=date.isoformat() if date else None,
        ))
    return requests


def run_plan(plan: RunPlan, requests: list[RunRequest], *, workers: int = 2,
             progress: Progress | None = None, executor: Callable[[RunRequest], RunOutcome] = execute_run
             ) -> RunPlanReport:
    import time

    started = time.perf_counter()
    outcomes: dict[int, RunOutcome] = {}
    if progress:
        progress.start(len(plan.runs))
    if not plan.runs:
        if progress:
            progress.finish()
        return RunPlanReport((), 0.0, tuple(plan.skipped))
    ctx = multiprocessing.get_context("spawn")  # no forked zmq/SQLite state in workers
    slots = max(1, workers)
    pending = set(range(len(plan.runs)))
    running: dict[Future, int] = {}
    sent: dict[int, RunRequest] = {}
    resubmitted: dict[int, int] = {}
    pool = _new_pool(slots, ctx)
    interrupted = False
    try:
        while pending or running:
            for i in sorted(pending):
                after = plan.runs[i].after
                if any(a in outcomes and outcomes[a].status != "SUCCESS" for a in after):
                    run = plan.runs[i]
                    blocked = next(a for a in after if a in outcomes and outcomes[a].status != "SUCCESS")
                    first = plan.runs[blocked]
                    outcomes[i] = RunOutcome(run.notebook, run.partition, tuple(run.assets), "SKIPPED",
                                             error=f"not started: prerequisite run {first.notebook} "
                                                   f"[{first.partition}] did not succeed")
                    pending.discard(i)
                    if progress:
                        progress.advance(outcomes[i])
                elif all(a in outcomes for a in after) and len(running) < slots:
                    # No more in flight than workers: whatever was submitted is running, so when a worker dies
                    # the runs it took down are the ones with a record in the store.
                    sent[i] = sent.get(i) or _with_run_ids(requests[i])
                    running[pool.submit(executor, sent[i])] = i
                    pending.discard(i)
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                # A worker died and the pool stopped every other worker with it: settle all runs in flight, then
                # carry on with a new pool.
                done, _ = wait(running)
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _new_pool(slots, ctx)
            for fut in done:
                i = running.pop(fut)
                outcome = _outcome_of(fut, plan.runs[i], sent[i])
                if outcome is None and resubmitted.get(i, 0) < _MAX_RESUBMITS:
                    resubmitted[i] = resubmitted.get(i, 0) + 1
                    pending.add(i)  # it never started: run it on the new pool
                    continue
                outcomes[i] = outcome or _failed(plan.runs[i], "worker failed: the worker pool broke again and "
                                                                "again before this run could start")
                if progress:
                    progress.advance(outcomes[i])
    except KeyboardInterrupt:
        interrupted = True
        _kill_workers(pool)
        _cancel_all(plan, running, sent, outcomes)
        report = RunPlanReport(tuple(outcomes[i] for i in range(len(plan.runs))), time.perf_counter() - started,
                               tuple(plan.skipped))
        raise PlanInterrupted(report) from None
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        if progress:
            progress.finish()
    return RunPlanReport(tuple(outcomes[i] for i in range(len(plan.runs))), time.perf_counter() - started,
                         tuple(plan.skipped))


class PlanInterrupted(KeyboardInterrupt):
    """``run_plan`` was interrupted; the runs in flight were CANCELED. ``report`` says what happened to each run
    (a ``KeyboardInterrupt``, so code that handles Ctrl-C keeps handling it)."""

    def __init__(self, report: RunPlanReport) -> None:
        super().__init__(f"interrupted: {report.summary()}")
        self.report = report


CANCELED_BY_INTERRUPT = ("Canceled: the command running it was interrupted (Ctrl-C or SIGINT/SIGTERM); nothing was "
                         "published. Materialize it again.")


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL this pool's worker processes (their kernels follow: ipykernel exits when its parent is gone)."""
    # ProcessPoolExecutor has no public way to stop running workers before Python 3.14 (kill_workers).
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError, AttributeError):  # already gone
            pass
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.join(timeout=5)
        except (OSError, ValueError, AttributeError, AssertionError):
            pass


def _cancel_all(plan: RunPlan, running: dict[Future, int], sent: dict[int, RunRequest],
                outcomes: dict[int, RunOutcome]) -> None:
    """Ctrl-C (or SIGINT/SIGTERM from a supervisor): the runs in flight become CANCELED now, rather than RUNNING
    until the heartbeat timeout, so a rerun can take their partitions at once; the rest were not started."""
    for fut, i in running.items():
        outcomes[i] = _cancel(plan.runs[i], sent[i], fut)
    for i, run in enumerate(plan.runs):
        if i not in outcomes:  # pending, or caught between two steps of the loop
            outcomes[i] = _cancel(run, sent[i], None) if i in sent else RunOutcome(
                run.notebook, run.partition, tuple(run.assets), "SKIPPED",
                error="not started: the command was interrupted")


def _cancel(run: Any, req: RunRequest, fut: Future | None) -> RunOutcome:
    """The outcome of a run in flight when the runner was interrupted; a RUNNING record is marked CANCELED."""
    if fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None:
        return fut.result()  # it finished just before the interrupt
    from pathlib import Path

    from notebook_orch.engine.executor import _store, _unpublish
    from notebook_orch.engine.manifest import read_manifest
    from notebook_orch.errors import StoreError

    store = _store(req.store_url)
    records = [r for r in (store.get_run(run_id) for run_id in req.run_ids) if r is not None]
    if not records:
        return RunOutcome(run.notebook, run.partition, tuple(run.assets), "SKIPPED",
                          error="not started: the command was interrupted")
    last = records[-1]
    if last.status == "RUNNING":
        run_dir = Path(req.project_root, ".notebook_orch", "runs", last.run_id)
        mats, _ = read_manifest(run_dir / "manifest.jsonl")
        _unpublish(mats, last.run_id)
        output = run_dir / Path(req.notebook).name
        try:
            last = store.finalize_failure(last.run_id, error=CANCELED_BY_INTERRUPT, status="CANCELED",
                                          output_path=str(output) if output.exists() else None)
        except StoreError:  # finalized meanwhile: report it as stored
            last = store.get_run(last.run_id) or last
    status = {"SUCCESS": "SUCCESS", "CANCELED": "CANCELED"}.get(last.status, "FAILED")
    return RunOutcome(run.notebook, run.partition, tuple(run.assets), status, last.run_id, len(records),
                      error=last.error, error_cell=last.error_cell, output_path=last.output_path,
                      run_ids=tuple(r.run_id for r in records))


_MAX_RESUBMITS = 2
WORKER_DIED = ("The worker process running it died (a worker or its kernel was killed, e.g. out of memory; when one "
               "worker dies, every run in flight is stopped with it); run it again.")


def _new_pool(slots: int, ctx: Any) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=slots, mp_context=ctx, initializer=die_with_parent)


def _with_run_ids(req: RunRequest) -> RunRequest:
    from dataclasses import replace

    from notebook_orch.store.ids import new_run_id

    if req.run_ids:
        return req
    return replace(req, run_ids=tuple(new_run_id() for _ in range(req.retries + 1)))


def _failed(run: Any, error: str) -> RunOutcome:
    return RunOutcome(run.notebook, run.partition, tuple(run.assets), "FAILED", error=error)


def _outcome_of(fut: Future, run: Any, req: RunRequest) -> RunOutcome | None:
    """The outcome of a finished future; None when its worker died before the run started."""
    exc = fut.exception()
    if exc is None:
        return fut.result()
    if not isinstance(exc, BrokenProcessPool):
        return _failed(run, f"worker failed: {type(exc).__name__}: {exc}")
    return _settle_dead_worker_run(run, req)


def _settle_dead_worker_run(run: Any, req: RunRequest) -> RunOutcome | None:
    """After its worker died: fail the run it left RUNNING (rather than wait for the heartbeat timeout), withdraw
    what its kernel published, and report it; None if no attempt of it ever started."""
    from pathlib import Path

    from notebook_orch.engine.executor import _store, _unpublish
    from notebook_orch.engine.manifest import read_manifest
    from notebook_orch.errors import StoreError

    store = _store(req.store_url)
    records = [r for r in (store.get_run(run_id) for run_id in req.run_ids) if r is not None]
    if not records:
        return None
    last = records[-1]
    run_dir = Path(req.project_root, ".notebook_orch", "runs", last.run_id)
    output = run_dir / Path(req.notebook).name
    if last.status == "RUNNING":
        mats, _ = read_manifest(run_dir / "manifest.jsonl")
        _unpublish(mats, last.run_id)
        try:
            last = store.finalize_failure(last.run_id, error=WORKER_DIED,
                                          output_path=str(output) if output.exists() else None)
        except StoreError:  # finalized meanwhile (reaped): report it as stored
            last = store.get_run(last.run_id) or last
    ok = last.status == "SUCCESS"
    return RunOutcome(run.notebook, run.partition, tuple(run.assets), "SUCCESS" if ok else "FAILED", last.run_id,
                      len(records), error=None if ok else last.error, error_cell=last.error_cell,
                      output_path=last.output_path, run_ids=tuple(r.run_id for r in records))


class RichProgress:
    """A progress bar on a terminal; one line per finished run elsewhere."""

    def __init__(self, *, live: bool) -> None:
        self._live = live
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: int) -> None:
        if self._live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("materializing"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"))
            self._progress.start()
            self._task = self._progress.add_task("", total=total)

    def advance(self, outcome: RunOutcome) -> None:
        line = _outcome_line(outcome)
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=line[:80])
            if outcome.status != "SUCCESS":
                self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, flush=True)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class WidgetProgress:
    """An ipywidgets progress bar for ``%nbo materialize`` in a notebook."""

    def __init__(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self._bar = widgets.IntProgress(value=0, min=0, max=1, description="materialize")
        self._label = widgets.Label("")
        display(widgets.HBox([self._bar, self._label]))

    def start(self, total: int) -> None:
        self._bar.max = max(total, 1)

    def advance(self, outcome: RunOutcome) -> None:
        self._bar.value += 1
        self._label.value = _outcome_line(outcome)
        if outcome.status != "SUCCESS":
            print(_outcome_line(outcome))

    def finish(self) -> None:
        self._bar.bar_style = "success" if self._bar.value == self._bar.max else ""


def _outcome_line(o: RunOutcome) -> str:
    text = f"{o.status:<7} {o.notebook} [{o.partition}] {','.join(o.assets)}"
    if o.run_id:
        text += f" run {o.run_id}"
    if o.attempts > 1:
        text += f" after {o.attempts} attempts"
    if o.error:
        text += f": {o.error}"
    return text
