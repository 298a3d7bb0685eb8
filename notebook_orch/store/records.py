"""Plain frozen records handed out by the store. ORM rows never leave the store package.

What happened is a ``...Record``; a consistent read is a ``...Snapshot``; what a caller asks the store to write is
a ``New...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notebook_orch.core.status import RunStatus  # the one vocabulary (core/status.py)

# Plain strings (the words themselves) so every database driver binds them as text.
WAITING, RUNNING, SUCCESS, FAILED, CANCELED = (s.value for s in RunStatus)
RUN_STATUSES = (WAITING, RUNNING, SUCCESS, FAILED, CANCELED)
# A run that holds its partitions' locks and has not ended: executing, or waiting for a pool slot.
LIVE_STATUSES = (WAITING, RUNNING)
RUN_KINDS = ("interactive", "manual", "backfill", "schedule", "trigger", "observe")

# Event kinds in the append-only log.
EV_RUN_STARTED = "RUN_STARTED"
EV_RUN_WAITING = "RUN_WAITING"  # started but waiting for a concurrency-pool slot (payload: the full pools)
EV_RUN_SUCCESS = "RUN_SUCCESS"
EV_RUN_FAILED = "RUN_FAILED"
EV_RUN_CANCELED = "RUN_CANCELED"
EV_MATERIALIZED = "MATERIALIZED"
EV_PARTITION_FAILED = "PARTITION_FAILED"
EV_PARTITION_CANCELED = "PARTITION_CANCELED"
# The events that change a partition's state row: a follower refreshing statuses reads these partitions again.
PARTITION_STATE_EVENTS = (EV_MATERIALIZED, EV_PARTITION_FAILED, EV_PARTITION_CANCELED)

# ConsumedInput.materialization_id of an input published earlier in the same run (not yet committed when it was
# read): finalize_success resolves it to that run's own materialization, in order.
SAME_RUN = 0


@dataclass(frozen=True)
class ConsumedInput:
    """One upstream materialization a materialization read (its lineage)."""

    asset: str
    partition: str
    materialization_id: int
    data_version: str
    data_seq: int


@dataclass(frozen=True)
class CheckResult:
    expr: str
    passed: bool
    detail: str | None = None


@dataclass(frozen=True)
class NewMaterialization:
    """What a run asks the store to record for one (asset, partition)."""

    asset: str
    partition: str
    code_version: str
    data_version: str
    deps_signature: str = ""
    inputs: tuple[ConsumedInput, ...] = ()
    row_count: int | None = None
    schema: Mapping[str, str] = field(default_factory=dict)
    null_rates: Mapping[str, float] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    duration_s: float | None = None
    storage_path: str | None = None
    io: str | None = None
    # The normalized source code_version stands for (codeversion.code_source), kept once per code version so a
    # later code change can be shown as a diff; None when the writer does not know it (imports, benchmarks).
    code_source: str | None = None


@dataclass(frozen=True)
class MaterializationRecord:
    id: int
    asset: str
    partition: str
    run_id: str
    code_version: str
    data_version: str
    deps_signature: str
    inputs: tuple[ConsumedInput, ...]
    row_count: int | None
    schema: Mapping[str, str]
    null_rates: Mapping[str, float]
    checks: tuple[CheckResult, ...]
    duration_s: float | None
    storage_path: str | None
    io: str | None
    created_at: datetime


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    notebook: str | None
    assets: tuple[str, ...]
    partition_keys: tuple[str, ...]
    status: str
    kind: str
    started_at: datetime
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None
    error: str | None = None
    error_cell: int | None = None
    error_source: str | None = None
    output_path: str | None = None
    attempt: int = 1
    checks: tuple[CheckResult, ...] = ()  # the check results a failed run reported (finalize_failure)


@dataclass(frozen=True)
class PoolWait:
    """One run WAITING for pool slots: the pools it queues in (pool -> runs queued ahead of it there), since when.
    ``position`` is its place in the store's first-come, first-served queue (1 = first)."""

    run_id: str
    since: datetime
    position: int
    ahead: Mapping[str, int]


@dataclass(frozen=True)
class EventRecord:
    id: int
    kind: str
    run_id: str | None
    asset: str | None
    partition: str | None
    timestamp: datetime
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class AssetStates:
    """Column-wise latest state of every recorded partition of one asset (fast to build and to scan).

    ``data_seq`` is the id of the materialization where the current data version first appeared (a rematerialization
    to identical data keeps it); ``inputs_seq`` is the largest ``data_seq`` among the inputs the latest
    materialization consumed. So an upstream partition whose ``data_seq`` exceeds a downstream's ``inputs_seq``
    has new data the downstream has not seen. ``last_status`` is the last attempt's outcome (SUCCESS, FAILED or
    CANCELED); a failed or canceled attempt leaves the materialization fields of the value before it.
    Entries with ``materialization_id`` None were attempted but never materialized.
    """

    partitions: tuple[str, ...]
    materialization_id: tuple[int | None, ...]
    code_version: tuple[str | None, ...]
    deps_signature: tuple[str | None, ...]
    data_version: tuple[str | None, ...]
    data_seq: tuple[int, ...]
    inputs_seq: tuple[int, ...]
    last_status: tuple[str, ...]
    last_run_id: tuple[str | None, ...]
    materialized_at: tuple[float | None, ...]  # POSIX seconds, UTC


@dataclass(frozen=True)
class StoreSnapshot:
    """A consistent read: the latest state of every (asset, partition), who is running, and the event mark."""

    event_id: int
    assets: Mapping[str, AssetStates]
    running: Mapping[tuple[str, str], str]  # (asset, partition) -> run id holding it
