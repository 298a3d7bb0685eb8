"""``StalenessReport.apply``: fold new store rows into a report and recompute only what they can reach.

A mixin of ``StalenessReport`` (staleness.py): the full pass computes every asset in topological order; this walks
from the changed partitions downstream through the partition edges, recomputing only readers of what changed.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from notebook_orch.core.mappings import readers_of
from notebook_orch.core.state_columns import AssetColumns, load_rows

if TYPE_CHECKING:
    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.store.records import AssetStates


class IncrementalMixin:
    """Incremental updates of ``StalenessReport``."""

    # Provided by StalenessReport:
    graph: AssetGraph
    event_id: int
    _states: dict[str, AssetColumns]
    _running: dict[tuple[str, str], str]
    _moved_versions: dict[str, Any]
    _reloaded: dict[str, Any]

    if TYPE_CHECKING:
        def _compute(self, name: str, idx: Any, tested: tuple[Any, Any] | None = None) -> None: ...

    def apply(
        self,
        changed: Mapping[str, AssetStates],
        *,
        running: Mapping[tuple[str, str], str] | None = None,
        event_id: int | None = None,
    ) -> set[tuple[str, str]]:
        """Fold new store rows (and the current running set) in; recompute only what they can reach.

        Returns the (asset, partition) pairs whose status or causes changed.
        """
        import numpy as np

        pending: dict[str, set[int]] = {}
        touched_data: dict[str, np.ndarray] = {}
        for name, rows in changed.items():
            if name not in self._states:
                continue
            st = self._states[name]
            before = st.data_seq.copy()
            index = st.index_map()
            before_version = {i: st.data_version[i] for i in (index.get(k) for k in rows.partitions) if i is not None}
            pos = load_rows(st, rows)
            where = np.arange(len(st.keys))[pos]
            pending.setdefault(name, set()).update(where.tolist())
            # data_seq moves whenever the data does (appearing included): readers must re-check what they read.
            moved = where[before[where] != st.data_seq[where]]
            touched_data[name] = np.sort(moved)
            # For _verify: which moved to another version (not back to the one this report knew), which reloaded.
            self._moved_versions[name] = np.array(
                [q for q in moved.tolist() if before_version[q] != st.data_version[q]], dtype=np.int64)
            self._reloaded[name] = np.zeros(len(st.keys), dtype=bool)
            self._reloaded[name][where] = True
        try:
            return self._propagate(pending, touched_data, running, event_id)
        finally:
            self._moved_versions, self._reloaded = {}, {}

    def _propagate(
        self,
        pending: dict[str, set[int]],
        touched_data: dict[str, Any],
        running: Mapping[tuple[str, str], str] | None,
        event_id: int | None,
    ) -> set[tuple[str, str]]:
        import numpy as np

        result: set[tuple[str, str]] = set()
        if running is not None:
            for key in set(self._running) ^ set(running):
                name, part = key
                st = self._states.get(name)
                if st is None or part not in st.keys:
                    continue
                st.running[st.index(part)] = key in running
                result.add(key)
            self._running = dict(running)
        if event_id is not None:
            self.event_id = event_id
        position = self.graph.position
        heap = [(position[n], n) for n in pending]
        heapq.heapify(heap)
        while heap:
            _, name = heapq.heappop(heap)
            st = self._states[name]
            idx = np.array(sorted(pending.pop(name)), dtype=np.int64)
            old_base, old_causes = st.base[idx].copy(), st.causes[idx].copy()
            self._compute(name, idx)
            differs = (st.base[idx] != old_base) | (st.causes[idx] != old_causes)
            result.update((name, st.keys[j]) for j in idx[differs].tolist())
            emit = np.union1d(idx[st.base[idx] != old_base], touched_data.get(name, np.empty(0, np.int64)))
            if len(emit) == 0:
                continue
            for edge_down, lo, hi in self._down_edges(name):
                readers = readers_of(lo, hi, emit)
                if len(readers):
                    if edge_down not in pending:
                        heapq.heappush(heap, (position[edge_down], edge_down))
                        pending[edge_down] = set()
                    pending[edge_down].update(readers.tolist())
        return result

    def _down_edges(self, name: str) -> list[tuple[str, Any, Any]]:
        out = []
        for edge in self.graph.downstream_edges(name):
            for mine in self._states[edge.downstream].edges:
                if mine.upstream == name:
                    out.append((edge.downstream, mine.lo, mine.hi))
        return out


__all__ = ["IncrementalMixin"]
