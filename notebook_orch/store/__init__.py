"""The metadata store: runs, materializations, the latest state per (asset, partition), locks and the event log.

``open_store(url)`` returns a ``MetadataStore`` over any SQLAlchemy URL (SQLite by default, PostgreSQL through
the same code). Importing this package creates no engine and touches no file — and imports no SQLAlchemy: the
records are plain data that a run's kernel uses without ever opening the store (SQLModel alone costs ~0.5 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from notebook_orch.store.ids import new_run_id
from notebook_orch.store.records import (
    CANCELED,
    EV_MATERIALIZED,
    EV_PARTITION_CANCELED,
    EV_PARTITION_FAILED,
    EV_RUN_CANCELED,
    EV_RUN_FAILED,
    EV_RUN_STARTED,
    EV_RUN_SUCCESS,
    EV_RUN_WAITING,
    FAILED,
    LIVE_STATUSES,
    PARTITION_STATE_EVENTS,
    RUN_KINDS,
    RUN_STATUSES,
    RUNNING,
    SAME_RUN,
    SUCCESS,
    WAITING,
    AssetStates,
    CheckResult,
    ConsumedInput,
    EventRecord,
    MaterializationRecord,
    NewMaterialization,
    PoolWait,
    RunRecord,
    StoreSnapshot,
)

if TYPE_CHECKING:
    from notebook_orch.store.constants import SCHEMA_VERSION
    from notebook_orch.store.metadata_store import MetadataStore, open_store


def __getattr__(name: str) -> Any:
    if name in ("MetadataStore", "open_store"):
        from notebook_orch.store import metadata_store

        return getattr(metadata_store, name)
    if name == "SCHEMA_VERSION":
        from notebook_orch.store.constants import SCHEMA_VERSION

        return SCHEMA_VERSION
    raise AttributeError(f"module 'notebook_orch.store' has no attribute {name!r}")

__all__ = [
    "open_store",
    "MetadataStore",
    "new_run_id",
    "SCHEMA_VERSION",
    "AssetStates",
    "CheckResult",
    "ConsumedInput",
    "EventRecord",
    "MaterializationRecord",
    "NewMaterialization",
    "PoolWait",
    "RunRecord",
    "StoreSnapshot",
    "WAITING",
    "RUNNING",
    "LIVE_STATUSES",
    "SUCCESS",
    "FAILED",
    "CANCELED",
    "SAME_RUN",
    "RUN_STATUSES",
    "RUN_KINDS",
    "EV_RUN_STARTED",
    "EV_RUN_WAITING",
    "EV_RUN_SUCCESS",
    "EV_RUN_FAILED",
    "EV_RUN_CANCELED",
    "EV_MATERIALIZED",
    "EV_PARTITION_FAILED",
    "EV_PARTITION_CANCELED",
    "PARTITION_STATE_EVENTS",
]
