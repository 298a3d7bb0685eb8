"""Per-partition SLAs as pure functions: the ``--sla`` syntax, each partition's deadline, and the verdict.

``--sla`` states when a partition must be FRESH, relative to the end of its time window:

    --sla "06:00"                      by 06:00 UTC on the day its window ends (a daily partition by 06:00 the
                                       next day)
    --sla "06:00 Europe/Berlin"        the same, 06:00 Berlin wall-clock time (DST as zoneinfo defines it)
    --sla "06:00+1d Europe/Berlin"     a day later: the window's end plus one day, then the next 06:00 in Berlin
    --sla "+2h"                        two hours after the window ends (hourly data, for instance)
    --sla "+1d12h"                     36 hours after the window ends

The rule: ``deadline = window end + offset``, then, when a time of day is given, moved forward to the first
moment at or after it whose wall-clock time in the zone is that time of day. Windows are naive UTC (see
partitions.py); deadlines are returned as naive UTC as well. An SLA needs time-window partitions: a static or
unpartitioned asset has no window to be late against.

Verdict (once, when the deadline passes): MET when the partition is FRESH and its latest materialization landed
at or before the deadline; otherwise MISSED with the reason (MISSING, STALE, FAILED, RUNNING, or LATE: fresh now
but materialized after the deadline — seen only when nobody checked at the deadline itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from enum import Enum
from functools import lru_cache

from notebook_orch.core.partitions import PartitionsDef, TimeWindowPartitions
from notebook_orch.core.status import Status

__all__ = ["SlaSpec", "SlaVerdict", "Verdict", "deadline", "due_partitions", "judge", "parse_sla",
           "parse_duration", "format_duration"]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+[dhms])+")
_SLA = re.compile(
    r"^\s*(?:(?P<time>\d{1,2}:\d{2}))?\s*(?:\+\s*(?P<offset>[0-9dhms]+))?\s*(?P<tz>[A-Za-z][A-Za-z0-9_+\-/]*)?\s*$")
EXAMPLES = "'06:00', '06:00 Europe/Berlin', '06:00+1d Europe/Berlin' or '+2h'"


class SlaError(ValueError):
    """An ``--sla`` text that does not parse; the message says what is wrong and shows the forms that work."""


class Verdict(str, Enum):
    MET = "MET"
    MISSED = "MISSED"
    OPEN = "OPEN"  # the deadline has not come yet


@dataclass(frozen=True)
class SlaSpec:
    """What ``--sla`` declared: an offset after the window's end, an optional time of day, and a time zone."""

    text: str
    offset: timedelta = timedelta(0)
    at: time | None = None
    tz: str = "UTC"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class SlaVerdict:
    verdict: Verdict
    reason: str = ""  # MISSING, STALE, FAILED, RUNNING, LATE, INVALID (MISSED) or "" (MET, OPEN)


def parse_duration(text: str, *, most: timedelta = timedelta(days=366)) -> timedelta:
    """``2h``, ``90m``, ``1d12h``, ``45s`` (whole units, largest first or not) -> a timedelta up to ``most``."""
    t = text.strip().replace(" ", "")
    if not _DURATION.fullmatch(t):
        raise SlaError(f"{text!r} is not a duration; write a number and a unit (d, h, m or s), e.g. 2h, 90m, 1d12h.")
    seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([dhms])", t))
    if seconds > most.total_seconds():
        raise SlaError(f"{text!r} is more than {format_duration(most)}; give a shorter duration.")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta | float) -> str:
    """``1d2h``, ``2h30m``, ``45s``: a duration as a person writes it (negative with a leading '-')."""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    sign = "-" if seconds < 0 else ""
    s = int(round(abs(seconds)))
    if s < 60:
        return f"{sign}{s}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    return sign + "".join(parts[:2])


@lru_cache(maxsize=64)
def _zone(name: str):  # noqa: ANN202 - a tzinfo
    if name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SlaError(f"time zone {name!r} is not an IANA time zone name such as 'Europe/Berlin' or 'UTC'.") from None


