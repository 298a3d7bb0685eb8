"""``StalenessReport.explain``: one partition's status with every cause spelled out and its root causes upstream.

A mixin of ``StalenessReport`` (staleness.py), which computes the columns this reads; kept apart because turning
cause bits into words is a job of its own (pure, like the rest of core/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notebook_orch.core.stale_causes import (
    PartitionStatus,
    RootCause,
    StaleCause,
    data_cause,
    list_partitions,
    to_datetime,
)
from notebook_orch.core.state_columns import (
    BAD_BITS,
    CAUSE_NAMES,
    CODE_CHANGED,
    DEPS_CHANGED,
    DIRECT,
    FAILED_C,
    FRESH_C,
    MISSING_C,
    STATUSES,
    UPSTREAM_DATA_CHANGED,
    AssetColumns,
    Edge,
)
from notebook_orch.core.status import CauseKind

if TYPE_CHECKING:
    from notebook_orch.core.consumed import ConsumedReads, EdgeChange, Read
    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.status import Status


class ExplainMixin:
    """What ``StalenessReport`` says about one partition, in words."""

    # Provided by StalenessReport:
    graph: AssetGraph
    _states: dict[str, AssetColumns]
    _running: dict[tuple[str, str], str]
    _consumed: ConsumedReads

    if TYPE_CHECKING:
        def _state(self, asset: str) -> AssetColumns: ...
        def _index_of(self, asset: str, st: AssetColumns, partition: str) -> int: ...
        def status(self, asset: str, partition: str) -> Status: ...
        def _edge_change(self, st: AssetColumns, p: int, edge: Edge, read: Read | None) -> EdgeChange: ...

    def explain(self, asset: str, partition: str) -> PartitionStatus:
        """The status of one partition with every cause spelled out and the root causes found upstream."""
        st = self._state(asset)
        i = self._index_of(asset, st, partition)
        bits = int(st.causes[i])
        present = bool(st.present[i])
        causes = self._own_causes(asset, st, i, bits) if present else []
        read = self._consumed.read_by(st, i) if present else None
        notes: list[str] = []
        for edge in st.edges:
            up = self._states[edge.upstream]
            lo, hi = int(edge.lo[i]), int(edge.hi[i])
            if present and bits & UPSTREAM_DATA_CHANGED:
                change = self._edge_change(st, i, edge, read)
                if change:
                    causes.append(data_cause(edge.upstream, up, change))
            if edge.existing and present and hi > lo:
                built = len(read.get(edge.upstream, {})) if read is not None else int(up.present[lo:hi].sum())
                notes.append(f"built from {built} of {hi - lo} partitions of {edge.upstream}")
            for q_code, bit in BAD_BITS.items():
                if not bits & bit:
                    continue
                hit = [q for q in self._bad_upstream(edge, i) if up.base[q] == q_code]
                if hit:
                    word = STATUSES[q_code].lower()
                    causes.append(StaleCause(
                        CAUSE_NAMES[bit],
                        f"upstream {word}: {list_partitions(edge.upstream, [up.keys[q] for q in hit])} "
                        f"{'is' if len(hit) == 1 else 'are'} {word}",
                        edge.upstream, tuple(up.keys[q] for q in hit),
                    ))
        if present and (st.failed[i] or st.canceled[i]):
            what = "failed" if st.failed[i] else "was canceled"
            notes.append(f"the last attempt (run {st.last_run[i]}) {what}; the value shown is from an earlier run")
        return PartitionStatus(
            asset=asset,
            partition=partition,
            status=self.status(asset, partition),
            causes=tuple(causes),
            root_causes=tuple(self._root_causes(asset, i)) if bits & ~DIRECT else (),
            running_run_id=self._running.get((asset, partition)),
            last_run_id=st.last_run[i],
            materialization_id=int(st.mat_id[i]) if st.mat_id[i] >= 0 else None,
            materialized_at=to_datetime(float(st.mat_time[i])),
            notes=tuple(notes),
        )

    def _own_causes(self, asset: str, st: AssetColumns, i: int, bits: int) -> list[StaleCause]:
        causes: list[StaleCause] = []
        if bits & CODE_CHANGED:
            causes.append(StaleCause(
                CauseKind.CODE_CHANGED,
                f"code changed: built with code version {st.built_code[i]}, the cell "
                f"({self.graph.spec(asset).location}) is now {st.code_version}",
            ))
        if bits & DEPS_CHANGED:
            before = set(filter(None, (st.built_deps[i] or "").split(",")))
            now = set(filter(None, st.deps_signature.split(",")))
            added, removed = sorted(now - before), sorted(before - now)
            parts = ([f"added {', '.join(added)}"] if added else []) + (
                [f"removed {', '.join(removed)}"] if removed else [])
            causes.append(StaleCause(CauseKind.DEPENDENCIES_CHANGED, "dependencies changed: " + "; ".join(parts)))
        return causes

    def _bad_upstream(self, edge: Edge, i: int) -> list[int]:
        """Upstream indexes that ``edge`` reads for partition ``i`` and that pass a cause down (see _compute)."""
        up = self._states[edge.upstream]
        lo, hi = int(edge.lo[i]), int(edge.hi[i])
        skip = (FRESH_C, MISSING_C, FAILED_C) if edge.existing and up.present[lo:hi].any() else (FRESH_C,)
        return [q for q in range(lo, hi) if up.base[q] not in skip]

    def _root_causes(self, asset: str, i: int) -> list[RootCause]:
        """Walk up through not-fresh upstream partitions to the ones that are bad for their own reasons."""
        roots: list[RootCause] = []
        seen = {(asset, i)}
        todo = [(asset, i)]
        while todo:
            name, j = todo.pop()
            st = self._states[name]
            for edge in st.edges:
                up = self._states[edge.upstream]
                for q in self._bad_upstream(edge, j):
                    if (edge.upstream, q) in seen:
                        continue
                    seen.add((edge.upstream, q))
                    own = int(up.causes[q]) & DIRECT
                    if up.base[q] in (MISSING_C, FAILED_C) or own:
                        kinds = tuple(CAUSE_NAMES[b] for b in (CODE_CHANGED, DEPS_CHANGED, UPSTREAM_DATA_CHANGED)
                                      if own & b)
                        roots.append(RootCause(edge.upstream, up.keys[q], STATUSES[int(up.base[q])], kinds))
                    if int(up.causes[q]) & ~DIRECT:
                        todo.append((edge.upstream, q))
        return sorted(roots, key=lambda r: (self.graph.position[r.asset], r.partition))


__all__ = ["ExplainMixin"]
