"""pandas-specific helpers. pandas and pyarrow are imported inside functions: ``import notebook_orch.storage``
must not pay for them, and a value can only be a DataFrame if pandas is already imported."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from notebook_orch.storage._types import ValueMetadata

# Bump when the formula changes: every stored frame would look changed once, which is honest.
_FRAME_VERSION_TAG = b"nbo-frame-v1\0"


def is_dataframe(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def is_series(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.Series)


def describe_frame(df: Any) -> ValueMetadata:
    rows = len(df)
    names = [str(c) for c in df.columns]
    dtypes = [str(t) for t in df.dtypes]
    nulls = df.isna().sum().to_numpy() if len(df.columns) else []
    # Positional, so duplicate column names cannot misalign names and counts.
    return ValueMetadata(
        row_count=rows,
        schema=dict(zip(names, dtypes)),
        null_rates={n: (float(k) / rows if rows else 0.0) for n, k in zip(names, nulls)},
    )


def frame_data_version(df: Any) -> str:
    """sha256 of the frame's data: row hashes (values and index) plus column names, dtypes and index shape.

    pandas' own row hashing is vectorized and independent of any file format. Cells it cannot hash (lists,
    dicts) fall back to hashing the Arrow form of the table, then to pickle.
    """
    h = hashlib.sha256(_FRAME_VERSION_TAG)
    index = df.index
    header = {
        "columns": [repr(c) for c in df.columns],
        "dtypes": [str(t) for t in df.dtypes],
        "index": type(index).__name__,
        "index_names": [repr(n) for n in index.names],
        "index_dtypes": [str(index.get_level_values(i).dtype) for i in range(index.nlevels)],
    }
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(_row_bytes(df))
    return h.hexdigest()[:32]


def _row_bytes(df: Any) -> bytes:
    import pandas as pd

    try:
        return pd.util.hash_pandas_object(df, index=True, categorize=True).to_numpy().tobytes()
    except TypeError:  # unhashable cells, e.g. lists
        pass
    try:
        import pyarrow as pa

        table = pa.Table.from_pandas(df, preserve_index=True).replace_schema_metadata(None)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return b"arrow\0" + sink.getvalue().to_pybytes()
    except Exception:  # noqa: BLE001 - any Arrow refusal just means: use the last resort
        import pickle

        return b"pickle\0" + pickle.dumps(df, protocol=pickle.HIGHEST_PROTOCOL)


def write_parquet(df: Any, path: Path) -> None:
    # index=None: a RangeIndex is kept as metadata only, any other index is stored as columns and restored.
    df.to_parquet(path, engine="pyarrow", index=None)


def read_parquet(path: Path) -> Any:
    import pandas as pd
    import pyarrow.parquet as pq

    df = pd.read_parquet(path, engine="pyarrow")
    pandas_md = pq.read_schema(path).pandas_metadata or {}
    return _restore_object_strings(df, pandas_md)


def _restore_object_strings(df: Any, pandas_md: dict[str, Any]) -> Any:
    """pandas 3 reads every Arrow string as the ``str`` dtype; give object-dtype string columns back as object
    (nulls as None, as pyarrow writes them), so the frame read equals the frame written."""
    wanted = {
        c["field_name"]
        for c in pandas_md.get("columns", [])
        if c.get("numpy_type") == "object" and c.get("pandas_type") == "unicode"
    }
    if not wanted:
        return df
    for pos, name in enumerate(df.columns):
        if isinstance(name, str) and name in wanted and str(df.dtypes.iloc[pos]) == "str":
            col = df.iloc[:, pos]
            df.isetitem(pos, col.astype(object).where(col.notna(), None))
    index_fields = [f for f in pandas_md.get("index_columns", []) if isinstance(f, str)]
    if any(f in wanted for f in index_fields) and len(index_fields) == df.index.nlevels:
        df.index = _restore_index(df.index, [f in wanted for f in index_fields])
    return df


def _restore_index(index: Any, fix: list[bool]) -> Any:
    import pandas as pd

    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    levels = [
        lv.astype(object).where(lv.notna(), None) if f and str(lv.dtype) == "str" else lv for lv, f in zip(levels, fix)
    ]
    if index.nlevels == 1:
        return pd.Index(levels[0], name=index.name, dtype=levels[0].dtype)
    return pd.MultiIndex.from_arrays(levels, names=index.names)
