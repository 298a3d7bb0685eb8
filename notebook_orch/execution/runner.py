"""Run a ``RunPlan``: worker processes, dependency order, parallel where independent, progress as runs finish.

The runner only schedules; each worker executes whole runs (``executor.execute_run``). A run whose prerequisite
failed is not started (SKIPPED) — nothing downstream of a failure runs.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from notebook_orch.execution.executor import WARM_MODE, RunOutcome, RunRequest, die_with_parent, execute_run

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
        parts = [f"{self.count(s)} {s.lower()}" for s in ("SUCCESS", "FAILED", "LOCKED", "SKIPPED") if self.count(s)]
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
    pending = set(range(len(plan.runs)))
    running: dict[Future, int] = {}
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx, initializer=die_with_parent) as pool:
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
                elif all(a in outcomes for a in after):
                    running[pool.submit(executor, requests[i])] = i
                    pending.discard(i)
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                try:
                    outcomes[i] = fut.result()
                except Exception as exc:  # the worker itself died: report it, keep the rest going
                    run = plan.runs[i]
                    outcomes[i] = RunOutcome(run.notebook, run.partition, tuple(run.assets), "FAILED",
                                             error=f"worker failed: {type(exc).__name__}: {exc}")
                if progress:
                    progress.advance(outcomes[i])
    if progress:
        progress.finish()
    return RunPlanReport(tuple(outcomes[i] for i in range(len(plan.runs))), time.perf_counter() - started,
                         tuple(plan.skipped))


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
