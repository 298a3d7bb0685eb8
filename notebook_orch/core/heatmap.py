"""The partition heatmap's view-model (pure): assets x partitions, coloured by status, as plain data.

One row per asset. Time-partitioned assets share one time axis (x in days from the earliest window start), so a
daily asset has one cell per day and a monthly one a cell as wide as its month; static and unpartitioned assets
get rows of their own with one cell per key. A row's statuses go out as run-length ranges ``[code, start, stop)``
over the asset's partition indexes, plus counts: never a list of every key (listing keys is what freezes a
partitions UI past tens of thousands of partitions). The page turns an x position back into a partition key with
the row's ``grain`` and ``start_ms`` (the same arithmetic as ``core.partitions``), so hover needs no round trip.

Colours come from ``core.viewmodel.COLOURS``, the graph's legend: one source for both widgets.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from notebook_orch.core.status import Status
from notebook_orch.core.viewmodel import counts_text, legend, run_lengths
from notebook_orch.core.viewstates import COLOURS, LABELS, MEANINGS, VIEW_STATUSES, headline, view_codes, view_counts

if TYPE_CHECKING:
    from notebook_orch.core.graph import AssetGraph, InvalidAsset
    from notebook_orch.core.stale_causes import PartitionStatus
    from notebook_orch.core.staleness import StalenessReport

DAY_MS = 86_400_000
# Static keys are the declaration itself (a short list a person typed), so they are sent for hover text; past this
# many the page names a cell by its position instead.
STATIC_KEY_LIMIT = 2_000
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Ranges = list[list[int]]


def epoch_ms(t: datetime) -> int:
    """Milliseconds since 1970 of a naive datetime read as UTC (as ``core.partitions`` reads every time)."""
    return calendar.timegm(t.timetuple()) * 1000


def ranges_of(codes: Sequence[int]) -> Ranges:
    """``[[code, start, stop], ...]``: maximal runs of one status code over partition indexes (stop exclusive)."""
    return [[c, a, b] for c, a, b in run_lengths(codes)]


def changed_ranges(before: Sequence[int], after: Sequence[int]) -> Ranges:
    """The runs of ``after`` where it differs from ``before`` (same length): what a live patch sends."""
    import numpy as np

    old, new = np.asarray(before), np.asarray(after)
    if old.shape != new.shape:
        raise ValueError(f"changed_ranges needs two code arrays of one length, got {len(old)} and {len(new)}.")
    where = np.flatnonzero(old != new)
    if len(where) == 0:
        return []
    # Break where the indexes stop being consecutive or the new code changes.
    cut = np.flatnonzero((np.diff(where) != 1) | (new[where[1:]] != new[where[:-1]])) + 1
    starts = np.concatenate(([0], cut))
    stops = np.concatenate((cut, [len(where)]))
    return [[int(new[where[a]]), int(where[a]), int(where[b - 1]) + 1] for a, b in zip(starts.tolist(), stops.tolist())]


def _row_head(name: str, report: StalenessReport, codes: Sequence[int]) -> dict[str, Any]:
    counts = view_counts(report, name, codes)
    return {
        "status": headline(counts),
        "counts": {s: n for s, n in counts.items() if n},
        "counts_text": counts_text(counts),
    }


def row_view(graph: AssetGraph, report: StalenessReport, name: str,
             states: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One asset's row: how its partitions sit on the axis, its status ranges and counts. ``states``: partition ->
    WAITING / PRESUMED_DEAD for partitions held by such live runs (``viewstates.run_states``)."""
    spec = graph.spec(name)
    pdef = spec.partitions
    codes = view_codes(report, name, states)
    row: dict[str, Any] = {
        "asset": name,
        "notebook": spec.notebook,
        "partitions": pdef.describe(),
        "grain": pdef.grain,
        "n": len(codes),
        "ranges": ranges_of(codes),
        **_row_head(name, report, codes),
    }
    if pdef.grain in ("hourly", "daily", "weekly", "monthly"):
        row["kind"] = "time"
        row["start_ms"] = epoch_ms(pdef.start)
    else:
        row["kind"] = "index"
        if len(codes) <= STATIC_KEY_LIMIT:
            row["keys"] = list(report.keys(name))
    return row


