"""What a partition is drawn as, and in which colour (pure): the staleness report's statuses plus the two states of a
live run that the report shows as RUNNING — WAITING for a concurrency-pool slot, and PRESUMED_DEAD (its heartbeat
stopped; reads never reap). The colours here are the one answer for every face: both graph canvases, the heatmap
and the legends receive them from the view-model instead of keeping a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from notebook_orch.core.status import LiveState, Status

if TYPE_CHECKING:
    from notebook_orch.core.staleness import StalenessReport
    from notebook_orch.store.records import RunRecord

WAITING, PRESUMED_DEAD = LiveState.WAITING, LiveState.PRESUMED_DEAD
# What a partition is drawn as: the report's statuses (a status code indexes this tuple, as core.state_columns'
# STATUSES) plus the two states of a live run the report shows as RUNNING (``run_states``).
VIEW_STATUSES = (*Status, WAITING, PRESUMED_DEAD)
# Worst first: inside one bucket of a long partition bar, the worst status shows.
SEVERITY = (Status.INVALID, PRESUMED_DEAD, Status.RUNNING, WAITING, Status.FAILED, Status.STALE, Status.MISSING,
            Status.FRESH)
# A node's colour (core.status.headline_status, the exports' rule, with the live states beside RUNNING): missing
# partitions are "not built yet", so an asset built for January is fresh, not grey.
HEADLINE = (Status.INVALID, PRESUMED_DEAD, Status.RUNNING, WAITING, Status.FAILED, Status.STALE, Status.FRESH,
            Status.MISSING)
# Counts are written in the order a person reads a node: what is good, what needs work, what is happening.
COUNT_ORDER = (Status.FRESH, Status.STALE, Status.MISSING, Status.FAILED, Status.RUNNING, WAITING, PRESUMED_DEAD,
               Status.INVALID)
# The one answer for every face (both graph canvases, the heatmap, the legend): the pages receive these.
COLOURS = {
    Status.FRESH: "#2e7d32",
    Status.STALE: "#f9a825",
    Status.MISSING: "#9e9e9e",
    Status.FAILED: "#c62828",
    Status.RUNNING: "#1565c0",
    WAITING: "#80deea",
    PRESUMED_DEAD: "#3e2723",
    Status.INVALID: "#6a1b9a",
}
# Text drawn on a fill: dark on the light fills, white on the others.
TEXT_COLOURS = {s: "#212121" if s in (Status.STALE, Status.MISSING, WAITING) else "#fff" for s in COLOURS}
LABELS = {s: str(s).lower().replace("_", " ") for s in COLOURS}
MEANINGS = {
    Status.FRESH: "materialized, up to date",
    Status.STALE: "materialized, but code or upstream data changed since",
    Status.MISSING: "never materialized",
    Status.FAILED: "the last run failed, and no earlier run made a value",
    Status.RUNNING: "a run is working on it",
    WAITING: "a run waits for a concurrency-pool slot before it starts",
    PRESUMED_DEAD: "its run stopped sending heartbeats; the next writer (or nbo reap) records it failed",
    Status.INVALID: "its declaration is broken",
}


def headline(counts: Mapping[str, int]) -> str:
    """The status a node is coloured by, from its partition counts (``HEADLINE``)."""
    for status in HEADLINE:
        if counts.get(status):
            return status
    return Status.MISSING


def run_states(running: Mapping[tuple[str, str], str], *, waiting: Iterable[str] = (),
               dead: Iterable[str] = ()) -> dict[str, dict[str, str]]:
    """asset -> partition -> WAITING or PRESUMED_DEAD, for the partitions held by a live run (``running``:
    (asset, partition) -> run id, the store's locks) whose run waits for a pool slot or stopped heartbeating."""
    states = {r: WAITING for r in waiting} | {r: PRESUMED_DEAD for r in dead}  # a dead waiter is dead
    out: dict[str, dict[str, str]] = {}
    for (asset, partition), run_id in running.items():
        state = states.get(run_id)
        if state is not None:
            out.setdefault(asset, {})[partition] = state
    return out


def view_codes(report: StalenessReport, asset: str, states: Mapping[str, str] | None) -> Any:
    """The asset's status codes (indexes into ``VIEW_STATUSES``): the report's, with the partitions of ``states``
    (partition -> WAITING / PRESUMED_DEAD) drawn as that instead of RUNNING."""
    codes = report.status_codes(asset)
    if not states:
        return codes
    codes = codes.copy()
    running = VIEW_STATUSES.index(Status.RUNNING)
    where = {k: i for i, k in enumerate(report.keys(asset))} if len(states) > 8 else None
    for partition, state in states.items():
        i = where.get(partition) if where is not None else _index(report, asset, partition)
        if i is not None and codes[i] == running:
            codes[i] = VIEW_STATUSES.index(state)
    return codes


def _index(report: StalenessReport, asset: str, partition: str) -> int | None:
    try:
        return list(report.keys(asset)).index(partition)
    except ValueError:
        return None


def view_counts(report: StalenessReport, asset: str, codes: Any) -> dict[str, int]:
    """Partitions per drawn status (``codes`` from ``view_codes``); the report's own counts when nothing is live."""
    import numpy as np

    if not len(codes) or int(np.max(codes)) < len(Status):
        return dict(report.counts(asset))
    found = np.bincount(np.asarray(codes, dtype=np.int64), minlength=len(VIEW_STATUSES))
    return {VIEW_STATUSES[i]: int(n) for i, n in enumerate(found.tolist()) if n}


def live_run_view(run: RunRecord, *, state: str, now: datetime, ahead: Mapping[str, int] | None = None,
                  since: datetime | None = None) -> dict[str, Any]:
    """One live run of the panel's asset that is not simply running: which pools it waits for, with how many runs
    queued ahead of it in each and since when (``state`` WAITING), or since when it has been silent
    (PRESUMED_DEAD). ``ahead``: pool key -> runs ahead (the store's pool queue). Times are naive UTC."""
    from notebook_orch.core.pools import pool_key_label

    pools = [{"pool": p, "label": pool_key_label(p), "ahead": n} for p, n in sorted((ahead or {}).items())]
    if state == WAITING:
        since = since or run.started_at
        where = ", ".join(f"{p['label']} with {p['ahead']} ahead" for p in pools) or "a pool slot"
        text = f"run {run.run_id} waits for {where}, since {since:%H:%M:%S} UTC ({_ago(now - since)})"
    else:
        since = run.heartbeat_at or run.started_at
        text = (f"run {run.run_id} is presumed dead: no heartbeat since {since:%H:%M:%S} UTC ({_ago(now - since)}); "
                "the next writer (or nbo reap) records it failed")
    return {"run_id": run.run_id, "state": state, "label": LABELS[state], "since": since.strftime("%Y-%m-%d %H:%M:%S"),
            "pools": pools, "partitions": list(run.partition_keys), "text": text}


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"

__all__ = ["COLOURS", "COUNT_ORDER", "HEADLINE", "LABELS", "MEANINGS", "PRESUMED_DEAD", "SEVERITY", "TEXT_COLOURS",
           "VIEW_STATUSES", "WAITING", "headline", "live_run_view", "run_states", "view_codes", "view_counts"]
