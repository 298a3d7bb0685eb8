"""Partition keys as ranges a person can read: ``2013-02-01..2013-12-31 (334)`` instead of 334 keys.

Pure. A range is a run of keys that are consecutive in the partitions definition's own order (time order for
time windows, the declared order for a static list), so ``2013-01-01..2013-01-31`` means every day in between and
nothing else. Keys the definition does not know (a partition dropped from a static list, a window not ended yet)
are kept, each as a range of its own, after the known ones: nothing is ever left out of a count.

Every face uses these: the CLI, the magics, and the lineage widget's details.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["KeyRange", "describe_keys", "describe_ranges", "key_ranges"]


@dataclass(frozen=True)
class KeyRange:
    """``count`` consecutive keys from ``first`` to ``last`` (inclusive; equal for a single key)."""

    first: str
    last: str
    count: int

    def __str__(self) -> str:
        return self.first if self.count == 1 else f"{self.first}..{self.last}"


def key_ranges(keys: Iterable[str], order: Sequence[str]) -> tuple[KeyRange, ...]:
    """Compress ``keys`` into maximal runs of consecutive keys of ``order`` (duplicates counted once)."""
    position = {k: i for i, k in enumerate(order)}
    wanted = set(keys)
    known = sorted(position[k] for k in wanted if k in position)
    out: list[KeyRange] = []
    start = prev = None
    for i in known:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            out.append(KeyRange(order[start], order[prev], prev - start + 1))
        start = prev = i
    if start is not None:
        out.append(KeyRange(order[start], order[prev], prev - start + 1))
    # Unknown keys have no neighbours to join: one range each, in a stable order.
    out.extend(KeyRange(k, k, 1) for k in sorted(wanted - position.keys()))
    return tuple(out)


def describe_ranges(ranges: Sequence[KeyRange], *, limit: int = 4) -> str:
    """``a..b, c, d..e`` — at most ``limit`` ranges, then how many more ranges (and keys) there are."""
    shown = ", ".join(str(r) for r in ranges[:limit])
    rest = ranges[limit:]
    if rest:
        more = sum(r.count for r in rest)
        ranges_word = "range" if len(rest) == 1 else "ranges"
        shown += f" and {len(rest)} more {ranges_word} ({more} partition{'s' if more > 1 else ''})"
    return shown


def describe_keys(keys: Iterable[str], order: Sequence[str], *, limit: int = 4) -> str:
    """The keys as ranges (see ``describe_ranges``); a one-partition asset's ``unpartitioned`` key reads as is."""
    return describe_ranges(key_ranges(keys, order), limit=limit)
