"""Helpers more than one test folder needs: polling for a condition and looking at processes through /proc.

Importable by its name from every folder under ``tests/``: pytest (``prepend`` import mode, no ``__init__.py``)
puts ``tests/`` on ``sys.path`` when it loads ``tests/conftest.py``, as it puts each test folder there for its own
``*_helpers.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_for(predicate: Callable[[], Any], *, timeout: float, every: float = 0.1, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true (returned), or fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def _state_and_parent(pid: int | str) -> tuple[str, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name may hold ") "
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _state_and_parent(entry.name)) is not None:
            children.setdefault(found[1], []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z"


def cmdline(pid: int) -> str:
    """The command line of ``pid``, '' once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
