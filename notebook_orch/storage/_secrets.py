"""Refusing to store a value that holds a secret read in this process (``notebook_orch.secret``).

A secret belongs in the environment of the process that uses it; a value file is read by anyone who can read the
data folder, copied, backed up and loaded by other runs. So a value is checked before anything is written — its
strings, the keys and items of containers, a DataFrame's text columns, column names and index — and the written
file's bytes once more (which catches what a walk cannot see inside, e.g. an object stored with ``--io pickle``).
Nothing is checked, and nothing costs anything, until a secret has been read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from notebook_orch.secrets import known_values

_MAX_ITEMS = 1_000_000  # a walk stops after this many items; the written file's bytes are still checked


def secret_in_value(value: Any) -> str | None:
    """The name of a secret whose value occurs in ``value``, or None."""
    known = known_values()
    if not known:
        return None
    budget = [_MAX_ITEMS]
    return _walk(value, known, budget, set())


def secret_in_file(path: Path) -> str | None:
    """The name of a secret whose value occurs in the bytes of ``path`` (UTF-8, or escaped as JSON writes it)."""
    known = known_values()
    if not known:
        return None
    import json

    data = path.read_bytes()
    for value, name in known.items():
        forms = {value.encode("utf-8"), json.dumps(value)[1:-1].encode("ascii")}
        if any(form in data for form in forms):
            return name
    return None


def _in_text(text: str, known: dict[str, str]) -> str | None:
    return next((name for value, name in known.items() if value in text), None)


def _walk(node: Any, known: dict[str, str], budget: list[int], seen: set[int]) -> str | None:
    budget[0] -= 1
    if budget[0] < 0:
        return None
    if isinstance(node, str):
        return _in_text(node, known)
    if isinstance(node, (bytes, bytearray)):
        return _in_text(bytes(node).decode("utf-8", errors="replace"), known)
    if node is None or isinstance(node, (bool, int, float)):
        return None
    if id(node) in seen:
        return None
    seen.add(id(node))
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(node, (pd.DataFrame, pd.Series, pd.Index)):
        return _in_frame(node, known, pd)
    if isinstance(node, dict):
        items: Any = (x for pair in node.items() for x in pair)
    elif isinstance(node, (list, tuple, set, frozenset)):
        items = node
    else:
        return None  # other objects: the written file's bytes are checked
    for item in items:
        found = _walk(item, known, budget, seen)
        if found:
            return found
    return None


def _in_frame(frame: Any, known: dict[str, str], pd: Any) -> str | None:
    """Text cells, column names and index labels of a DataFrame (or Series, Index)."""
    if isinstance(frame, pd.DataFrame):
        parts = [frame[c] for c in frame.columns] + [frame.index, frame.columns]
    elif isinstance(frame, pd.Series):
        parts = [frame, frame.index]
    else:
        parts = [frame]
    for part in parts:
        if part.dtype.kind in "biufcmM":  # numbers, booleans, dates: no text
            continue
        for item in pd.unique(part.astype(str)) if len(part) else ():
            found = _in_text(item, known)
            if found:
                return found
    return None
