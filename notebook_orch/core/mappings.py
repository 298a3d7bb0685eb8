"""Which upstream partitions a downstream partition reads (pure).

Every mapping we support — identity, offset, window, all, and time-grain changes — sends a downstream partition to
a *contiguous* run of upstream partitions. So a whole edge is two integer arrays ``lo`` and ``hi``: downstream
partition ``i`` reads upstream partitions ``lo[i]`` to ``hi[i] - 1`` (empty when equal). Both arrays never decrease,
which makes the reverse question (which downstream partitions read upstream ``q``?) a binary search.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from notebook_orch.core.partitions import (
    PartitionsDef,
    StaticPartitions,
    TimeWindowPartitions,
    Unpartitioned,
)
from notebook_orch.core.specs import AllPartitions, Identity, Mapping, Offset, Window
from notebook_orch.errors import PartitionError

if TYPE_CHECKING:
    import numpy as np


def mapping_problem(down: PartitionsDef, up: PartitionsDef, mapping: Mapping) -> str | None:
    """Why ``mapping`` from ``up`` does not fit ``down``, or None when it fits."""
    shifted = isinstance(mapping, (Offset, Window))
    if isinstance(up, Unpartitioned):
        if shifted:
            return f"{mapping.describe()} needs a time-partitioned upstream, but the upstream is unpartitioned"
        return None
    if isinstance(mapping, AllPartitions):
        return None
    if isinstance(down, Unpartitioned):
        return (
            f"an unpartitioned asset cannot read one partition of a {up.grain}-partitioned upstream; "
            "write the dependency as NAME[all] to read every partition"
        )
    if isinstance(down, StaticPartitions) or isinstance(up, StaticPartitions):
        if shifted:
            return f"{mapping.describe()} needs time partitions on both sides; static lists have no order"
        if not (isinstance(down, StaticPartitions) and isinstance(up, StaticPartitions)):
            return (
                f"{down.describe()} and {up.describe()} are different kinds of partitions, so no key maps to "
                "another; read them all with NAME[all]"
            )
        missing = [k for k in down.static_keys if k not in set(up.static_keys)]
        if missing:
            return f"keys {missing} have no partition of the same key upstream ({up.describe()})"
        return None
    assert isinstance(down, TimeWindowPartitions) and isinstance(up, TimeWindowPartitions)
    if down.grain != up.grain:
        if shifted:
            return (
                f"{mapping.describe()} counts {down.grain} steps but the upstream is {up.grain}; "
                "offsets and windows need the same grain on both sides"
            )
        if down.start < up.start:
            return f"{down.describe()} starts before its upstream {up.describe()}"
        if up.end is not None and (down.end is None or down.window(down.index_at_time(down.end))[1] > up.window(
            up.index_at_time(up.end)
        )[1]):
            return f"{down.describe()} runs past the end of its upstream {up.describe()}"
        return None
    delta = up.index_at_time(down.start)
    try:
        lined_up = up.window_start(delta) == down.start
    except PartitionError:  # the upstream window holding down's start would begin before year 1
        return f"{down.describe()} starts before its upstream {up.describe()}"
    if not lined_up:
        return f"the {down.grain} windows of {down.describe()} and {up.describe()} do not line up"
    if isinstance(mapping, Identity):
        if delta < 0:
            return f"{down.describe()} starts before its upstream {up.describe()}"
        if up.end is not None and (down.end is None or down.end > up.end):
            return f"{down.describe()} runs past the end of its upstream {up.describe()}"
    return None


@lru_cache(maxsize=4096)
def upstream_ranges(
    down: PartitionsDef, up: PartitionsDef, mapping: Mapping, n_down: int, n_up: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` int64 arrays of length ``n_down``; see the module docstring. Cached: edges repeat a lot."""
    import numpy as np

    if isinstance(up, Unpartitioned) or isinstance(mapping, AllPartitions):
        lo = np.zeros(n_down, dtype=np.int64)
        hi = np.full(n_down, n_up, dtype=np.int64)
    elif isinstance(down, StaticPartitions) and isinstance(up, StaticPartitions):
        index = {k: i for i, k in enumerate(up.static_keys)}
        lo = np.array([index.get(k, 0) for k in down.static_keys[:n_down]], dtype=np.int64)
        hi = np.array([index[k] + 1 if k in index else 0 for k in down.static_keys[:n_down]], dtype=np.int64)
        lo = np.minimum(lo, hi)
    elif isinstance(down, TimeWindowPartitions) and isinstance(up, TimeWindowPartitions):
        if down.grain == up.grain:
            base = np.arange(n_down, dtype=np.int64) + up.index_at_time(down.start)
            if isinstance(mapping, Offset):
                lo, hi = base + mapping.offset, base + mapping.offset + 1
            elif isinstance(mapping, Window):
                lo, hi = base + mapping.start, base + mapping.end + 1
            else:
                lo, hi = base, base + 1
        else:
            # Grain change: every upstream window overlapping the downstream window.
            eps = timedelta(microseconds=1)
            lo = np.empty(n_down, dtype=np.int64)
            hi = np.empty(n_down, dtype=np.int64)
            for i in range(n_down):
                start, end = down.window(i)
                lo[i] = up.index_at_time(start)
                hi[i] = up.index_at_time(end - eps) + 1
        lo = np.clip(lo, 0, n_up)
        hi = np.clip(hi, 0, n_up)
        hi = np.maximum(hi, lo)
    else:
        raise ValueError(f"no mapping from {up.describe()} to {down.describe()} with {mapping!r}")
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


def range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, empty: int) -> np.ndarray:
    """``max(values[lo[i]:hi[i]])`` for every i, ``empty`` where the range is empty — vectorized."""
    import numpy as np

    width = hi - lo
    if len(lo) == 0:
        return np.empty(0, dtype=values.dtype)
    if len(values) == 0:
        return np.full(len(lo), empty, dtype=values.dtype)
    if width.max() <= 1:
        picked = values[np.minimum(lo, len(values) - 1)]
        return np.where(width == 1, picked, empty)
    extended = np.append(values, np.array([empty], dtype=values.dtype))  # so hi == len(values) is a valid index
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2] = lo
    bounds[1::2] = hi
    reduced = np.maximum.reduceat(extended, bounds)[0::2]
    return np.where(width > 0, reduced, empty)


def readers_of(lo: np.ndarray, hi: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """Indexes of downstream partitions whose range contains any of the sorted upstream indexes ``changed``."""
    import numpy as np

    if len(changed) == 0 or len(lo) == 0:
        return np.empty(0, dtype=np.int64)
    hits = np.searchsorted(changed, hi, side="left") - np.searchsorted(changed, lo, side="left")
    return np.nonzero(hits > 0)[0]
