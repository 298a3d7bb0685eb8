"""From a ``RunPlan`` to what executors run: requests, the report, and ``run_plan`` (submit and wait).

The scheduling itself is the ``RunHandle``'s (engine/handle.py); executors live in engine/executors.py.
An interrupt while waiting (Ctrl-C; ``nbo`` maps SIGTERM to it) cancels the runs in flight, records them CANCELED
and raises ``PlanInterrupted`` (a ``KeyboardInterrupt``) carrying the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from notebook_orch.core.status import Outcome
from notebook_orch.engine.executor import WARM_MODE, RunOutcome, RunRequest

if TYPE_CHECKING:
    from notebook_orch.core.planning import RunPlan
    from notebook_orch.engine.executors import Executor
    from notebook_orch.engine.handle import RunHandle
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
    left_out: tuple[tuple[str, str], ...] = ()  # the plan's invalid assets the selection reached: (asset, why)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def running_elsewhere(self) -> tuple[tuple[str, str], ...]:
        """Requested (asset, partition) pairs not run because another run held them when the plan was made."""
        return tuple((a, p) for a, p, why in self.skipped if why == "running")

    @property
    def ok(self) -> bool:
        """Every run succeeded and nothing asked for was left to another run (that is the LOCKED case, found early)."""
        return all(o.status == Outcome.SUCCESS for o in self.outcomes) and not self.running_elsewhere

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s.lower()}" for s in Outcome
                 if self.count(s)]
        if self.running_elsewhere:
            parts.append(f"{len(self.running_elsewhere)} partition(s) not run: another run is materializing them")
        if self.left_out:
            parts.append(f"{len(self.left_out)} invalid asset(s) left out")
        return f"{len(self.outcomes)} run(s) in {self.duration_s:.1f} s: " + (", ".join(parts) or "nothing to do")


def build_requests(project: Project, plan: RunPlan, *, kind: str, mode: str = WARM_MODE,
                   retries: int | None = None, execution_timeout_s: float | None = None,
                   parameters: dict[str, Any] | None = None, first_attempt: int = 1) -> list[RunRequest]:
    from notebook_orch.core.partitions import partition_date
    from notebook_orch.core.pools import run_pools

    graph = project.graph
    cfg = project.config
    now = _now()
    requests = []
    concurrency = cfg.concurrency
    for run in plan.runs:
        specs = [graph.spec(a) for a in run.assets]
        date = partition_date(specs[0].partitions, run.partition)
        requests.append(RunRequest(
            project_root=str(cfg.root),
            store_url=cfg.store_url,
            data_dir=str(cfg.data_dir),
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
            asset_contexts=asset_contexts(graph, run.assets, run.partition, now=now),
            parameters=dict(parameters or {}),
            first_attempt=first_attempt,
            pools={} if concurrency.empty else run_pools(concurrency, run.assets, {s.name: s.pools for s in specs}),
        ))
    return requests


def asset_contexts(graph: Any, assets: Sequence[str], partition: str, *, now: Any) -> dict[str, dict]:
    """The graph slice a run's kernel needs for each of its assets: cell, code version, and what each dependency
    reads (the worker adds where those values are just before the run starts)."""
    from notebook_orch.core.reads import upstream_reads

    out = {}
    for name in assets:
        spec = graph.spec(name)
        reads = upstream_reads(spec, {d.asset: graph.spec(d.asset) for d in spec.deps}, partition, now=now)
        out[name] = {"cell": spec.cell_index, "code_version": spec.code_version, "code_source": spec.code_source,
                     "reads": [r.to_json() for r in reads]}
    return out


def _now() -> Any:
    from notebook_orch.project import utcnow

    return utcnow()


def run_plan(plan: RunPlan, requests: list[RunRequest], *, workers: int = 2, progress: Progress | None = None,
             executor: Executor | None = None) -> RunPlanReport:
    """Execute ``plan`` and wait: ``RunHandle`` over ``executor`` (a new local pool of ``workers`` by default)."""
    from notebook_orch.engine.executors import LocalExecutor
    from notebook_orch.engine.handle import RunHandle

    own = executor is None
    handle = RunHandle(plan, requests, executor or LocalExecutor(workers=workers), own_executor=own)
    return follow(handle, progress)


def follow(handle: RunHandle, progress: Progress | None) -> RunPlanReport:
    """Wait for ``handle`` while ``progress`` shows each outcome; Ctrl-C cancels (``PlanInterrupted``)."""
    if progress is not None:
        progress.start(len(handle.plan.runs))
        handle.on_outcome(progress.advance)
    try:
        return handle.wait()
    finally:
        if progress is not None:
            progress.finish()


class PlanInterrupted(KeyboardInterrupt):
    """Waiting for a plan was interrupted; the runs in flight were CANCELED. ``report`` says what happened to each
    run (a ``KeyboardInterrupt``, so code that handles Ctrl-C keeps handling it)."""

    def __init__(self, report: RunPlanReport) -> None:
        super().__init__(f"interrupted: {report.summary()}")
        self.report = report
