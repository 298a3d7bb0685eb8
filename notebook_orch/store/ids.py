"""Run ids and time conversions shared by the store modules."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone

_EPOCH = datetime(1970, 1, 1)


def new_run_id() -> str:
    """A 26-character, time-ordered run id: 12 hex digits of the millisecond clock, then 56 random bits.

    Time-ordered like a ULID so that inserts append to the right edge of the primary-key b-tree (a random UUID
    key halved insert throughput in our measurements) and so ids sort roughly by start time.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(7)}"


def utc_naive(value: datetime | None) -> datetime:
    """``value`` (or now) as a timezone-naive UTC datetime, the form every datetime column stores."""
    if value is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    if value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def posix(value: datetime) -> float:
    """POSIX seconds of a naive UTC datetime (``datetime.timestamp`` would read it as local time)."""
    return (value - _EPOCH).total_seconds()
