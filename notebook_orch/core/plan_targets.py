"""Step 1 of planning (core/planning.py): which partitions of the selected assets the user asked for (pure).

Keys and ``--from/--to`` are read as a *time interval* (a key's shape says its grain: ``2013-01-05`` a day,
``2013-01`` a month, ``2013-01-05T06`` an hour), and every partition of a time-partitioned asset overlapping it is a
target, whatever that asset's grain. Static assets take the keys that are theirs (a range does not apply to them:
all keys); unpartitioned assets their one partition. Partitions are index arrays aligned with ``report.keys(asset)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from notebook_orch.core.partitions import (
    UNPARTITIONED_KEY,
    StaticPartitions,
    TimeWindowPartitions,
    Unpartitioned,
    check_key_is_safe,
)
from notebook_orch.errors import NotebookOrchError, PartitionError, close_matches

if TYPE_CHECKING:
    import numpy as np

    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.staleness import StalenessReport

_EPS = timedelta(microseconds=1)
_KEY_SHAPES = "2013-01-05 (a day), 2013-01 (a month) or 2013-01-05T06 (an hour)"


class PlanError(NotebookOrchError):
    """The plan cannot be made; ``problems`` lists every reason found (collected, raised once)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems with the plan:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


@dataclass(frozen=True)
class PartitionSelection:
    """What the user asked for. Keys (``--partition K``) or a range (``--from A --to B``, both ends inclusive and
    either optional); nothing given means every partition."""

    keys: tuple[str, ...] = ()
    start: str | None = None
    end: str | None = None

    @property
    def is_all(self) -> bool:
        return not self.keys and self.start is None and self.end is None


def check_names(graph: AssetGraph, selection: Sequence[str]) -> list[str]:
    if isinstance(selection, str):  # a bare string would be read letter by letter
        selection = [selection]
    if not selection:
        raise PlanError(["Nothing selected; name at least one asset, e.g. 'sales', '+sales' or 'sales+'."])
    unknown = [n for n in dict.fromkeys(selection) if n not in graph]
    if unknown:
        raise PlanError([
            f"No asset named {n!r} in the project." + close_matches(n, list(graph.names)) for n in unknown
        ])
    return graph.sorted(selection)


