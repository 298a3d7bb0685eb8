"""What the staleness report says about one partition: its status, causes, root causes and notes (records)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from notebook_orch.core.status import CauseKind, Status

if TYPE_CHECKING:
    from notebook_orch.core.consumed import EdgeChange
    from notebook_orch.core.state_columns import AssetColumns


@dataclass(frozen=True)
class StaleCause:
    kind: CauseKind
    message: str
    upstream: str | None = None
    upstream_partitions: tuple[str, ...] = ()
    since: datetime | None = None


@dataclass(frozen=True)
class RootCause:
    asset: str
    partition: str
    status: Status
    kinds: tuple[CauseKind, ...]

    def __str__(self) -> str:
        why = ", ".join(k.replace("_", " ") for k in self.kinds) or self.status.lower()
        return f"{self.asset}[{self.partition}] ({why})"


@dataclass(frozen=True)
class PartitionStatus:
    asset: str
    partition: str
    status: Status
    causes: tuple[StaleCause, ...] = ()
    root_causes: tuple[RootCause, ...] = ()
    running_run_id: str | None = None
    last_run_id: str | None = None
    materialization_id: int | None = None
    materialized_at: datetime | None = None
    # Information that is not a cause: an [all] dependency's coverage ("built from 31 of 365 partitions of x"),
    # a failed or canceled last attempt over the value shown.
    notes: tuple[str, ...] = ()


def data_cause(upstream: str, up: AssetColumns, change: EdgeChange) -> StaleCause:
    parts = []
    if change.changed:
        since = to_datetime(min(float(up.mat_time[q]) for q in change.changed))
        parts.append(f"{list_partitions(upstream, [up.keys[q] for q in change.changed])} got new data"
                     f"{f' at {since:%Y-%m-%d %H:%M:%S} UTC' if since else ''} after this was built")
    if change.added:
        parts.append(f"{list_partitions(upstream, [up.keys[q] for q in change.added])} "
                     f"{'was' if len(change.added) == 1 else 'were'} materialized since this was built")
    if change.withdrawn:
        parts.append(f"{list_partitions(upstream, list(change.withdrawn))} "
                     f"{'was' if len(change.withdrawn) == 1 else 'were'} read then and "
                     f"{'is' if len(change.withdrawn) == 1 else 'are'} gone now")
    moved = change.changed + change.added
    times = [float(up.mat_time[q]) for q in moved]
    return StaleCause(
        CauseKind.UPSTREAM_DATA_CHANGED,
        "upstream data changed: " + "; ".join(parts),
        upstream,
        tuple(up.keys[q] for q in sorted(moved)) + change.withdrawn,
        to_datetime(min(times)) if times else None,
    )


def to_datetime(ts: float) -> datetime | None:
    if ts is None or math.isnan(ts):
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(tzinfo=None)


def list_partitions(asset: str, keys: list[str]) -> str:
    # Every partition counts; the message names the first few and how many more, the cause carries them all.
    shown = ", ".join(keys[:3])
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return f"{asset}[{shown}]{more}"


__all__ = ["PartitionStatus", "RootCause", "StaleCause", "data_cause", "list_partitions", "to_datetime"]
