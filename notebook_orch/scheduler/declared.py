"""Schedules declared on assets (``%%asset NAME --schedule CRON``) next to the ones added with ``nbo schedule add``.

An asset's schedule is named after the asset, targets ``latest`` in UTC with catch-up ``latest``. Reads show them
without writing (``declared_schedules``); writers (the daemon, ``pause``/``resume``) store them (``sync_declared``),
and a declaration that disappears from the notebooks removes its stored schedule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from notebook_orch.store.scheduling import ScheduleRecord

DECLARED_DEFAULTS = {"partition_rule": "latest", "timezone": "UTC", "catchup": "latest"}


def declared_schedules(graph: Any, *, now: datetime) -> dict[str, ScheduleRecord]:
    out = {}
    for spec in graph.specs:
        if spec.schedule:
            out[spec.name] = ScheduleRecord(
                name=spec.name, cron=" ".join(spec.schedule.split()), selection=spec.name, params={}, paused=False,
                origin="asset", created_at=now, active_since=now, **DECLARED_DEFAULTS,
            )
    return out


def sync_declared(project: Any, *, now: datetime) -> list[str]:
    """Store the declared schedules (keeping their paused state); drop stored ones no longer declared. Returns
    the names of declared schedules skipped because a schedule added by hand has the same name.

    While some notebook cannot be read (``graph.other_problems``), nothing is dropped: its assets are missing from
    the graph because the file is unreadable (half-saved, bad JSON), not because their ``--schedule`` was removed,
    and dropping would lose the schedule's paused state and the ticks due while the file is being fixed."""
    sched = project.store.scheduling
    stored = {s.name: s for s in sched.list_schedules()}
    declared = declared_schedules(project.graph, now=now)
    clashes = []
    for name, rec in declared.items():
        have = stored.get(name)
        if have is not None and have.origin != "asset":
            clashes.append(name)
            continue
        if have is None or have.cron != rec.cron:
            sched.add_schedule(name=name, cron=rec.cron, selection=rec.selection, origin="asset", replace=True,
                               now=now, **DECLARED_DEFAULTS)
    if project.graph.other_problems:
        return clashes
    for name, have in stored.items():
        if have.origin == "asset" and name not in declared:
            sched.delete_schedule(name)
    return clashes
