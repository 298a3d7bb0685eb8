"""Notebook parameters of a run (``--param K=V`` on a schedule, ``Project.submit(parameters=...)``), checked.

papermill injects them into the notebook as Python literals, next to the names the run itself injects; a
parameter may not take one of those names, must be a Python identifier, and its value must be something papermill
writes as a literal (text, numbers, booleans, None, and lists / dicts of those).
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Mapping
from typing import Any

from notebook_orch.errors import InvalidOption

#: Names every run injects itself (the partition and the run context).
RESERVED = frozenset({"partition_key", "partition_date", "nbo_run"})


def check_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """``parameters`` as a plain dict, or ``InvalidOption`` naming every bad key or value (nothing is started)."""
    if not parameters:
        return {}
    if not isinstance(parameters, Mapping):
        raise InvalidOption(f"parameters must be a mapping of names to values, e.g. {{'region': 'eu'}}, "
                            f"not {type(parameters).__name__}.")
    problems = []
    for key, value in parameters.items():
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            problems.append(f"parameter name {key!r} is not a Python identifier (the notebook assigns it as a "
                            "variable), e.g. region=eu.")
        elif key in RESERVED:
            problems.append(f"parameter {key!r} is set by every run itself ({', '.join(sorted(RESERVED))}); "
                            "choose another name.")
        elif not _literal(value):
            problems.append(f"parameter {key!r} has a value of type {type(value).__name__}; use text, numbers, "
                            "booleans, None, or lists/dicts of those (papermill writes them as Python literals).")
    if problems:
        raise InvalidOption("Run parameters refused: " + " ".join(problems))
    return dict(parameters)


def _literal(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_literal(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _literal(v, depth + 1) for k, v in value.items())
    return False


__all__ = ["RESERVED", "check_parameters"]
