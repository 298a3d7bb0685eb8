"""Column-wise partition states of one asset, the numbers the staleness rules work on (pure, numpy).

One ``AssetColumns`` per asset holds arrays aligned with the asset's partition keys: what the store's snapshot
says about each partition (materialized or not, versions, sequences, the last attempt) and what the rules derived
(status code and cause bits). ``staleness.py`` owns the rules; this module only holds and loads the columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from notebook_orch.core.status import CauseKind, RunStatus, Status

if TYPE_CHECKING:
    from notebook_orch.store.records import AssetStates

STATUSES: tuple[Status, ...] = tuple(Status)
# Status codes: indexes into STATUSES (int8 columns).
FRESH_C, STALE_C, MISSING_C, FAILED_C, RUNNING_C, INVALID_C = (STATUSES.index(s) for s in Status)

# Cause bits (int16 columns); CAUSE_NAMES turns them into the vocabulary's words.
CODE_CHANGED, DEPS_CHANGED, UPSTREAM_DATA_CHANGED = 1, 2, 4
UPSTREAM_STALE, UPSTREAM_MISSING, UPSTREAM_FAILED = 8, 16, 32
DIRECT = CODE_CHANGED | DEPS_CHANGED | UPSTREAM_DATA_CHANGED
CAUSE_NAMES: dict[int, CauseKind] = {
    CODE_CHANGED: CauseKind.CODE_CHANGED,
    DEPS_CHANGED: CauseKind.DEPENDENCIES_CHANGED,
    UPSTREAM_DATA_CHANGED: CauseKind.UPSTREAM_DATA_CHANGED,
    UPSTREAM_STALE: CauseKind.UPSTREAM_STALE,
    UPSTREAM_MISSING: CauseKind.UPSTREAM_MISSING,
    UPSTREAM_FAILED: CauseKind.UPSTREAM_FAILED,
}
_SUCCEEDED = frozenset({RunStatus.SUCCESS.value})
# What an upstream partition's status passes downstream, as bits.
BAD_BITS = {STALE_C: UPSTREAM_STALE, MISSING_C: UPSTREAM_MISSING, FAILED_C: UPSTREAM_FAILED}


class Edge(NamedTuple):
    """Partition ``i`` of the downstream reads upstream partitions ``lo[i]`` to ``hi[i] - 1``.

    ``existing``: the dependency is ``[all]``, which reads the partitions that are materialized when the run starts
    (so a missing one is not missed, and one added or withdrawn later is a change).
    """

    upstream: str
    lo: Any
    hi: Any
    existing: bool


@dataclass
class AssetColumns:
    """Mutable columns for one asset, aligned with its partition keys."""

    keys: tuple[str, ...]
    code_version: str
    deps_signature: str
    present: Any
    code_ok: Any
    deps_ok: Any
    data_seq: Any
    inputs_seq: Any
    data_version: list  # a list, not an array: read one item at a time, and a list is 10x cheaper to build
    failed: Any  # the last attempt FAILED
    canceled: Any  # the last attempt was CANCELED
    running: Any
    mat_id: Any
    mat_time: Any
    built_code: Any
    built_deps: Any
    last_run: list
    base: Any  # status code, RUNNING not applied (what downstream sees)
    causes: Any  # cause bits
    edges: list[Edge] = field(default_factory=list)
    # The store holds materialized partitions that are not among today's keys (the partitions definition shrank):
    # an [all] reader built from one of them read something that is gone.
    orphaned: bool = False
    _index: dict[str, int] | None = None

    def index(self, key: str) -> int:
        return self.index_map()[key]

    def index_map(self) -> dict[str, int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys)}
        return self._index


def empty_columns(keys: tuple[str, ...], code_version: str, deps_signature: str) -> AssetColumns:
    import numpy as np

    n = len(keys)
    return AssetColumns(
        keys=keys,
        code_version=code_version,
        deps_signature=deps_signature,
        present=np.zeros(n, dtype=bool),
        code_ok=np.zeros(n, dtype=bool),
        deps_ok=np.zeros(n, dtype=bool),
        data_seq=np.full(n, -1, dtype=np.int64),
        inputs_seq=np.zeros(n, dtype=np.int64),
        data_version=[None] * n,
        failed=np.zeros(n, dtype=bool),
        canceled=np.zeros(n, dtype=bool),
        running=np.zeros(n, dtype=bool),
        mat_id=np.full(n, -1, dtype=np.int64),
        mat_time=np.full(n, math.nan),
        built_code=np.full(n, None, dtype=object),
        built_deps=np.full(n, None, dtype=object),
        last_run=[None] * n,
        base=np.full(n, MISSING_C, dtype=np.int8),
        causes=np.zeros(n, dtype=np.int16),
    )


def load_rows(st: AssetColumns, rows: AssetStates) -> Any:
    """Copy store rows into the columns; returns the positions written (rows for unknown keys are ignored, but a
    materialized one marks the asset ``orphaned``)."""
    import numpy as np

    if rows.partitions == st.keys:
        pos: Any = slice(None)
        take: Any = slice(None)
    else:
        index = st.index_map()
        found = []
        for j, k in enumerate(rows.partitions):
            i = index.get(k)
            if i is not None:
                found.append((i, j))
            elif rows.materialization_id[j] is not None:
                st.orphaned = True
        pos = np.fromiter((p for p, _ in found), dtype=np.int64, count=len(found))
        take = np.fromiter((j for _, j in found), dtype=np.int64, count=len(found))
    mat_id = _ints(np, rows.materialization_id)[take]
    st.mat_id[pos] = mat_id
    present = mat_id >= 0
    st.present[pos] = present
    _load_text(np, st.built_code, st.code_ok, pos, take, rows.code_version, st.code_version)
    _load_text(np, st.built_deps, st.deps_ok, pos, take, rows.deps_signature, st.deps_signature)
    st.data_seq[pos] = np.where(present, _ints(np, rows.data_seq)[take], -1)
    st.inputs_seq[pos] = _ints(np, rows.inputs_seq)[take]
    if set(rows.last_status) <= _SUCCEEDED:  # the common case, decided without comparing every row
        st.failed[pos] = st.canceled[pos] = False
    else:
        last = np.array(rows.last_status, dtype=object)[take]
        st.failed[pos] = last == RunStatus.FAILED.value
        st.canceled[pos] = last == RunStatus.CANCELED.value
    times = rows.materialized_at
    st.mat_time[pos] = np.array([math.nan if t is None else t for t in times] if None in times else times,
                                dtype=float)[take]
    if isinstance(pos, slice):
        st.last_run = list(rows.last_run_id)
        st.data_version = list(rows.data_version)
    else:
        for p, j in zip(pos.tolist(), take.tolist()):
            st.last_run[p] = rows.last_run_id[j]
            st.data_version[p] = rows.data_version[j]
    return pos


def _ints(np: Any, column: tuple) -> Any:
    """An int64 array of ``column`` with None as -1 (the per-item pass only when a None is there)."""
    if None in column:
        return np.array([-1 if v is None else v for v in column], dtype=np.int64)
    return np.fromiter(column, dtype=np.int64, count=len(column))  # twice as fast as np.array on a tuple


def _load_text(np: Any, built: Any, ok: Any, pos: Any, take: Any, column: tuple, current: str) -> None:
    """``built[pos] = column[take]`` and ``ok[pos] = (that == current)``. A whole asset usually holds one value
    (every partition built by the same code): then one comparison decides, not one per partition."""
    first = column[0] if column else None
    if column and column.count(first) == len(column):
        built[pos] = first
        ok[pos] = first == current
        return
    values = np.array(column, dtype=object)[take]
    built[pos] = values
    ok[pos] = values == current


def bad_bits(base: Any) -> Any:
    """The cause bit each upstream partition passes downstream (0 for fresh)."""
    import numpy as np

    out = np.zeros(len(base), dtype=np.int16)
    for code, bit in BAD_BITS.items():
        out[base == code] = bit
    return out


def range_or(bits: Any, lo: Any, hi: Any) -> Any:
    """Bitwise OR of ``bits[lo[i]:hi[i]]`` for every i (0 when empty)."""
    import numpy as np

    if len(lo) == 0:
        return np.zeros(0, dtype=np.int16)
    if len(bits) == 0:
        return np.zeros(len(lo), dtype=np.int16)
    width = hi - lo
    if width.max() <= 1:
        return np.where(width == 1, bits[np.minimum(lo, len(bits) - 1)], 0).astype(np.int16)
    extended = np.append(bits, np.zeros(1, dtype=bits.dtype))
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2] = lo
    bounds[1::2] = hi
    return np.where(width > 0, np.bitwise_or.reduceat(extended, bounds)[0::2], 0).astype(np.int16)


def readers_mask(lo: Any, hi: Any, changed: Any) -> Any:
    """For every i: does ``lo[i]:hi[i]`` contain any of the sorted indexes ``changed``?"""
    import numpy as np

    return (np.searchsorted(changed, hi, side="left") - np.searchsorted(changed, lo, side="left")) > 0


def range_any(flags: Any, lo: Any, hi: Any) -> Any:
    """``flags[lo[i]:hi[i]].any()`` for every i, through prefix sums."""
    import numpy as np

    prefix = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return prefix[hi] > prefix[lo]


__all__ = [
    "AssetColumns",
    "BAD_BITS",
    "CAUSE_NAMES",
    "Edge",
    "STATUSES",
    "bad_bits",
    "empty_columns",
    "load_rows",
    "range_any",
    "range_or",
    "readers_mask",
]
