"""Which partitions are FRESH, STALE (and why), MISSING, FAILED or RUNNING (pure: graph + snapshot -> report).

The rule every other follows: **STALE means materializing clears it.** For one (asset, partition) with a value:

* code changed — its code version differs from the cell's current one;
* dependencies changed — the declared dependencies differ from those it was built with;
* upstream data changed — an upstream partition it reads now holds data other than what it read. Two steps: the
  cheap sequence test (an upstream ``data_seq`` above the ``inputs_seq`` this partition consumed; rematerializing
  to identical data keeps ``data_seq``) picks the suspects, then the data versions it consumed are compared with
  the current ones, so data that went A -> B -> A is no change. For ``[all]`` a partition materialized since, or
  one read then and gone now, is a change too;
* upstream stale / missing / failed — transitively, some upstream partition it reads is not fresh (its own kind,
  with the root cause found by walking up). ``[all]`` reads the partitions that exist, so a missing one counts
  only when none exists.

A failed or canceled attempt over an existing value leaves that value's status (with a note); a FAILED partition
is one whose last attempt failed with nothing materialized; a canceled one with nothing is MISSING.

Every partition edge counts: windows, ``[all]`` and grain changes included, with no threshold. The work is
column-wise per asset (numpy over the asset's partitions, upstream first), so 365,000 partition states take a
fraction of a second; consumed data versions are looked up (through the ``consumed`` callable the caller passes,
materializations never change) only for the suspects. ``apply`` recomputes only what changed rows can reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from notebook_orch.core.consumed import ConsumedLookup, ConsumedReads, EdgeChange, Read, edge_change
from notebook_orch.core.mappings import range_max, readers_of, upstream_ranges
from notebook_orch.core.specs import AllPartitions
from notebook_orch.core.stale_causes import (
    PartitionStatus,
    RootCause,
    StaleCause,
    to_datetime,
)
from notebook_orch.core.stale_explain import ExplainMixin
from notebook_orch.core.stale_incremental import IncrementalMixin
from notebook_orch.core.state_columns import (
    CAUSE_NAMES,
    CODE_CHANGED,
    DEPS_CHANGED,
    FAILED_C,
    FRESH_C,
    MISSING_C,
    RUNNING_C,
    STALE_C,
    STATUSES,
    UPSTREAM_DATA_CHANGED,
    UPSTREAM_STALE,
    AssetColumns,
    Edge,
    bad_bits,
    empty_columns,
    load_rows,
    range_any,
    range_or,
    readers_mask,
)
from notebook_orch.core.status import Status
from notebook_orch.errors import PartitionError

if TYPE_CHECKING:
    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.store.records import StoreSnapshot

FRESH, STALE, MISSING, FAILED, RUNNING, INVALID = Status  # the vocabulary, re-exported for old imports



class StalenessReport(ExplainMixin, IncrementalMixin):
    """The status of every partition of every asset, with reasons on demand (``explain``: stale_explain.py). Update
    with ``apply`` (stale_incremental.py)."""

    def __init__(
        self,
        graph: AssetGraph,
        states: dict[str, AssetColumns],
        now: datetime,
        event_id: int,
        consumed: ConsumedLookup | None = None,
    ) -> None:
        self.graph = graph
        self.now = now
        self.event_id = event_id
        self._states = states
        self._running: dict[tuple[str, str], str] = {}
        self._consumed = ConsumedReads(consumed)
        # Set only while ``apply`` runs: per asset, the sorted indexes whose data version just changed / a mask of
        # the rows reloaded.
        self._moved_versions: dict[str, Any] = {}
        self._reloaded: dict[str, Any] = {}

    # -- computing ---------------------------------------------------------------------------------------
    def _sequence_test(self, name: str, idx: Any) -> tuple[Any, Any]:
        """The cheap pre-filter, over ``name``'s partitions ``idx``: ``(suspect, sure)``.

        ``suspect``: an upstream partition it reads has a ``data_seq`` above its ``inputs_seq`` (or an ``[all]``
        upstream lost partitions): what it read may differ from what is there now. ``sure``: suspects that read
        nothing at all (``inputs_seq`` 0, while every ``data_seq`` is >= 1) and now have something to read.
        Inside ``apply``, suspects that read the same data as before and now read a partition whose data version
        just changed are sure too: they read the old version. Only the rest need their consumed versions.
        """
        import numpy as np

        st = self._states[name]
        present = st.present[idx]
        inputs_seq = st.inputs_seq[idx]
        fired = np.zeros(len(present), dtype=bool)
        orphans = hit = None  # rare: allocated only when needed (this runs for every asset of a full pass)
        for edge in st.edges:
            up = self._states[edge.upstream]
            lo_i, hi_i = edge.lo[idx], edge.hi[idx]
            fired |= range_max(up.data_seq, lo_i, hi_i, -1) > inputs_seq
            if edge.existing and up.orphaned:
                orphans = (hi_i > lo_i) if orphans is None else orphans | (hi_i > lo_i)
            moved = self._moved_versions.get(edge.upstream)
            if moved is not None and len(moved):
                found = readers_mask(lo_i, hi_i, moved)
                hit = found if hit is None else hit | found
        fired &= present
        suspect = fired if orphans is None else fired | (orphans & present)
        if not suspect.any():
            return suspect, suspect
        sure = fired & (inputs_seq <= 0)
        if hit is not None and hit.any():
            clean = (st.causes[idx] & UPSTREAM_DATA_CHANGED) == 0
            reloaded = self._reloaded.get(name)
            if reloaded is not None:
                clean &= ~reloaded[idx]
            sure |= fired & clean & hit
        return suspect, sure

    def _compute(self, name: str, idx: Any, tested: tuple[Any, Any] | None = None) -> None:
        """Status and cause bits of ``name``'s partitions ``idx`` (its upstream computed already); ``tested`` is
        ``_sequence_test(name, idx)`` when the caller has it."""
        import numpy as np

        st = self._states[name]
        present = st.present[idx]
        direct = np.where(present & ~st.code_ok[idx], CODE_CHANGED, 0).astype(np.int16)
        direct |= np.where(present & ~st.deps_ok[idx], DEPS_CHANGED, 0).astype(np.int16)
        suspect, sure = self._sequence_test(name, idx) if tested is None else tested
        if suspect.any():
            changed = sure.copy()
            unsure = suspect & ~sure
            if unsure.any():
                changed[unsure] = self._verify(st, np.arange(len(st.keys))[idx][unsure])
            direct[changed] |= UPSTREAM_DATA_CHANGED
        inherited = np.zeros_like(direct)
        for edge in st.edges:
            up = self._states[edge.upstream]
            lo_i, hi_i = edge.lo[idx], edge.hi[idx]
            bad = bad_bits(up.base)
            if edge.existing:
                # [all] reads what exists: a missing or failed partition matters only when none exists at all.
                some = range_any(up.present, lo_i, hi_i)
                inherited |= np.where(some, range_or(bad & UPSTREAM_STALE, lo_i, hi_i), range_or(bad, lo_i, hi_i))
            else:
                inherited |= range_or(bad, lo_i, hi_i)
        causes = direct | inherited
        underlying = np.where(present, np.where(causes != 0, STALE_C, FRESH_C), MISSING_C).astype(np.int8)
        # A failed attempt over an existing value leaves that value (fresh or stale) in place; one with nothing
        # materialized is FAILED. A canceled attempt changes nothing: over nothing it is MISSING.
        st.base[idx] = np.where(st.failed[idx] & ~present, FAILED_C, underlying).astype(np.int8)
        st.causes[idx] = causes

    def _verify(self, st: AssetColumns, where: Any) -> list[bool]:
        """For suspects ``where``: does what each read differ from what is there now? (consumed versions)"""
        rest = where.tolist()
        self._consumed.fetch(int(st.mat_id[p]) for p in rest if st.inputs_seq[p] > 0)  # one lookup for all
        return [any(self._edge_change(st, p, e, self._consumed.read_by(st, p)) for e in st.edges) for p in rest]

    def _edge_change(self, st: AssetColumns, p: int, edge: Edge, read: Read | None) -> EdgeChange:
        return edge_change(st, p, edge, self._states[edge.upstream], read)


    # -- reading -----------------------------------------------------------------------------------------
    def _state(self, asset: str) -> AssetColumns:
        try:
            return self._states[asset]
        except KeyError:
            self.graph.spec(asset)  # raises with close matches
            raise

    def keys(self, asset: str) -> tuple[str, ...]:
        return self._state(asset).keys

    def status_codes(self, asset: str) -> Any:
        """int8 array of status codes (indexes into STATUSES), RUNNING shown over the underlying status."""
        import numpy as np

        st = self._state(asset)
        return np.where(st.running, RUNNING_C, st.base).astype(np.int8)

    def counts(self, asset: str) -> dict[Status, int]:
        import numpy as np

        counts = np.bincount(self.status_codes(asset), minlength=len(STATUSES))
        return {s: int(c) for s, c in zip(STATUSES, counts)}

    def totals(self) -> dict[Status, int]:
        total = dict.fromkeys(STATUSES, 0)
        for name in self._states:
            for k, v in self.counts(name).items():
                total[k] += v
        return total

    def partitions_with(self, asset: str, status: str) -> list[str]:
        import numpy as np

        codes = self.status_codes(asset)
        keys = self._state(asset).keys
        return [keys[i] for i in np.nonzero(codes == STATUSES.index(Status(status)))[0].tolist()]

    def status(self, asset: str, partition: str) -> Status:
        st = self._state(asset)
        i = self._index_of(asset, st, partition)
        return STATUSES[RUNNING_C if st.running[i] else int(st.base[i])]

    def _index_of(self, asset: str, st: AssetColumns, partition: str) -> int:
        try:
            return st.index(partition)
        except KeyError:
            self.graph.spec(asset).partitions.index_of(partition, now=self.now)  # raises the precise error
            raise PartitionError(f"Partition {partition!r} is not a partition of asset {asset!r}.") from None

    def last_materialized(self, asset: str) -> tuple[str, datetime] | None:
        """The partition materialized most recently and when, or None if none ever was."""
        import numpy as np

        st = self._state(asset)
        if not st.present.any():
            return None
        i = int(np.nanargmax(np.where(st.present, st.mat_time, -np.inf)))
        when = to_datetime(float(st.mat_time[i]))
        return (st.keys[i], when) if when else None

    def upstream_partitions(self, asset: str, partition: str) -> list[tuple[str, str, Status]]:
        """Every upstream (asset, partition, status) that ``asset[partition]`` reads, through every mapping."""
        st = self._state(asset)
        i = self._index_of(asset, st, partition)
        out = []
        for edge in st.edges:
            up = self._states[edge.upstream]
            for q in range(int(edge.lo[i]), int(edge.hi[i])):
                out.append((edge.upstream, up.keys[q], STATUSES[RUNNING_C if up.running[q] else int(up.base[q])]))
        return out

    def readers(self, asset: str, indexes: Any) -> dict[str, Any]:
        """For sorted partition indexes of ``asset``: the partition indexes of each direct downstream reading them."""
        return {down: readers_of(lo, hi, indexes) for down, lo, hi in self._down_edges(asset)}

    def latest_materialization_id(self, asset: str, partition: str) -> int | None:
        st = self._state(asset)
        m = int(st.mat_id[self._index_of(asset, st, partition)])
        return None if m < 0 else m



def resolve_staleness(
    graph: AssetGraph, snapshot: StoreSnapshot, *, now: datetime, consumed: ConsumedLookup | None = None
) -> StalenessReport:
    """Compute the full report from a consistent snapshot of the store.

    ``consumed`` looks up what materializations read (``MetadataStore.consumed_versions``); it is asked only about
    partitions whose upstream sequence moved. Without it the sequence test alone decides, so a reverted value
    (A -> B -> A) still counts as a change and an [all] partition withdrawn since is not noticed.
    """
    states: dict[str, AssetColumns] = {}
    counts: dict[str, int] = {}
    for name in graph.order:
        spec = graph.spec(name)
        keys = spec.partitions.keys(now=now)
        counts[name] = len(keys)
        st = empty_columns(keys, spec.code_version, spec.deps_signature)
        rows = snapshot.assets.get(name)
        if rows is not None and rows.partitions:
            load_rows(st, rows)
        st.edges = [
            Edge(e.upstream, *upstream_ranges(spec.partitions, graph.spec(e.upstream).partitions, e.dep.mapping,
                                              len(keys), counts[e.upstream]),
                 isinstance(e.dep.mapping, AllPartitions))
            for e in graph.upstream_edges(name)
        ]
        states[name] = st
    report = StalenessReport(graph, states, now, snapshot.event_id, consumed)
    for (name, part), run_id in snapshot.running.items():
        st = states.get(name)
        if st is not None and part in st.keys:
            st.running[st.index(part)] = True
            report._running[(name, part)] = run_id
    # The sequence test needs no statuses, so every suspect is known first: one lookup for the whole graph.
    tested = {name: report._sequence_test(name, slice(None)) for name in graph.order}
    if consumed is not None:
        report._consumed.fetch(
            m for name, (suspect, sure) in tested.items() if suspect.any()
            for m, seq in zip(states[name].mat_id[suspect & ~sure].tolist(),
                              states[name].inputs_seq[suspect & ~sure].tolist()) if seq > 0
        )
    for name in graph.order:
        report._compute(name, slice(None), tested[name])
    return report


def stale_partitions(report: StalenessReport, assets: Iterable[str] | None = None) -> list[PartitionStatus]:
    """Every STALE partition with its causes (in topological order, then partition order)."""
    out = []
    for name in assets if assets is not None else report.graph.order:
        for key in report.partitions_with(name, Status.STALE):
            out.append(report.explain(name, key))
    return out


__all__ = [
    "CAUSE_NAMES",
    "ConsumedLookup",
    "FAILED",
    "FRESH",
    "INVALID",
    "MISSING",
    "PartitionStatus",
    "RUNNING",
    "RootCause",
    "STALE",
    "STATUSES",
    "StaleCause",
    "StalenessReport",
    "resolve_staleness",
    "stale_partitions",
]