def key_interval(key: str) -> tuple[datetime, datetime] | None:
    """The [start, end) a time key stands for, its grain read from its shape; None if it is not a time key."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", key):
            t = datetime.strptime(key, "%Y-%m-%dT%H")
            return t, t + timedelta(hours=1)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", key):
            # Also a weekly key: the day overlaps exactly the week it starts, so nothing is lost.
            t = datetime.strptime(key, "%Y-%m-%d")
            return t, t + timedelta(days=1)
        if re.fullmatch(r"\d{4}-\d{2}", key):
            t = datetime.strptime(key, "%Y-%m")
            return t, datetime(t.year + t.month // 12, t.month % 12 + 1, 1)
    except ValueError:  # e.g. 2013-02-30
        return None
    return None


def _time_slice(pdef: TimeWindowPartitions, n: int, start: datetime | None, end: datetime | None) -> tuple[int, int]:
    """Indexes [i, j) of the partitions overlapping [start, end); None is open."""
    i = 0 if start is None else max(0, pdef.index_at_time(start))
    j = n if end is None else min(n, pdef.index_at_time(end - _EPS) + 1)
    return i, max(i, j)


def select_targets(
    graph: AssetGraph, report: StalenessReport, names: list[str], sel: PartitionSelection | None
) -> dict[str, np.ndarray]:
    import numpy as np

    if sel is None or sel.is_all:
        return {name: np.arange(len(report.keys(name)), dtype=np.int64) for name in names}
    if sel.keys and (sel.start is not None or sel.end is not None):
        raise PlanError(["Give partition keys or a range (--from/--to), not both."])
    asked = [*sel.keys] if sel.keys else [k for k in (sel.start, sel.end) if k is not None]
    problems = []
    for key in asked:
        try:
            check_key_is_safe(key)
        except PartitionError as exc:
            problems.append(str(exc))
    if problems:
        raise PlanError(problems)
    if sel.keys:
        picks, fits = _targets_for_keys(graph, report, names, sel.keys)
        unfit = [k for k in dict.fromkeys(sel.keys) if not fits[k]]
        if unfit:
            ranges = "; ".join(_valid_range(graph, report, n) for n in names)
            raise PlanError([
                f"Partition {k!r} fits none of the selected assets ({ranges}); pick a key in one of these ranges."
                + ("" if key_interval(k) else f" Time keys look like {_KEY_SHAPES}.")
                for k in unfit
            ])
        return picks
    return _targets_for_range(graph, report, names, sel.start, sel.end)


def _targets_for_keys(
    graph: AssetGraph, report: StalenessReport, names: list[str], keys: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    import numpy as np

    fits = dict.fromkeys(keys, False)
    intervals = {k: key_interval(k) for k in keys}
    picks: dict[str, np.ndarray] = {}
    for name in names:
        pdef, own = graph.spec(name).partitions, report.keys(name)
        chosen: set[int] = set()
        if isinstance(pdef, Unpartitioned):
            chosen.add(0)  # its one partition, whatever the keys; they are for the partitioned assets
            for k in keys:
                fits[k] |= k == UNPARTITIONED_KEY
        elif isinstance(pdef, StaticPartitions):
            index = {k: i for i, k in enumerate(own)}
            for k in keys:
                if k in index:
                    chosen.add(index[k])
                    fits[k] = True
        else:
            for k, iv in intervals.items():
                if iv is not None:
                    i, j = _time_slice(pdef, len(own), *iv)
                    chosen.update(range(i, j))
                    fits[k] |= j > i
        picks[name] = np.array(sorted(chosen), dtype=np.int64)
    return picks, fits


def _targets_for_range(
    graph: AssetGraph, report: StalenessReport, names: list[str], start: str | None, end: str | None
) -> dict[str, np.ndarray]:
    import numpy as np

    problems = []
    lo_iv = key_interval(start) if start is not None else None
    hi_iv = key_interval(end) if end is not None else None
    for flag, key, iv in (("--from", start, lo_iv), ("--to", end, hi_iv)):
        if key is not None and iv is None:
            problems.append(f"{flag} {key!r} is not a time key; write it like {_KEY_SHAPES}.")
    if problems:
        raise PlanError(problems)
    lo = lo_iv[0] if lo_iv else None
    hi = hi_iv[1] if hi_iv else None
    if lo is not None and hi is not None and lo >= hi:
        raise PlanError([f"The range --from {start} --to {end} is reversed: {start} comes after {end}. Swap them."])
    picks: dict[str, np.ndarray] = {}
    fits = False
    timed = [n for n in names if isinstance(graph.spec(n).partitions, TimeWindowPartitions)]
    for name in names:
        pdef, n = graph.spec(name).partitions, len(report.keys(name))
        if isinstance(pdef, TimeWindowPartitions):
            i, j = _time_slice(pdef, n, lo, hi)
            fits |= j > i
        else:
            i, j = 0, n  # a range does not apply to static or unpartitioned assets: all of theirs
        picks[name] = np.arange(i, j, dtype=np.int64)
    if not fits:
        shown = f"--from {start} --to {end}" if start and end else (f"--from {start}" if start else f"--to {end}")
        ranges = "; ".join(_valid_range(graph, report, n) for n in names)
        if not timed:
            raise PlanError([
                f"The range {shown} selects time partitions, but none of the selected assets is time-partitioned "
                f"({ranges}); use --partition KEY instead."
            ])
        raise PlanError([f"The range {shown} fits none of the selected assets ({ranges}); pick dates in one of them."])
    return picks


def _valid_range(graph: AssetGraph, report: StalenessReport, name: str) -> str:
    pdef, keys = graph.spec(name).partitions, report.keys(name)
    if isinstance(pdef, Unpartitioned):
        return f"{name}: unpartitioned"
    if isinstance(pdef, StaticPartitions):
        return f"{name}: static {', '.join(keys)}"
    if not keys:
        return f"{name}: {pdef.grain} from {pdef.key_of(0)}, none ended yet"
    return f"{name}: {pdef.grain} {keys[0]}..{keys[-1]}"


__all__ = ["PartitionSelection", "PlanError", "check_names", "key_interval", "select_targets"]
