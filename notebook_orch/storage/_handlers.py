"""The built-in value handlers: parquet (pandas DataFrames), json (small JSON-able values), pickle (anything,
only when asked for with ``--io pickle``).

Besides the ``ValueHandler`` protocol, the built-ins implement ``why_not(value) -> str``: the reason they refuse a
value, which the registry puts into its error message.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from collections.abc import Sized
from pathlib import Path
from typing import Any

from notebook_orch.errors import ValueStorageError
from notebook_orch.storage._frames import (
    describe_frame,
    frame_data_version,
    is_dataframe,
    is_series,
    read_parquet,
    write_parquet,
)
from notebook_orch.storage._types import ValueMetadata

JSON_MAX_BYTES = 10 * 1024 * 1024


def type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def describe_value(value: Any) -> ValueMetadata:
    """Metadata of any value: full for DataFrames, ``len()`` of containers, nothing for scalars and strings."""
    if is_dataframe(value):
        return describe_frame(value)
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Sized):
        return ValueMetadata()
    try:
        return ValueMetadata(row_count=len(value))
    except TypeError:  # Sized by its class, unsized in fact (e.g. a 0-d numpy array)
        return ValueMetadata()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class ParquetHandler:
    """pandas DataFrames as Parquet through pyarrow. A non-default index is stored and restored."""

    name = "parquet"
    extension = "parquet"

    def can_handle(self, value: Any) -> bool:
        return is_dataframe(value)

    def why_not(self, value: Any) -> str:
        hint = " (make it one with series.to_frame())" if is_series(value) else ""
        return f"parquet stores pandas DataFrames and this value is a {type_name(value)}{hint}"

    def write(self, value: Any, path: Path) -> None:
        try:
            write_parquet(value, path)
        except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError are among these
            raise ValueStorageError(
                f"the DataFrame cannot be written as Parquet ({exc}); give each column a single type "
                "(e.g. df['col'] = df['col'].astype(str)) and string column names, or add --io pickle "
                "to the %%asset line"
            ) from exc

    def read(self, path: Path) -> Any:
        return read_parquet(path)

    def data_version(self, value: Any) -> str:
        return frame_data_version(value)

    def describe(self, value: Any) -> ValueMetadata:
        return describe_frame(value)


class JsonHandler:
    """Small JSON-able values: dict (string keys), list, str, int, float (finite), bool, None, nested; numpy
    scalars are accepted and come back as Python scalars. Tuples are refused: they would come back as lists."""

    name = "json"
    extension = "json"

    def __init__(self, *, max_bytes: int = JSON_MAX_BYTES) -> None:
        self.max_bytes = max_bytes

    def can_handle(self, value: Any) -> bool:
        return json_problem(value) is None

    def why_not(self, value: Any) -> str:
        if is_dataframe(value):
            return "json does not store pandas DataFrames (convert it first if JSON is wanted: df.to_dict('records'))"
        return f"json stores JSON-able values and {json_problem(value) or 'this value is not JSON-able'}"

    def _dump(self, value: Any, *, canonical: bool) -> bytes:
        # Compact either way; canonical (sorted keys) is what gets hashed, the file keeps the value's key order.
        text = json.dumps(
            value, sort_keys=canonical, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_scalar
        )
        data = text.encode("utf-8")
        if len(data) > self.max_bytes:
            raise ValueStorageError(
                f"the value is {_size(len(data))} as JSON, over the {_size(self.max_bytes)} limit for json; "
                "store it as a pandas DataFrame (--io parquet) or add --io pickle to the %%asset line"
            )
        return data

    def write(self, value: Any, path: Path) -> None:
        path.write_bytes(self._dump(value, canonical=False))

    def read(self, path: Path) -> Any:
        return json.loads(path.read_bytes())

    def data_version(self, value: Any) -> str:
        return _sha(self._dump(value, canonical=True))

    def describe(self, value: Any) -> ValueMetadata:
        return describe_value(value)


class PickleHandler:
    """Anything picklable. Never chosen by default: pickles are Python-version-bound and unsafe to load from
    untrusted places, so a user asks for them with ``--io pickle``."""

    name = "pickle"
    extension = "pkl"

    def can_handle(self, value: Any) -> bool:
        return True

    def why_not(self, value: Any) -> str:
        return ""

    def write(self, value: Any, path: Path) -> None:
        with open(path, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)

    def read(self, path: Path) -> Any:
        with open(path, "rb") as f:
            return pickle.load(f)

    def data_version(self, value: Any) -> str:
        # Pickle bytes of equal values can differ (set order across processes): that only ever makes
        # downstream look stale when it is not, never the reverse.
        if is_dataframe(value):
            return frame_data_version(value)
        return _sha(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def describe(self, value: Any) -> ValueMetadata:
        return describe_value(value)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def _numpy_scalar(value: Any) -> Any:
    """The Python scalar of a numpy bool / integer / float scalar, else a sentinel."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ():
        item = value.item()
        if isinstance(item, (bool, int, float)):
            return item
    return _NOT_SCALAR


_NOT_SCALAR = object()


def _scalar(value: Any) -> Any:
    item = _numpy_scalar(value)
    if item is _NOT_SCALAR:
        raise TypeError(f"{type_name(value)} is not JSON-able")
    return item


def json_problem(value: Any) -> str | None:
    """Why ``value`` does not survive a JSON round trip unchanged, or None when it does."""
    stack: list[tuple[Any, str]] = [(value, "value")]
    seen: set[int] = set()
    while stack:
        v, where = stack.pop()
        if v is None or isinstance(v, (bool, int, str)):
            continue
        if isinstance(v, float):
            if not math.isfinite(v):
                return f"{where} is {float(v)!r}, which JSON cannot hold"
            continue
        if isinstance(v, (dict, list)):
            if id(v) in seen:  # shared (or cyclic) containers are checked once; json.dumps refuses cycles
                continue
            seen.add(id(v))
            if isinstance(v, list):
                stack.extend((item, f"{where}[{i}]") for i, item in enumerate(v))
                continue
            for k, item in v.items():
                if not isinstance(k, str):
                    return f"{where} has the key {k!r} ({type_name(k)}), but JSON keys are strings"
                stack.append((item, f"{where}[{k!r}]"))
            continue
        item = _numpy_scalar(v)
        if item is not _NOT_SCALAR:
            if isinstance(item, float) and not math.isfinite(item):
                return f"{where} is {item!r}, which JSON cannot hold"
            continue
        if isinstance(v, tuple):
            return f"{where} is a tuple, which would come back as a list (use a list)"
        return f"{where} is a {type_name(v)}, which is not JSON-able"
    return None
