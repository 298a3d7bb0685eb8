"""What a materialization read, against what is there now: the second step of "upstream data changed" (pure).

The sequence test (``data_seq`` above ``inputs_seq``) is cheap and never misses a change, but it also fires when
data went A -> B -> A, and it cannot see an ``[all]`` partition that is gone. Where it fires, the data versions a
materialization consumed are compared with today's. They come from the caller's lookup (the store's
``consumed_versions``); materializations never change, so each answer is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from notebook_orch.core.state_columns import AssetColumns, Edge

# ``lookup(materialization_ids)`` -> for each id, the (upstream asset, partition, data version) it read.
ConsumedLookup = Callable[[Sequence[int]], Mapping[int, Iterable[tuple[str, str, str]]]]
# What one materialization read: upstream asset -> partition key -> data version.
Read = dict[str, dict[str, str]]


@dataclass(frozen=True)
class EdgeChange:
    """How what a partition read through one edge differs from what the upstream holds now."""

    changed: tuple[int, ...] = ()  # upstream indexes holding other data than was read
    added: tuple[int, ...] = ()  # [all]: materialized since, not read
    withdrawn: tuple[str, ...] = ()  # [all]: read then, and not materialized (or not a partition) now

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.withdrawn)


class ConsumedReads:
    """What materializations read, fetched through ``lookup`` (None: unknown, the sequence test decides)."""

    def __init__(self, lookup: ConsumedLookup | None) -> None:
        self.lookup = lookup
        self._reads: dict[int, Read] = {}

    def fetch(self, mat_ids: Iterable[int]) -> None:
        """One lookup for every id not known yet."""
        if self.lookup is None:
            return
        wanted = sorted({m for m in mat_ids if m >= 0 and m not in self._reads})
        if not wanted:
            return
        found = self.lookup(wanted)
        for m in wanted:
            read: Read = {}
            for asset, key, version in found.get(m, ()):
                read.setdefault(asset, {})[key] = version
            self._reads[m] = read

    def read_by(self, st: AssetColumns, p: int) -> Read | None:
        """What ``st[p]``'s materialization read, or None when unknown (no lookup)."""
        if st.inputs_seq[p] <= 0:
            return {}  # inputs_seq is the newest data_seq read, and every data_seq is >= 1: it read nothing
        mat_id = int(st.mat_id[p])
        if self.lookup is None or mat_id < 0:
            return None
        if mat_id not in self._reads:
            self.fetch([mat_id])
        return self._reads[mat_id]


def edge_change(st: AssetColumns, p: int, edge: Edge, up: AssetColumns, read: Read | None) -> EdgeChange:
    """How what ``st[p]`` read through ``edge`` (from ``up``) differs from what is there now. Only upstream
    partitions the sequence test flags are compared: the others hold what they held when ``st[p]`` was built."""
    import numpy as np

    lo, hi = int(edge.lo[p]), int(edge.hi[p])
    newer = (np.nonzero(up.present[lo:hi] & (up.data_seq[lo:hi] > st.inputs_seq[p]))[0] + lo).tolist()
    if read is None:
        return EdgeChange(changed=tuple(newer))
    seen = read.get(edge.upstream, {})
    changed: list[int] = []
    added: list[int] = []
    for q in newer:
        version = seen.get(up.keys[q])
        if version is None and edge.existing:
            added.append(q)
        elif version != up.data_version[q]:
            changed.append(q)
    withdrawn: list[str] = []
    if edge.existing and seen:
        index = up.index_map()
        for key in seen:
            q = index.get(key)
            if q is None or not lo <= q < hi or not up.present[q]:
                withdrawn.append(key)
    return EdgeChange(tuple(changed), tuple(added), tuple(withdrawn))


__all__ = ["ConsumedLookup", "ConsumedReads", "EdgeChange", "Read", "edge_change"]
