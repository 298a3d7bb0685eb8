"""The daemon's trigger steps between the event log and ``core.triggers``: which joins a batch of events reaches
(data version changed, automation not paused), which pending joins are held, and deciding them against the
project's status. The pure rules are in ``core/triggers.py``; these read the store."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from notebook_orch.core.status import Status
from notebook_orch.core.triggers import evaluate_joins, reached_joins, trigger_conditions

log = logging.getLogger("notebook_orch.scheduler")


def changed_partitions(project: Any, events: list[Any]) -> list[tuple[str, str]]:
    """(asset, partition) of MATERIALIZED events whose data version differs from the one before it."""
    from notebook_orch.store.records import EV_MATERIALIZED

    out = []
    for e in events:
        if e.kind != EV_MATERIALIZED or not e.asset or e.partition is None:
            continue
        history = project.store.materializations(e.asset, e.partition, limit=50)
        ids = [m.id for m in history]
        mid = e.payload.get("materialization_id")
        if mid in ids:
            i = ids.index(mid)
            if i + 1 < len(history) and history[i + 1].data_version == history[i].data_version:
                log.debug("%s[%s]: data version unchanged, triggers nothing", e.asset, e.partition)
                continue
        out.append((e.asset, e.partition))
    return out


def reached_by(project: Any, specs: dict[str, Any], events: list[Any], naive: datetime,
               pauses: dict[str, Any]) -> list[tuple[str, str]]:
    """The joins ``events`` reach. A paused asset is reached by none; one resumed after event N only by events
    after N — the batch is cut at such N (rare: only right after a resume), so the order of reading does not
    matter, only event ids."""
    paused = {a for a, p in pauses.items() if p.paused}
    first = min(e.id for e in events)
    resumed = {a: p.after_event for a, p in pauses.items() if not p.paused and p.after_event is not None
               and p.after_event >= first}
    reached: list[tuple[str, str]] = []
    low: int | None = None
    for cut in [*sorted(set(resumed.values())), None]:
        part = [e for e in events if (low is None or e.id > low) and (cut is None or e.id <= cut)]
        low = cut
        if not part:
            continue
        top = max(e.id for e in part)
        blocked = paused | {a for a, after in resumed.items() if top <= after}
        reached += reached_joins(specs, changed_partitions(project, part), now=naive,
                                 automated=lambda n, b=blocked: specs[n].auto and n not in b)
    return reached


def held_assets(project: Any, pauses: dict[str, Any]) -> set[str]:
    """Assets whose pending joins are neither started nor dropped: INVALID ones (they run again once the
    declaration is fixed) and paused ones (pausing removed their joins; one added in a race waits)."""
    return set(project.graph.invalid) | {a for a, p in pauses.items() if p.paused}


def evaluate_pending(project: Any, specs: dict[str, Any], joins: list[tuple[str, str]], naive: datetime, *,
                     limit: int) -> Any:
    """Decide ``joins`` (at most ``limit``) against the project's status and the runs going now."""
    status = project.status(now=naive)
    running = project.store.running()

    def status_of(asset: str, partition: str) -> Status:
        try:
            return status.status(asset, partition)
        except Exception:
            return Status.MISSING

    return evaluate_joins(specs, joins, status_of=status_of, running=lambda a, p: (a, p) in running,
                          now=naive, limit=limit, conditions=trigger_conditions(specs))


class SubmittedJoins:
    """Joins whose triggered run was submitted but may not be recorded yet.

    A submitted run is recorded by the worker that starts it, a moment after the daemon decided it. The join stays
    in the store's pending joins until the store records its run (or its plan ends): a daemon killed in between
    leaves it pending, and its successor decides it again instead of losing the trigger (the run is then RUNNING,
    FRESH or not there at all, and ``evaluate_joins`` waits, drops or starts it). Meanwhile this daemon does not
    decide it again, so it never starts a second run of it."""

    def __init__(self) -> None:
        self._handles: dict[tuple[str, str], Any] = {}

    def add(self, joins: list[tuple[str, str]], handle: Any) -> None:
        for join in joins:
            self._handles[join] = handle

    def __contains__(self, join: object) -> bool:
        return join in self._handles

    def recorded(self, store: Any) -> list[tuple[str, str]]:
        """Forget and return the joins whose run the store records now, or whose plan ended."""
        by_handle: dict[int, tuple[Any, list[tuple[str, str]]]] = {}
        for join, handle in self._handles.items():
            by_handle.setdefault(id(handle), (handle, []))[1].append(join)
        done: list[tuple[str, str]] = []
        for handle, joins in by_handle.values():
            if handle.done():
                done += joins
                continue
            runs = [store.get_run(run_id) for run_id in handle.run_ids]
            seen = {(a, p) for r in runs if r is not None for a in r.assets for p in r.partition_keys}
            done += [j for j in joins if j in seen]
        for join in done:
            del self._handles[join]
        return done


__all__ = ["SubmittedJoins", "changed_partitions", "evaluate_pending", "held_assets", "reached_by"]
