"""Which live runs wait for a pool slot or stopped heartbeating, read from the store for the widgets (a read:
changes nothing). The staleness report shows both as RUNNING; ``core.viewstates`` draws them as what they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from notebook_orch.core import viewstates


@dataclass(frozen=True)
class LiveRuns:
    """``states``: asset -> partition -> WAITING / PRESUMED_DEAD; ``runs``: run id -> (state, RunRecord, pool key ->
    runs queued ahead, since it queued)."""

    states: dict[str, dict[str, str]] = field(default_factory=dict)
    runs: dict[str, tuple[str, Any, dict[str, int], datetime | None]] = field(default_factory=dict)
    now: datetime | None = None

    def panel_runs(self, asset: str) -> list[dict[str, Any]]:
        """The panel's lines for ``asset``'s runs that wait or are presumed dead (``viewstates.live_run_view``)."""
        now = self.now or datetime.now()
        return [viewstates.live_run_view(run, state=state, now=now, ahead=ahead, since=since)
                for state, run, ahead, since in self.runs.values() if asset in run.assets]


def read_live_runs(project: Any, running: dict[tuple[str, str], str] | None = None) -> LiveRuns:
    """The live runs that are not simply running. One read of the locks when nothing is live; ``running`` (the
    locks, when the caller just read them) saves that one."""
    from notebook_orch.project import utcnow
    from notebook_orch.store.records import RUNNING, WAITING

    store = project.store
    running = store.running() if running is None else running
    now = utcnow()
    if not running:
        return LiveRuns(now=now)
    held = set(running.values())
    limit = now - timedelta(seconds=project.config.heartbeat_timeout_s)
    waiting = [r for r in store.list_runs(limit=10_000, status=WAITING) if r.run_id in held]
    running_runs = [r for r in store.list_runs(limit=10_000, status=RUNNING) if r.run_id in held]
    dead = {r.run_id for r in (*waiting, *running_runs) if (r.heartbeat_at or r.started_at) < limit}
    queue = {w.run_id: w for w in store.pool_waiters()} if waiting else {}
    runs: dict[str, tuple[str, Any, dict[str, int], datetime | None]] = {}
    for run in (*waiting, *running_runs):
        if run.run_id in dead:
            runs[run.run_id] = (viewstates.PRESUMED_DEAD, run, {}, None)
        elif run.status == WAITING:
            wait = queue.get(run.run_id)
            runs[run.run_id] = (viewstates.WAITING, run, dict(wait.ahead) if wait else {},
                                wait.since if wait else None)
    states = viewstates.run_states(running, waiting=[r.run_id for r in waiting], dead=dead)
    return LiveRuns(states=states, runs=runs, now=now)
