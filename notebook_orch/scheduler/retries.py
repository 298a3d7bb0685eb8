"""Runs that died, retried per their assets' ``--retries`` (the daemon's part of "reap and retry").

A notebook that raises is retried inside its run (``engine.executor.execute_run``), and a run whose worker died is
retried by the runner that saw it die (``engine.handle``). A run whose runner died too (the command killed, the
machine rebooted) is reaped when its heartbeat stops — by whoever reaps: the daemon, ``nbo reap``, any writer — and
the RUN_FAILED event says so. The daemon reads those events with its one cursor and starts the next attempt when
the policy has one left: attempt numbers continue (a run that died at attempt 1 of ``--retries 2`` is retried as
attempts 2-3).

Never twice: a died run is retried only if no run of its (asset, partition) targets started after it — a daemon
that crashed after submitting the retry but before saving its cursor sees that run and moves on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from notebook_orch.core.partitions import UNPARTITIONED_KEY

log = logging.getLogger("notebook_orch.scheduler")

#: How the error of a reaped run begins (store.writes.reap_stale_runs). A run whose worker died while its runner
#: lived is retried by that runner (engine.handle); only a run whose runner died too is left to the daemon.
DIED_PREFIXES = ("heartbeat lost:",)


def died(error: str | None) -> bool:
    return bool(error) and any(error.startswith(p) for p in DIED_PREFIXES)


def retry_dead_runs(scheduler: Any, events: Iterable[Any]) -> list[Any]:
    """Start the next attempt of every run among ``events`` that died with attempts left; returns the handles."""
    from notebook_orch.store.records import EV_RUN_FAILED

    project = scheduler.project
    handles = []
    for e in events:
        if e.kind != EV_RUN_FAILED or not e.run_id or not died(e.payload.get("error")):
            continue
        run = project.store.get_run(e.run_id)
        if run is None or not run.assets or any(a not in project.graph for a in run.assets):
            continue
        policy = max(project.graph.spec(a).retries for a in run.assets)
        if run.attempt > policy:
            log.info("run %s (%s %s) died at attempt %d; no retry left (--retries %d)", run.run_id,
                     ",".join(run.assets), ",".join(run.partition_keys), run.attempt, policy)
            continue
        if _rerun_since(project.store, run):
            continue
        handle = _resubmit(scheduler, run, policy)
        if handle is not None:
            handles.append(handle)
    return handles


def _rerun_since(store: Any, run: Any) -> bool:
    targets = {(a, p) for a in run.assets for p in run.partition_keys}
    for other in store.list_runs(limit=50, asset=run.assets[0]):
        if other.run_id != run.run_id and other.started_at >= run.started_at and any(
                (a, p) in targets for a in other.assets for p in other.partition_keys):
            return True
    return False


def _resubmit(scheduler: Any, run: Any, policy: int) -> Any:
    from notebook_orch.core.planning import PartitionSelection

    project = scheduler.project
    keys = tuple(k for k in run.partition_keys if k != UNPARTITIONED_KEY)
    tick = _tick_of(scheduler, run)
    try:
        handle = project.submit(
            ",".join(run.assets), partitions=PartitionSelection(keys=keys) if keys else None, kind=run.kind,
            retries=policy - run.attempt, first_attempt=run.attempt + 1, executor=scheduler.run_executor(),
            workers=scheduler.workers, parameters=_parameters_of(scheduler, tick),
        )
        if tick is not None:  # the retry belongs to the tick too: its own retry finds the parameters there again
            scheduler.sched.add_tick_runs(tick.id, handle.run_ids)
    except Exception as exc:  # a partition gone from the notebooks, say: log it, keep the daemon going
        log.error("retry of run %s (%s %s) could not start: %s", run.run_id, ",".join(run.assets),
                  ",".join(run.partition_keys), exc)
        return None
    log.info("retry: run %s (%s %s) died at attempt %d; started attempt %d of %d", run.run_id,
             ",".join(run.assets), ",".join(run.partition_keys), run.attempt, run.attempt + 1, policy + 1)
    return handle


def _tick_of(scheduler: Any, run: Any) -> Any:
    """The tick a scheduled run belongs to: its first attempt, or a retry linked to it (``add_tick_runs``)."""
    if run.kind != "schedule":
        return None
    return next((t for t in scheduler.sched.ticks(limit=500) if run.run_id in t.run_ids), None)


def _parameters_of(scheduler: Any, tick: Any) -> dict[str, Any] | None:
    """A scheduled run's retry gets its tick's ``--param`` again (the run record does not keep them): as they were
    at tick time, even if the schedule changed or was deleted since (a tick recorded before the store kept them:
    the schedule's current ones)."""
    if tick is None:
        return None
    if tick.params is not None:
        return dict(tick.params)
    s = scheduler.sched.get_schedule(tick.schedule)
    return dict(s.params) if s is not None else None


__all__ = ["DIED_PREFIXES", "died", "retry_dead_runs"]
