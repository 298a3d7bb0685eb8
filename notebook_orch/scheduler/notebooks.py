"""The daemon's eyes on the notebooks: a declaration edited while it runs is applied without a restart.

Each pass stats the project's notebooks (``os.stat`` of each ``*.ipynb``, the rules discovery walks by: hidden
folders and files skipped) — a few milliseconds for hundreds of notebooks. Only when a path, size or modification
time differs from the last pass is the project read again (``Project.reload``; the discovery cache keeps unchanged
notebooks from being parsed again), and what changed is logged: assets added or removed, ``--auto``/``--trigger``/
``--sla``/``--source``/``--schedule`` turned on, off or changed, code edits, and declarations that broke (INVALID,
with the problem) or were fixed. Everything downstream reads ``project.graph``: triggers, sources, SLAs and declared
schedules follow the new graph from the same pass on; an INVALID asset is never started and keeps its pending joins
until its declaration is fixed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("notebook_orch.scheduler")

Stamp = tuple[tuple[str, int, int], ...]
#: What the daemon acts on, per valid asset: the flags named in the log, and the rest as one "declaration".
_FLAGS = ("auto", "trigger", "sla", "source", "schedule")


def notebook_stamp(folder: Path) -> Stamp:
    """(path, mtime_ns, size) of every notebook under ``folder``, sorted: equal stamps, same notebooks."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(".ipynb") and not name.startswith("."):
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:  # removed between the listing and the stat: the next pass sees it gone
                    continue
                found.append((path, st.st_mtime_ns, st.st_size))
    found.sort()
    return tuple(found)


def summarize(graph: Any) -> dict[str, dict[str, Any]]:
    """Each asset -> what the daemon acts on (valid ones) or ``{"invalid": problem}``."""
    out: dict[str, dict[str, Any]] = {}
    for s in graph.specs:
        out[s.name] = {
            "auto": bool(s.auto), "trigger": s.trigger, "sla": s.sla.text if s.sla is not None else None,
            "source": s.source_path, "schedule": s.schedule,
            "declaration": (tuple(d.describe() for d in s.deps), s.partitions.describe(), s.retries, s.marker),
            "code": s.code_version,
        }
    for name, bad in graph.invalid.items():
        out[name] = {"invalid": bad.describe(located=True)}
    for problem in graph.other_problems:  # e.g. a notebook that cannot be read: its assets are gone, this says why
        out[f"problem: {problem}"] = {"problem": str(problem)}
    return out


def describe_changes(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per asset whose declaration changed in a way the daemon acts on (pure)."""
    lines = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if "problem" in (after or before or {}):
            if after is not None:
                lines.append(name)
            continue
        if after is None:
            lines.append(f"{name}: removed (no longer declared in any notebook)")
        elif "invalid" in after:
            lines.append(f"{name}: INVALID, not triggered until fixed: {after['invalid']}")
        elif before is None or "invalid" in before:
            on = [_flag(f, after[f]) for f in _FLAGS if after[f]]
            lines.append(f"{name}: {'added' if before is None else 'valid again'}"
                         + (f" ({', '.join(on)})" if on else ""))
        else:
            changed = [_change(f, before[f], after[f]) for f in _FLAGS if before[f] != after[f]]
            if before["declaration"] != after["declaration"]:
                changed.append("declaration changed (deps, partitions, retries or marker)")
            elif before["code"] != after["code"] and not changed:
                changed.append("code changed")
            if changed:
                lines.append(f"{name}: {'; '.join(changed)}")
    return lines


def _flag(flag: str, value: Any) -> str:
    return f"--{flag}" if value is True else f"--{flag} {value!r}"


def _change(flag: str, before: Any, after: Any) -> str:
    if not before:
        return f"{_flag(flag, after)} on"
    if not after:
        return f"--{flag} off"
    return f"--{flag} {before!r} -> {after!r}"


HALF_WRITTEN_PASSES = 3  # after this many passes a notebook that is still not JSON is read (and shown broken)


def _half_written(old: Stamp, new: Stamp) -> str | None:
    """A notebook added or changed since ``old`` that does not parse as JSON now (being written), or None."""
    import json

    for path, _, _ in sorted(set(new) - set(old)):
        try:
            with open(path, "rb") as fh:
                json.loads(fh.read())
        except (OSError, ValueError):
            return path
    return None


class NotebookWatch:
    """Reads the project again when its notebooks changed; ``check`` once per pass."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self._stamp: Stamp | None = None
        self._seen: dict[str, dict[str, Any]] = {}
        self._waited = 0  # passes waited for a half-written notebook

    def check(self) -> list[str]:
        """The changes applied by this call (empty when the notebooks are as the last pass saw them)."""
        folder = Path(self.project.config.notebooks)
        stamp = notebook_stamp(folder)  # taken before reading: an edit during the read is seen next pass
        if self._stamp is None:  # the first pass: read what the stamp stands for (the graph may be older)
            self._stamp = stamp
            self.project.reload()
            self._seen = summarize(self.project.graph)
            return []
        if stamp == self._stamp:
            return []
        half = _half_written(self._stamp, stamp)
        if half and self._waited < HALF_WRITTEN_PASSES:
            # An editor writing in place: reading now would drop the notebook's assets (and their declared
            # schedules and pending joins) for a pass. Jupyter itself replaces the file atomically.
            self._waited += 1
            log.debug("notebook %s is not valid JSON yet; reading it again next pass", half)
            return []
        self._waited = 0
        self._stamp = stamp
        self.project.reload()
        new = summarize(self.project.graph)
        lines = describe_changes(self._seen, new)
        self._seen = new
        for line in lines:
            (log.warning if "INVALID" in line or line.startswith("problem:") else log.info)(
                "notebooks changed: %s", line)
        if not lines:
            log.debug("notebooks changed; nothing the scheduler acts on")
        return lines


__all__ = ["NotebookWatch", "describe_changes", "notebook_stamp", "summarize"]
