"""Loading a cell's upstream values: from this run's own outputs, the session cache, or value storage.

What a partition reads is ``core.reads.upstream_reads``; where each upstream partition's value is (materialization
id, data version, path) is resolved from the store — by the worker before a run starts (the kernel of a run never
opens the store), or by the interactive cell itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notebook_orch.core.reads import UpstreamRead
from notebook_orch.core.specs import SOURCE_IO
from notebook_orch.errors import RunFailed
from notebook_orch.kernel.cache import SessionCache, private_copy
from notebook_orch.store.records import SAME_RUN, ConsumedInput


@dataclass(frozen=True)
class StoredInput:
    """One upstream partition as the store has it; ``storage_path`` None when not looked up yet."""

    materialization_id: int
    data_version: str
    data_seq: int
    storage_path: str | None = None
    io: str | None = None

    def to_json(self) -> list:
        return [self.materialization_id, self.data_version, self.data_seq, self.storage_path, self.io]

    @classmethod
    def from_json(cls, data: list) -> StoredInput:
        return cls(int(data[0]), str(data[1]), int(data[2]), data[3], data[4])


@dataclass
class Upstream:
    value: Any
    consumed: list[ConsumedInput] = field(default_factory=list)
    absent: tuple[str, ...] = ()  # an optional read's keys that were not materialized: the cell got None


def load_upstream(
    read: UpstreamRead,
    stored: Mapping[str, StoredInput],
    *,
    asset: str,
    partition: str,
    run_id: str,
    cell: int | None,
    produced: Mapping[tuple[str, str], tuple[str, str | None]],
    cache: SessionCache,
    load: Callable[[str], Any],
    paths_for: Callable[[list[int]], Mapping[int, tuple[str, str | None]]],
) -> Upstream:
    """The value ``asset[partition]`` gets for ``read``, and the exact inputs it consumed."""
    state: dict[str, StoredInput] = dict(stored)
    for key in read.keys:
        if (read.asset, key) in produced:  # this run's own output wins over what the store held before
            state[key] = StoredInput(SAME_RUN, produced[(read.asset, key)][0], SAME_RUN,
                                     produced[(read.asset, key)][1])
    missing = [k for k in read.keys if k not in state]
    if read.optional and (missing if not read.existing_only else read.keys and len(missing) == len(read.keys)):
        # Not required by the --trigger: absent as a whole (never part of a window), the cell tests `is None`.
        return Upstream(None, [], absent=tuple(missing))
    if missing and not read.existing_only:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise RunFailed(
            f"Asset {asset}[{partition}] reads {read.asset}[{shown}], which "
            f"{'is' if len(missing) == 1 else 'are'} not materialized; materialize "
            f"{'it' if len(missing) == 1 else 'them'} first (nbo materialize {read.asset} ...), or include the "
            f"upstream in the selection (+{asset}).",
            asset=asset, partition=partition, run_id=run_id, cell=cell,
        )
    present = [k for k in read.keys if k in state]
    if read.existing_only and read.keys and not present:
        raise RunFailed(
            f"Asset {asset}[{partition}] reads {read.describe}, but no partition of {read.asset!r} is "
            f"materialized yet, so there is nothing to read; materialize some first (nbo materialize "
            f"{read.asset} ...).",
            asset=asset, partition=partition, run_id=run_id, cell=cell,
        )
    hits = {k: cache.lookup(read.asset, k, state[k].data_version) for k in present}
    need = [state[k].materialization_id for k in present
            if not hits[k][0] and state[k].storage_path is None and state[k].materialization_id != SAME_RUN]
    paths = paths_for(need) if need else {}
    found: dict[str, Any] = {}
    shared: set[str] = set()  # keys whose object is the cache's own: hand out copies of those
    consumed = []
    for key in present:
        entry = state[key]
        if hits[key][0]:
            found[key] = hits[key][1]
            shared.add(key)
        else:
            path, io = (entry.storage_path, entry.io) if entry.storage_path else paths[entry.materialization_id]
            # An external source's value is where its files are: the reader opens them as it likes.
            found[key] = Path(path) if io == SOURCE_IO else load(path)
            if entry.materialization_id != SAME_RUN:
                cache.remember(read.asset, key, entry.data_version, found[key], handler=io)
        consumed.append(ConsumedInput(read.asset, key, entry.materialization_id, entry.data_version, entry.data_seq))
    return Upstream(_hand_out(found, shared, several=read.several), consumed)


def absent_hint(trigger: str | None, absent: list[tuple[str, tuple[str, ...]]]) -> str:
    """What to add to a cell's error when some of its inputs were absent (None): the likely cause, and the fix."""
    if not absent:
        return ""
    shown = ", ".join(f"{a}[{', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}]" for a, keys in absent)
    names = [a for a, _ in absent]
    one = len(names) == 1
    return (f". Note: {shown} {'was' if one else 'were'} not materialized, so {' and '.join(names)} "
            f"{'is' if one else 'are'} None in this cell: --trigger {trigger!r} does not require "
            f"{'it' if one else 'them'}. Test `if {names[0]} is not None:` before using {'it' if one else 'them'}, "
            f"or make the trigger require {'it' if one else 'them'} with '&'.")


def _hand_out(found: dict[str, Any], shared: set[str], *, several: bool) -> Any:
    """What the cell gets for one dependency: never an object the session cache itself holds."""
    from notebook_orch.storage import combine_partitions

    if not several:
        if not found:  # e.g. a[-1] of the first partition: there is no upstream partition to read
            return None
        (key, value), = found.items()
        return private_copy(value) if key in shared else value
    combined = combine_partitions(found)
    if isinstance(combined, dict):
        return {k: private_copy(v) if k in shared else v for k, v in combined.items()}
    return combined  # pd.concat builds a new frame (or, under copy-on-write, one that copies before mutating)


__all__ = ["StoredInput", "Upstream", "absent_hint", "load_upstream"]