def row_patch(graph: AssetGraph, report: StalenessReport, name: str, before: Sequence[int],
              states: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """What changed in one row since ``before`` (its previous drawn codes, ``view_codes``): ``{asset, ranges,
    counts...}``, or ``{..., "full": row}`` when the partition count itself changed (an open-ended asset gained a
    window), or None."""
    codes = view_codes(report, name, states)
    if len(codes) != len(before):
        return {"asset": name, "full": row_view(graph, report, name, states)}
    ranges = changed_ranges(before, codes)
    if not ranges:
        return None
    return {"asset": name, "ranges": ranges, **_row_head(name, report, codes)}


def _window_end_ms(row: dict[str, Any]) -> int:
    """Where the row's last window ends on the time axis."""
    start = datetime(1970, 1, 1) + timedelta(milliseconds=row["start_ms"])
    n = row["n"]
    if row["grain"] == "monthly":
        months = start.year * 12 + start.month - 1 + n
        return epoch_ms(datetime(months // 12, months % 12 + 1, 1))
    step = {"hourly": 3_600_000, "daily": DAY_MS, "weekly": 7 * DAY_MS}[row["grain"]]
    return row["start_ms"] + n * step


def time_axis(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The shared axis of the time rows: start (midnight of the earliest window), length in days, and ticks at
    month starts (quarters past 3 years, years past 10), or at days when it spans under 6 weeks."""
    timed = [r for r in rows if r["kind"] == "time"]
    if not timed:
        return None
    start_ms = min(r["start_ms"] for r in timed) // DAY_MS * DAY_MS
    end_ms = max(max(_window_end_ms(r) for r in timed), start_ms + DAY_MS)
    days = (end_ms - start_ms) / DAY_MS
    start = datetime(1970, 1, 1) + timedelta(milliseconds=start_ms)
    end = datetime(1970, 1, 1) + timedelta(milliseconds=end_ms)
    ticks: list[dict[str, Any]] = []
    if days <= 42:
        t = start
        while t < end:
            first = t == start or t.day == 1
            ticks.append({"x": (epoch_ms(t) - start_ms) / DAY_MS,
                          "label": f"{_MONTHS[t.month - 1]} {t.day}" if first else str(t.day), "major": first})
            t += timedelta(days=1)
    else:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        every = 1 if months <= 36 else 3 if months <= 120 else 12
        m = start.year * 12 + start.month - 1
        m += (-m) % every  # first tick on a multiple of the step (January, April, ...)
        while True:
            t = datetime(m // 12, m % 12 + 1, 1)
            if t >= end:
                break
            x = (epoch_ms(t) - start_ms) / DAY_MS
            if x >= 0:
                year = t.month == 1 or not ticks
                label = str(t.year) if every == 12 else f"{_MONTHS[t.month - 1]} {t.year}" if year \
                    else _MONTHS[t.month - 1]
                ticks.append({"x": x, "label": label, "major": year})
            m += every
    return {"start_ms": start_ms, "days": days, "ticks": ticks}


def _invalid_row(bad: InvalidAsset) -> dict[str, Any]:
    spec = bad.spec
    problem = str(bad.problems[0]) if bad.problems else "its declaration is broken"
    return {
        "asset": bad.name, "notebook": spec.notebook if spec else None,
        "partitions": spec.partitions.describe() if spec else "", "grain": "invalid", "kind": "invalid", "n": 1,
        "ranges": [[list(Status).index(Status.INVALID), 0, 1]], "status": Status.INVALID,
        "counts": {Status.INVALID: 1}, "counts_text": "invalid", "problem": problem,
    }


def heatmap_view(
    graph: AssetGraph,
    report: StalenessReport,
    *,
    names: Sequence[str] | None = None,
    invalid: Sequence[InvalidAsset] = (),
    states: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Everything the heatmap draws: rows (time rows first, in graph order), the time axis, colours and legend.
    ``states``: ``viewstates.run_states`` (partitions of live runs waiting for a pool slot or presumed dead)."""
    names = list(graph.order if names is None else graph.sorted(names))
    states = states or {}
    rows = [row_view(graph, report, n, states.get(n)) for n in names]
    rows = [r for r in rows if r["kind"] == "time"] + [r for r in rows if r["kind"] != "time"]
    rows += [_invalid_row(b) for b in invalid]
    totals: dict[str, int] = {}
    for row in rows:
        for s, n in row["counts"].items():
            totals[s] = totals.get(s, 0) + n
    return {
        # A range's code indexes this list: core.state_columns.STATUSES, then the live states (viewstates).
        "statuses": [str(s) for s in VIEW_STATUSES],
        "colours": [COLOURS[s] for s in VIEW_STATUSES],
        "labels": [LABELS[s] for s in VIEW_STATUSES],
        "legend": legend(),
        "rows": rows,
        "axis": time_axis(rows),
        "totals": totals,
    }


def partition_detail(explained: PartitionStatus, state: str | None = None) -> str:
    """One line under the heatmap for a selected partition: why it has its status. ``state``: WAITING or
    PRESUMED_DEAD when its run is such a live run (it is then named so instead of running)."""
    status = state if state and explained.status == Status.RUNNING else explained.status
    head = f"{explained.asset}[{explained.partition}] is {LABELS[status]}"
    words = [c.message for c in explained.causes]
    if explained.root_causes:
        words.append("root cause: " + ", ".join(str(r) for r in explained.root_causes[:3])
                     + (f" and {len(explained.root_causes) - 3} more" if len(explained.root_causes) > 3 else ""))
    words.extend(explained.notes)
    if not words:
        words.append(MEANINGS[status])
    if explained.running_run_id:
        words.append(f"run {explained.running_run_id}")
    return head + (": " + "; ".join(words) if words else "")


__all__ = [
    "STATIC_KEY_LIMIT",
    "changed_ranges",
    "epoch_ms",
    "heatmap_view",
    "partition_detail",
    "ranges_of",
    "row_patch",
    "row_view",
    "time_axis",
]
