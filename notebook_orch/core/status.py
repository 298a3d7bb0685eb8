"""The one vocabulary of statuses and stale-cause kinds, used by the core, the store, the engine and every face.

Members are ``str`` subclasses whose value is the word users see, so they compare equal to plain strings
(``Status.FRESH == "FRESH"``), serialize to JSON as that string, and print as it (``f"{Status.FRESH}"`` is
``FRESH`` on every Python version). Define new words here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum


class _Word(str, Enum):
    def __str__(self) -> str:  # Enum's default is "Status.FRESH"; people and JSON want the word
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    # Enum hashes the member's *name*; a word must hash like its value so that "code_changed" finds
    # CauseKind.CODE_CHANGED in a dict or set (they already compare equal). A member *is* the string of its value,
    # so str's own (C) hash is that hash, without a Python call per lookup (status counts hash these a lot).
    __hash__ = str.__hash__


class Status(_Word):
    """The status of one (asset, partition). ``INVALID``: the asset's declaration is broken, or it depends on one
    that is (the asset is excluded from planning and shown with its problem)."""

    FRESH = "FRESH"
    STALE = "STALE"
    MISSING = "MISSING"
    FAILED = "FAILED"
    RUNNING = "RUNNING"
    INVALID = "INVALID"


class CauseKind(_Word):
    """Why an (asset, partition) is not fresh. The first three are its own; the ``upstream_*`` ones are inherited
    from an upstream partition it reads (the root cause is found by walking up)."""

    CODE_CHANGED = "code_changed"
    DEPENDENCIES_CHANGED = "dependencies_changed"
    UPSTREAM_DATA_CHANGED = "upstream_data_changed"
    UPSTREAM_STALE = "upstream_stale"
    UPSTREAM_MISSING = "upstream_missing"
    UPSTREAM_FAILED = "upstream_failed"


class RunStatus(_Word):
    """The state of one run (and the last attempt recorded for a partition). ``WAITING``: started (it holds its
    partitions) but waiting for a concurrency-pool slot before it executes (core/pools.py)."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class LiveState(_Word):
    """How a live run's partitions are drawn instead of RUNNING (the widgets and the heatmap): ``WAITING`` while
    its run waits for a concurrency-pool slot, ``PRESUMED_DEAD`` once its heartbeat stopped (a writer will reap it
    as FAILED; reads never do). The staleness report itself knows only RUNNING: planning treats all three alike."""

    WAITING = "WAITING"
    PRESUMED_DEAD = "PRESUMED_DEAD"


class Outcome(_Word):
    """How one planned run ended, as a plan's report and ``RunHandle`` tell it: the run statuses the store records
    for a run that started, and two for a run that never did (neither is ever stored). ``LOCKED``: another run held
    one of its partitions when it tried to start; ``SKIPPED``: not started, because a run it waits for did not
    succeed or the materialization was canceled."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    LOCKED = "LOCKED"
    SKIPPED = "SKIPPED"


# The one rule a picture of an asset (lineage exports, the widget) is coloured by: failed, running or stale when any
# partition is; else fresh when any partition is built; grey (missing) only when none is. Missing partitions are
# "not built yet", not "wrong": an asset built for January is shown fresh, its partition bar says how much.
HEADLINE_ORDER = (Status.INVALID, Status.RUNNING, Status.FAILED, Status.STALE, Status.FRESH, Status.MISSING)


def headline_status(counts: Mapping[str, int]) -> Status:
    """The status an asset's node is coloured by, from its partition counts."""
    for status in HEADLINE_ORDER:
        if counts.get(status):
            return status
    return Status.MISSING


__all__ = ["HEADLINE_ORDER", "CauseKind", "LiveState", "Outcome", "RunStatus", "Status", "headline_status"]
