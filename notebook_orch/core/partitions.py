"""How an asset is sliced: time windows, static lists, or one implicit partition.

A ``PartitionsDef`` is what the user declared (``daily:2013-01-01..2013-12-31``). It knows its keys, the index of
each key and, for time windows, the [start, end) window of each partition. Open-ended time windows depend on
``now``: only windows that have ended exist. Times are naive and read as UTC.

Keys: hourly ``2013-01-01T05``, daily ``2013-01-01``, weekly ``2013-01-07`` (the week's first day), monthly
``2013-01``, static keys as written. The implicit partition of an unpartitioned asset is ``UNPARTITIONED_KEY``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Union

from notebook_orch.errors import PartitionError

UNPARTITIONED_KEY = "unpartitioned"
GRAINS = ("hourly", "daily", "weekly", "monthly")
_STATIC_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]*$")


def check_key_is_safe(key: str) -> None:
    """Partition keys become folder names: refuse anything path-like before it gets near a disk."""
    if not key or "/" in key or "\\" in key or ".." in key or key.startswith(".") or "\x00" in key:
        raise PartitionError(
            f"Partition key {key!r} is path-like or empty; keys may not contain '/', '\\', '..' or start with '.'."
        )


@dataclass(frozen=True)
class Unpartitioned:
    """One implicit partition."""

    grain: str = field(default="unpartitioned", init=False)

    def keys(self, *, now: datetime | None = None) -> tuple[str, ...]:
        return (UNPARTITIONED_KEY,)

    def count(self, *, now: datetime | None = None) -> int:
        return 1

    def index_of(self, key: str, *, now: datetime | None = None) -> int:
        if key != UNPARTITIONED_KEY:
            raise PartitionError(f"Asset is unpartitioned; its only partition is {UNPARTITIONED_KEY!r}, not {key!r}.")
        return 0

    def describe(self) -> str:
        return "unpartitioned"


@dataclass(frozen=True)
class StaticPartitions:
    static_keys: tuple[str, ...]
    grain: str = field(default="static", init=False)

    def __post_init__(self) -> None:
        if not self.static_keys:
            raise PartitionError("A static partition list needs at least one key, e.g. 'static:us,eu'.")
        seen: set[str] = set()
        for key in self.static_keys:
            check_key_is_safe(key)
            if not _STATIC_KEY.match(key):
                raise PartitionError(
                    f"Static partition key {key!r} may only use letters, digits, '_', '-', '.', '='."
                )
            if key in seen:
                raise PartitionError(f"Static partition key {key!r} is listed twice.")
            seen.add(key)

    def keys(self, *, now: datetime | None = None) -> tuple[str, ...]:
        return self.static_keys

    def count(self, *, now: datetime | None = None) -> int:
        return len(self.static_keys)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.static_keys)}

    def index_of(self, key: str, *, now: datetime | None = None) -> int:
        check_key_is_safe(key)
        try:
            return self._index[key]
        except KeyError:
            from notebook_orch.errors import close_matches

            raise PartitionError(
                f"Partition key {key!r} is not one of the static keys {list(self.static_keys)}."
                + close_matches(key, self.static_keys)
            ) from None

    def describe(self) -> str:
        return "static:" + ",".join(self.static_keys)


@dataclass(frozen=True)
class TimeWindowPartitions:
    """Consecutive windows of one grain from ``start``; ``end`` is the start of the last partition (inclusive)."""

    grain: str
    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.grain not in GRAINS:
            raise PartitionError(f"Unknown partition grain {self.grain!r}; use one of {', '.join(GRAINS)}.")
        if self.end is not None and self.end < self.start:
            raise PartitionError(
                f"Partition range {self.describe()} is reversed: the end comes before the start. Swap them."
            )

    # -- index arithmetic -------------------------------------------------------------------------------
    def _index_at(self, t: datetime) -> int:
        """Index of the window containing ``t`` (may be negative or past the end)."""
        if self.grain == "monthly":
            return (t.year - self.start.year) * 12 + (t.month - self.start.month)
        delta = t - self.start
        if self.grain == "hourly":
            return delta // timedelta(hours=1)
        if self.grain == "daily":
            return delta // timedelta(days=1)
        return delta // timedelta(days=7)

    def window_start(self, index: int) -> datetime:
        try:
            if self.grain == "monthly":
                months = self.start.year * 12 + (self.start.month - 1) + index
                return datetime(months // 12, months % 12 + 1, 1)
            step = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}[self.grain]
            return self.start + step * index
        except (OverflowError, ValueError):  # before year 1 or after 9999: datetime cannot hold it
            raise PartitionError(
                f"Partition {index} of {self.describe()} falls outside the years 1 to 9999 that dates can hold; "
                "start later or end sooner."
            ) from None

    def window(self, index: int) -> tuple[datetime, datetime]:
        return self.window_start(index), self.window_start(index + 1)

    def index_at_time(self, t: datetime) -> int:
        return self._index_at(t)

    def count(self, *, now: datetime | None = None) -> int:
        if self.end is not None:
            return self._index_at(self.end) + 1
        if now is None:
            raise PartitionError(
                f"Partitions {self.describe()} are open-ended; give 'now' to know which windows have ended."
            )
        # Only windows that have ended exist, as in Dagster.
        n = max(0, self._index_at(now))
        if n > MAX_PARTITIONS:
            # An open end cannot be bounded when parsed (it grows with time): refuse here, before listing keys
            # (millions of them would take minutes and gigabytes).
            raise PartitionError(
                f"Partitions {self.describe()} have {n:,} {self.grain} partitions by {now:%Y-%m-%d}, more than the "
                f"{MAX_PARTITIONS:,} one asset may have; start later, give an end or use a coarser grain."
            )
        return n

    def key_of(self, index: int) -> str:
        return _key_text(self.window_start(index), self.grain)

    def parse_key(self, key: str) -> datetime:
        check_key_is_safe(key)
        try:
            if self.grain == "monthly":
                if not re.fullmatch(r"\d{4}-\d{2}", key):
                    raise ValueError
                return datetime.strptime(key, "%Y-%m")
            if self.grain == "hourly":
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", key):
                    raise ValueError
                return datetime.strptime(key, "%Y-%m-%dT%H")
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", key):
                raise ValueError
            return datetime.strptime(key, "%Y-%m-%d")
        except ValueError:
            example = self.key_of(0)
            raise PartitionError(
                f"Partition key {key!r} is not a {self.grain} key; write it like {example!r}."
            ) from None

    def index_of(self, key: str, *, now: datetime | None = None) -> int:
        t = self.parse_key(key)
        index = self._index_at(t)
        n = self.count(now=now)
        # The range first: the window before the first may not be a date at all (before year 1).
        if index < 0 or index >= n:
            last = self.key_of(n - 1) if n else "(none yet)"
            raise PartitionError(
                f"Partition key {key!r} is out of range for {self.describe()}: "
                f"valid keys run from {self.key_of(0)!r} to {last!r}."
            )
        if self.window_start(index) != t:
            raise PartitionError(
                f"Partition key {key!r} is not the start of a {self.grain} window of {self.describe()}; "
                f"the nearest is {self.key_of(index)!r}."
            )
        return index

    def keys(self, *, now: datetime | None = None) -> tuple[str, ...]:
        return _time_keys(self, self.count(now=now))

    def describe(self) -> str:
        end = _key_text(self.end, self.grain) if self.end is not None else ""
        return f"{self.grain}:{_key_text(self.start, self.grain)}..{end}"


def _key_text(t: datetime, grain: str) -> str:
    """The key of the window starting at ``t``. Not strftime: it writes year 33 as '33', not '0033'."""
    day = f"{t.year:04d}-{t.month:02d}"
    if grain == "monthly":
        return day
    day += f"-{t.day:02d}"
    return f"{day}T{t.hour:02d}" if grain == "hourly" else day


_KEYS_CACHE: dict[tuple[TimeWindowPartitions, int], tuple[str, ...]] = {}


def _time_keys(pdef: TimeWindowPartitions, n: int) -> tuple[str, ...]:
    # Key lists are asked for over and over by staleness and planning; build each once.
    cached = _KEYS_CACHE.get((pdef, n))
    if cached is None:
        cached = tuple(pdef.key_of(i) for i in range(n))
        if len(_KEYS_CACHE) > 4096:
            _KEYS_CACHE.clear()
        _KEYS_CACHE[(pdef, n)] = cached
    return cached


PartitionsDef = Union[Unpartitioned, StaticPartitions, TimeWindowPartitions]
UNPARTITIONED = Unpartitioned()


def _parse_time(text: str, grain: str, what: str, spec: str) -> datetime:
    text = text.strip()
    try:
        if grain == "monthly" and re.fullmatch(r"\d{4}-\d{2}", text):
            return datetime.strptime(text, "%Y-%m")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", text):
            return datetime.strptime(text, "%Y-%m-%dT%H")
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PartitionError(
            f"Partition spec {spec!r}: {what} {text!r} is not a date; write it like 2013-01-01"
            + (" or 2013-01" if grain == "monthly" else "")
            + "."
        ) from None
    if parsed.tzinfo is not None:
        # Partition times are naive UTC; an offset would make windows that never line up with the keys.
        raise PartitionError(
            f"Partition spec {spec!r}: {what} {text!r} has a time zone; partition times are UTC, write it without "
            "one, e.g. 2013-01-01."
        )
    if parsed.second or parsed.microsecond or parsed.minute:
        # Keys name hours at most ('2013-01-01T05'): a window starting at 05:30 would have no key of its own.
        raise PartitionError(
            f"Partition spec {spec!r}: {what} {text!r} is not on the hour; partitions start on a whole hour at most "
            "(hourly: 2013-01-01T05, others at midnight)."
        )
    return parsed


# More partitions than this for one asset is a typo (a year 0001 or 9999), not a pipeline: listing 3.6 million daily
# keys took 14 s, hourly ones over the same range would exhaust memory. 400,000 is 45 years of hourly partitions.
MAX_PARTITIONS = 400_000


def parse_partitions(spec: str | None) -> PartitionsDef:
    """Parse ``daily:2013-01-01[..2013-12-31]``, ``hourly:...``, ``weekly:...``, ``monthly:...``, ``static:a,b``."""
    if spec is None or spec == "":
        return UNPARTITIONED
    kind, sep, rest = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or not rest.strip():
        raise PartitionError(
            f"Partition spec {spec!r} needs a kind and a value, e.g. 'daily:2013-01-01..2013-12-31' or 'static:us,eu'."
        )
    if kind == "static":
        return StaticPartitions(tuple(k.strip() for k in rest.split(",") if k.strip()))
    if kind not in GRAINS:
        from notebook_orch.errors import close_matches

        raise PartitionError(
            f"Partition spec {spec!r}: unknown kind {kind!r}; use one of {', '.join(GRAINS)}, static."
            + close_matches(kind, (*GRAINS, "static"))
        )
    start_text, dots, end_text = rest.partition("..")
    start = _parse_time(start_text, kind, "start", spec)
    end = _parse_time(end_text, kind, "end", spec) if dots and end_text.strip() else None
    if kind == "monthly" and (start.day != 1 or start.hour):
        raise PartitionError(f"Partition spec {spec!r}: monthly partitions start on the first of a month.")
    if kind in ("daily", "weekly", "monthly") and (start.hour or start.minute):
        raise PartitionError(f"Partition spec {spec!r}: {kind} partitions start at midnight; drop the time.")
    pdef = TimeWindowPartitions(kind, start, end)
    if end is not None and pdef._index_at(end) >= MAX_PARTITIONS:
        raise PartitionError(
            f"Partition spec {spec!r} has {pdef._index_at(end) + 1:,} {kind} partitions, more than the "
            f"{MAX_PARTITIONS:,} one asset may have; start later, end sooner or use a coarser grain."
        )
    if end is not None and pdef.window_start(pdef._index_at(end)) != end:
        raise PartitionError(
            f"Partition spec {spec!r}: the end {end_text.strip()!r} is not the start of a {kind} window; "
            f"use {pdef.key_of(pdef._index_at(end))!r}."
        )
    try:
        pdef.window(pdef._index_at(end) if end is not None else 0)
    except PartitionError:
        raise PartitionError(
            f"Partition spec {spec!r}: its last {kind} window would end after the year 9999, which dates cannot "
            "hold; end one window sooner."
        ) from None
    return pdef


def partition_date(pdef: PartitionsDef, key: str) -> date | None:
    """The date a time partition starts on (what the notebook sees as ``partition_date``)."""
    if isinstance(pdef, TimeWindowPartitions):
        return pdef.parse_key(key).date()
    return None
