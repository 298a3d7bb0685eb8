"""Several upstream partitions handed to one cell as one value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notebook_orch.storage._frames import is_dataframe


def combine_partitions(values: Mapping[str, Any]) -> Any:
    """Combine the values of several partitions, given in partition-key order.

    All DataFrames: one ``pd.concat`` in that order. If every frame has a plain unnamed ``RangeIndex`` (row
    numbers, as most frames do), the result is renumbered 0..n-1, since keeping per-partition row numbers would
    only repeat them; any other index (named, dates, strings, a filtered subset) may carry meaning and is kept
    as is, duplicates included. Columns missing from some partitions are filled with nulls, as ``pd.concat``
    does. Anything else (including an empty mapping or a mix of frames and other values): a plain dict from
    partition key to value, in the same order.
    """
    frames = list(values.values())
    if not frames or not all(is_dataframe(v) for v in frames):
        return dict(values)
    import pandas as pd

    positional = all(isinstance(f.index, pd.RangeIndex) and f.index.name is None for f in frames)
    return pd.concat(frames, ignore_index=positional)
