"""The kernel's session cache: values produced or loaded in this kernel, filed by (asset, partition) and data version.

It holds a private copy of each value and hands out copies: user code mutates DataFrames in place all the time, and
the cache must keep matching the data version it is filed under (with pandas copy-on-write those copies share
memory until someone writes; pickled objects are not cached at all). Least recently used first; bounded so a warm
kernel serving a long backfill does not keep every value.
"""

from __future__ import annotations

import copy
import sys
from collections import OrderedDict
from typing import Any

CACHE_ENTRIES = 512  # a 7-day window of 3 assets needs 21


class SessionCache(OrderedDict):
    """(asset, partition) -> (data_version, private copy)."""

    def __init__(self, entries: int | None = None) -> None:
        super().__init__()
        self.entries = entries

    def lookup(self, asset: str, partition: str, data_version: str) -> tuple[bool, Any]:
        """(True, the cache's own object) when the cached value has ``data_version``; hand out a copy of it."""
        cached = self.get((asset, partition))
        if cached is None:
            return False, None
        self.move_to_end((asset, partition))
        return (True, cached[1]) if cached[0] == data_version else (False, None)

    def remember(self, asset: str, partition: str, data_version: str, value: Any, *, handler: str | None) -> None:
        """File a private copy of ``value``. Pickled objects are not cached: they can be anything (a model, a
        connection), copying them may be costly or impossible, and loading them gives a fresh object anyway."""
        if handler == "pickle":
            self.pop((asset, partition), None)
            return
        try:
            self[(asset, partition)] = (data_version, private_copy(value))
        except Exception:  # noqa: BLE001 - uncopyable (a lock, a connection): just do not cache it
            self.pop((asset, partition), None)
            return
        self.move_to_end((asset, partition))
        limit = self.entries if self.entries is not None else CACHE_ENTRIES
        while len(self) > limit:
            self.popitem(last=False)


def private_copy(value: Any) -> Any:
    """A copy that shares nothing mutable with ``value``. With pandas copy-on-write (always on from pandas 3) a
    shallow copy is that — writes through either object copy first — and costs no memory; without it, a deep copy."""
    pd = sys.modules.get("pandas")  # a value can only be a DataFrame if pandas is already imported
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
        return value.copy(deep=not _copy_on_write(pd))
    return copy.deepcopy(value)


def _copy_on_write(pd: Any) -> bool:
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return pd.get_option("mode.copy_on_write") is True


__all__ = ["CACHE_ENTRIES", "SessionCache", "private_copy"]
