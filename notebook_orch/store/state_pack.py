"""A compact binary form of one asset's ``AssetStates``, for the snapshot cache (see snapshot.py).

Why not JSON, pickle or marshal: JSON decodes too slowly for 365,000 partitions (~0.4 s), pickle would execute
whatever a writer of the database put there, and marshal is neither safe against crafted input nor stable across
Python versions. This format only ever yields str/int/float/None and fails with ValueError on bad input.

Layout: 4-byte count of int64 header entries, the header (the row count, then per column its metadata and
section lengths), then the sections. Text columns are dictionary-encoded: distinct values joined by U+001F, then
a uint32 index per row, or no index when all values differ or all are the same, so low-cardinality columns (code
version, status, run id) decode to shared objects. Int columns are int64 arrays (-1 for None); the float column
is a float64 array (NaN for None).
"""

from __future__ import annotations

import math
import sys
from array import array
from typing import Any

from notebook_orch.store.records import AssetStates

_SEP = "\x1f"
# One letter per AssetStates field, in field order: s = str or None, i = int or None, f = float or None.
_KINDS = "sisssiissf"
_FIELDS = tuple(AssetStates.__dataclass_fields__)
assert len(_FIELDS) == len(_KINDS)

# Arrays are stored in native layout: the tag makes a cache written on another platform simply "stale".
FORMAT = f"nbo1-{sys.byteorder[0]}{array('I').itemsize}{array('q').itemsize}"


def pack(states: AssetStates) -> bytes | None:
    """``states`` as bytes, or None when a text value contains the separator (then it is read uncached)."""
    header = array("q", [len(states.partitions)])
    sections: list[bytes] = []
    for kind, name in zip(_KINDS, _FIELDS):
        column = getattr(states, name)
        if kind == "s":
            distinct = list(dict.fromkeys(column))
            if any(v is not None and _SEP in v for v in distinct):
                return None
            text = _SEP.join("" if v is None else v for v in distinct).encode()
            none_at = distinct.index(None) if None in distinct else -1
            if len(distinct) == len(column) or len(distinct) == 1:  # all different or all the same: no index
                index = b""
            else:
                position = {v: i for i, v in enumerate(distinct)}
                index = array("I", map(position.__getitem__, column)).tobytes()
            header.extend((len(distinct), none_at, len(text), len(index)))
            sections += (text, index)
        else:
            has_none = None in column
            if kind == "i":
                data = array("q", [-1 if v is None else v for v in column] if has_none else column).tobytes()
            else:
                data = array("d", [math.nan if v is None else v for v in column] if has_none else column).tobytes()
            header.extend((int(has_none), len(data)))
            sections.append(data)
    return len(header).to_bytes(4, "little") + header.tobytes() + b"".join(sections)


def unpack(payload: bytes, *, shared: dict[bytes, tuple[str, ...]] | None = None) -> AssetStates:
    """The inverse of ``pack``. Raises ValueError on anything ``pack`` did not produce.

    ``shared``: pass one dict to every unpack of a snapshot, and partition keys identical to another asset's
    (assets partitioned alike) decode once and are shared: 365 strings fewer per daily asset.
    """
    try:
        return AssetStates(*_columns(memoryview(payload), {} if shared is None else shared))
    except (IndexError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        raise ValueError(f"corrupt snapshot cache entry: {exc}") from exc


def _columns(view: memoryview, shared: dict[bytes, tuple[str, ...]]) -> list[tuple[Any, ...]]:
    count = int.from_bytes(view[:4], "little")
    header = array("q")
    header.frombytes(view[4 : 4 + 8 * count])
    pos, h = 4 + 8 * count, 1
    rows = header[0]
    columns: list[tuple[Any, ...]] = []
    for number, kind in enumerate(_KINDS):
        if kind == "s":
            n_distinct, none_at, text_len, index_len = header[h : h + 4]
            h += 4
            if number == 0 and n_distinct == rows > 1 and not index_len and none_at < 0:  # the partition keys
                text = bytes(view[pos : pos + text_len])
                pos += text_len
                column = shared.get(text)
                if column is None:
                    column = tuple(str(text, "utf-8").split(_SEP))
                    if len(column) != rows:
                        raise ValueError("distinct value count mismatch")
                    shared[text] = column
                columns.append(column)
                continue
            values: list[Any] = str(view[pos : pos + text_len], "utf-8").split(_SEP) if n_distinct else []
            pos += text_len
            if len(values) != n_distinct:
                raise ValueError("distinct value count mismatch")
            if none_at >= 0:
                values[none_at] = None
            if index_len:
                index = array("I")
                index.frombytes(view[pos : pos + index_len])
                pos += index_len
                column = tuple(map(values.__getitem__, index))
            elif n_distinct == 1:
                column = (values[0],) * rows  # one shared object: the common case for versions and status
            else:
                column = tuple(values)
        else:
            has_none, data_len = header[h : h + 2]
            h += 2
            data = array("q" if kind == "i" else "d")
            data.frombytes(view[pos : pos + data_len])
            pos += data_len
            if not has_none:
                column = tuple(data.tolist())  # a third faster than iterating the array
            elif kind == "i":
                column = tuple(None if v == -1 else v for v in data)
            else:
                column = tuple(None if v != v else v for v in data)  # NaN is the only value unequal to itself
        if len(column) != rows:
            raise ValueError("column length mismatch")
        columns.append(column)
    if pos != len(view) or h != len(header):
        raise ValueError("trailing or missing data")
    return columns
