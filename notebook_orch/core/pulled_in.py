"""Why a plan runs partitions nobody asked for (pure): upstream partitions a target reads, pulled into the plan.

``nbo materialize '*' --from 2013-01-01 --to 2013-01-03`` plans a month of ``flights_daily``: ``delays_monthly``'s
January overlaps the range, and a monthly asset reads every day of its month, so the other 28 days come in too.
The planner (``core/planning._close_upstream``) records each such pull as a ``PulledIn``: which upstream partitions
were added, which downstream partitions read them, through which dependency, and why in words. ``--dry-run`` prints
them; ``--json`` gives them in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from notebook_orch.core.partitions import PartitionsDef, TimeWindowPartitions, Unpartitioned
from notebook_orch.core.ranges import describe_keys
from notebook_orch.core.specs import DepSpec, Offset, Window

if TYPE_CHECKING:
    import numpy as np

    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.staleness import StalenessReport

# What the planner records for each addition: (upstream, the partitions added (indexes), the asset reading them,
# that asset's targets, the dependency, and the edge's lo/hi arrays (core/mappings.upstream_ranges)).
Pull = tuple[str, Any, str, Any, DepSpec, Any, Any]
_UNIT = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
_SHOWN = 12  # pulls listed by describe(); --json has every one


@dataclass(frozen=True)
class PulledIn:
    """``partitions`` of ``asset`` run because ``by_partitions`` of ``by`` read them through ``dependency``."""

    asset: str
    partitions: tuple[str, ...]
    by: str
    by_partitions: tuple[str, ...]
    dependency: str  # as declared, e.g. "flights_daily" or "flights_daily[-6:0]"
    reason: str  # the mapping in words, e.g. "a monthly asset reads every day of its month"
    ranges: str = ""  # ``partitions`` as ranges (core/ranges), e.g. "2013-01-04..2013-01-31"
    by_ranges: str = ""

    def describe(self) -> str:
        """One line: ``28 partitions of flights_daily (2013-01-04..2013-01-31) pulled in by delays_monthly 2013-01
        (a monthly asset reads every day of its month)``."""
        n = len(self.partitions)
        what = f"{n} partition{'s' if n != 1 else ''} of {self.asset} ({self.ranges or ', '.join(self.partitions)})"
        return f"{what} pulled in by {self.by} {self.by_ranges or ', '.join(self.by_partitions)} ({self.reason})"

    def to_json(self) -> dict:
        return {"asset": self.asset, "partitions": list(self.partitions), "count": len(self.partitions),
                "by": self.by, "by_partitions": list(self.by_partitions), "dependency": self.dependency,
                "reason": self.reason, "text": self.describe()}


def make_pull(asset: str, partitions: Sequence[str], asset_keys: Sequence[str], by: str,
              by_partitions: Sequence[str], by_keys: Sequence[str], *, dependency: str, reason: str) -> PulledIn:
    """A ``PulledIn`` with its partition lists also written as ranges of each asset's keys (in their order)."""
    return PulledIn(asset, tuple(partitions), by, tuple(by_partitions), dependency, reason,
                    describe_keys(partitions, asset_keys), describe_keys(by_partitions, by_keys))


def explain_pulls(graph: AssetGraph, report: StalenessReport, pulls: Sequence[Pull], kept: dict[str, np.ndarray]
                  ) -> tuple[PulledIn, ...]:
    """The planner's recorded pulls as ``PulledIn``s, limited to partitions that run (not skipped as running or
    fresh), each with the targets that read them."""
    import numpy as np

    out = []
    for upstream, added, by, by_idx, dep, lo, hi in pulls:
        added = np.intersect1d(added, kept.get(upstream, np.empty(0, dtype=np.int64)))
        if not len(added):
            continue
        mask = np.zeros(len(report.keys(upstream)) + 1, dtype=np.int64)
        mask[added] = 1
        prefix = np.concatenate(([0], np.cumsum(mask)))
        readers = by_idx[prefix[hi[by_idx]] > prefix[lo[by_idx]]]  # targets whose [lo, hi) holds an added one
        up_keys, by_keys = report.keys(upstream), report.keys(by)
        out.append(make_pull(upstream, [up_keys[i] for i in added.tolist()], up_keys, by,
                             [by_keys[i] for i in readers.tolist()], by_keys, dependency=dep.describe(),
                             reason=pull_reason(graph.spec(by).partitions, graph.spec(upstream).partitions, dep)))
    return tuple(out)


def pull_reason(down: PartitionsDef, up: PartitionsDef, dep: DepSpec) -> str:
    """What ``dep`` makes a partition of ``down`` read of ``up``, in words."""
    mapping = dep.mapping
    if isinstance(up, Unpartitioned):
        return f"it reads {dep.asset}, which has one partition"
    if isinstance(mapping, Offset):
        steps = abs(mapping.offset)
        where = "before" if mapping.offset < 0 else "after"
        if steps == 1:
            return f"{dep.describe()}: each partition reads the one {where} it"
        return f"{dep.describe()}: each partition reads the one {steps} partitions {where} it"
    if isinstance(mapping, Window):
        size = mapping.end - mapping.start + 1
        return f"{dep.describe()}: each partition reads a window of {size} partitions"
    if isinstance(down, TimeWindowPartitions) and isinstance(up, TimeWindowPartitions) and down.grain != up.grain:
        down_unit, up_unit = _UNIT.get(down.grain, down.grain), _UNIT.get(up.grain, up.grain)
        if _coarser(down.grain, up.grain):
            return f"a {down.grain} asset reads every {up_unit} of its {down_unit}"
        return f"a {down.grain} asset reads the {up_unit} that holds its {down_unit}"
    return "each partition reads the upstream partition of the same key"


def pulled_in_lines(pulls: Sequence[PulledIn]) -> list[str]:
    """What ``--dry-run`` prints under the runs: one line per pull (the first ``_SHOWN``, then how many more)."""
    if not pulls:
        return []
    total = sum(len(p.partitions) for p in pulls)
    lines = [f"Also runs {total} upstream partition{'s' if total != 1 else ''} outside what was asked, because "
             "planned partitions read them:"]
    for pull in pulls[:_SHOWN]:
        lines.append("  " + pull.describe())
    if len(pulls) > _SHOWN:
        lines.append(f"  ... and {len(pulls) - _SHOWN} more (--json lists every one)")
    return lines


_ORDER = ("hourly", "daily", "weekly", "monthly")


def _coarser(a: str, b: str) -> bool:
    return a in _ORDER and b in _ORDER and _ORDER.index(a) > _ORDER.index(b)


__all__ = ["Pull", "PulledIn", "explain_pulls", "make_pull", "pull_reason", "pulled_in_lines"]