def parse_sla(text: str) -> SlaSpec:
    """Parse an ``--sla`` value (forms in the module docstring); ``SlaError`` names the value and the forms."""
    m = _SLA.match(text or "")
    if not m or not (m.group("time") or m.group("offset")):
        raise SlaError(f"--sla {text!r} is not an SLA; write a time of day and/or an offset after the partition's "
                       f"window ends, optionally with a time zone: {EXAMPLES}.")
    at = None
    if m.group("time"):
        hh, mm = (int(x) for x in m.group("time").split(":"))
        if hh > 23 or mm > 59:
            raise SlaError(f"--sla {text!r}: {m.group('time')!r} is not a time of day; write HH:MM from 00:00 to "
                           f"23:59, e.g. 06:00.")
        at = time(hh, mm)
    offset = timedelta(0)
    if m.group("offset"):
        try:
            offset = parse_duration(m.group("offset"))
        except SlaError as exc:
            raise SlaError(f"--sla {text!r}: {exc}") from None
    tz = m.group("tz") or "UTC"
    try:
        _zone(tz)
    except SlaError as exc:
        raise SlaError(f"--sla {text!r}: {exc}") from None
    return SlaSpec(text=" ".join(text.split()), offset=offset, at=at, tz=tz)


def check_partitions(sla: SlaSpec, pdef: PartitionsDef) -> str | None:
    """Why ``sla`` cannot apply to ``pdef`` (None when it can)."""
    if not isinstance(pdef, TimeWindowPartitions):
        return (f"--sla {sla.text!r} needs time-window partitions (hourly, daily, weekly, monthly): a deadline is "
                f"counted from the end of a partition's window, and {pdef.describe()} has none. Remove --sla or "
                "partition the asset by time.")
    return None


def deadline_after(sla: SlaSpec, window_end: datetime) -> datetime:
    """The deadline of a window ending at ``window_end`` (naive UTC in, naive UTC out)."""
    base = window_end + sla.offset
    if sla.at is None:
        return base
    zone = _zone(sla.tz)
    local = base.replace(tzinfo=timezone.utc).astimezone(zone)
    for day in range(3):  # today's HH:MM, or the next day's (the third covers a skipped wall-clock time)
        d = (local + timedelta(days=day)).date()
        candidate = datetime.combine(d, sla.at, tzinfo=zone)
        # A wall-clock time skipped by spring-forward does not exist: zoneinfo reads it with the offset before the
        # gap, which lands an hour later once converted (02:30 -> 03:30); a repeated time takes its first occurrence.
        utc = candidate.astimezone(timezone.utc).replace(tzinfo=None)
        if utc >= base:
            return utc
    raise AssertionError("unreachable: a time of day recurs within two days")  # pragma: no cover


def deadline(sla: SlaSpec, pdef: TimeWindowPartitions, key: str) -> datetime:
    """The naive-UTC deadline of partition ``key``."""
    index = pdef.index_at_time(pdef.parse_key(key))
    return deadline_after(sla, pdef.window(index)[1])


def due_partitions(sla: SlaSpec, pdef: TimeWindowPartitions, *, after: datetime, until: datetime
                   ) -> Iterator[tuple[str, datetime]]:
    """``(key, deadline)`` of every partition whose deadline falls in ``(after, until]``, oldest first.

    Deadlines grow with the window's end, so only the windows ending between ``after - offset - 2 days`` (a time of
    day moves a deadline by at most a day, plus DST) and ``until`` are looked at; partitions outside the declared
    range are never due.
    """
    if until <= after:
        return
    lo_time = after - sla.offset - timedelta(days=2)
    first = max(0, pdef.index_at_time(lo_time) - 1)
    last = pdef.index_at_time(until)  # windows starting after `until` end after it: never due yet
    if pdef.end is not None:
        last = min(last, pdef.index_at_time(pdef.end))
    for i in range(first, last + 1):
        d = deadline_after(sla, pdef.window(i)[1])
        if after < d <= until:
            yield pdef.key_of(i), d


def judge(due: datetime, *, now: datetime, status: Status, materialized_at: datetime | None) -> SlaVerdict:
    """The verdict of one partition with deadline ``due`` seen at ``now`` (all naive UTC)."""
    if now < due:
        return SlaVerdict(Verdict.OPEN)
    if status == Status.FRESH:
        if materialized_at is not None and materialized_at > due:
            return SlaVerdict(Verdict.MISSED, "LATE")
        return SlaVerdict(Verdict.MET)
    return SlaVerdict(Verdict.MISSED, status.value)


def at_risk(due: datetime, *, now: datetime, status: Status) -> bool:
    """An open deadline whose partition is not FRESH yet."""
    return now < due and status != Status.FRESH
