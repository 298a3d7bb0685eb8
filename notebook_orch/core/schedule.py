"""Cron schedules as pure functions: ticks in an explicit time zone, the partition a tick targets, catch-up.

Nothing here reads a clock: ``now`` and the last recorded tick come in as arguments, so downtime, DST and
catch-up are tested without sleeping. Tick times are timezone-aware datetimes; DST transitions behave exactly as
croniter defines them for a timezone-aware start: a wall-clock time skipped by spring-forward fires at the first
time that exists (02:30 Europe/Berlin on 2024-03-31 fires at 03:00 CEST); a time repeated by fall-back fires twice,
once in each offset (tests/unit/test_schedule.py pins both).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from notebook_orch.core.partitions import PartitionsDef, StaticPartitions, TimeWindowPartitions, Unpartitioned
from notebook_orch.errors import NotebookOrchError

CATCHUP_MODES = ("none", "latest", "all")
#: A tick found this late under ``--catchup none`` still fires: the daemon wakes at most this long after a tick.
ON_TIME_GRACE = timedelta(seconds=60)


class ScheduleError(NotebookOrchError, ValueError):
    """A schedule's declaration is wrong (cron, time zone, catch-up, partition rule); the message says the fix."""


@dataclass(frozen=True)
class CatchupPolicy:
    """``none``: missed ticks are dropped; ``latest``: only the most recent fires; ``all[:N]``: every one (the
    most recent N when N is given)."""

    mode: str = "latest"
    limit: int | None = None

    def describe(self) -> str:
        return f"all:{self.limit}" if self.mode == "all" and self.limit is not None else self.mode


@dataclass(frozen=True)
class CatchupPlan:
    """Which ticks fire now (oldest first) and how many missed ticks the policy drops."""

    fire: tuple[datetime, ...]
    skipped: int


def parse_catchup(text: str) -> CatchupPolicy:
    mode, sep, rest = text.strip().lower().partition(":")
    if mode not in CATCHUP_MODES or (sep and mode != "all"):
        raise ScheduleError(
            f"--catchup {text!r} is not a catch-up policy; use none, latest, all or all:N (e.g. all:7)."
        )
    if not sep:
        return CatchupPolicy(mode)
    if not rest.isdigit() or int(rest) < 1:
        raise ScheduleError(f"--catchup {text!r}: N in all:N must be a positive whole number, e.g. all:7.")
    return CatchupPolicy("all", int(rest))


def check_cron(expr: str) -> str:
    """The expression, normalized; five fields only (croniter's seconds field would tick too often to mean it)."""
    from croniter import croniter

    fields = expr.split()
    if len(fields) != 5 or not croniter.is_valid(expr):
        raise ScheduleError(
            f"--cron {expr!r} is not a five-field cron expression (minute hour day month weekday), e.g. '0 6 * * *'."
        )
    return " ".join(fields)


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name``; an unknown name is an error naming close matches."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        from difflib import get_close_matches

        near = get_close_matches(name, sorted(available_timezones()), n=3)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise ScheduleError(
            f"--timezone {name!r} is not an IANA time zone such as 'Europe/Paris' or 'UTC'.{hint}"
        ) from None


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ScheduleError(f"time {t.isoformat()} has no time zone; schedule times must be timezone-aware.")
    return t


def ticks_between(cron: str, tz: str, after: datetime, until: datetime, *, limit: int | None = None) -> list[datetime]:
    """Ticks ``t`` with ``after < t <= until`` in ``tz``, oldest first (at most ``limit``, the oldest ones)."""
    from croniter import croniter

    it = croniter(cron, _aware(after).astimezone(zone(tz)))
    out: list[datetime] = []
    while limit is None or len(out) < limit:
        t = it.get_next(datetime)
        if t > _aware(until):
            break
        out.append(t)
    return out


def next_tick(cron: str, tz: str, after: datetime) -> datetime:
    from croniter import croniter

    return croniter(cron, _aware(after).astimezone(zone(tz))).get_next(datetime)


def _recent_ticks(cron: str, tz: str, after: datetime, now: datetime, n: int) -> list[datetime]:
    """Up to ``n`` most recent ticks in ``(after, now]``, oldest first — walking back, so long downtime is cheap."""
    from croniter import croniter

    it = croniter(cron, _aware(now).astimezone(zone(tz)) + timedelta(microseconds=1))
    out: list[datetime] = []
    while len(out) < n:
        t = it.get_prev(datetime)
        if t <= after:
            break
        out.append(t)
    return out[::-1]


def plan_catchup(
    cron: str, tz: str, *, last_tick: datetime, now: datetime, policy: CatchupPolicy,
) -> CatchupPlan:
    """The ticks due after ``last_tick`` (the last one recorded, or when the schedule was added) up to ``now``."""
    if policy.mode == "all" and policy.limit is None:
        due = ticks_between(cron, tz, last_tick, now)
        return CatchupPlan(tuple(due), 0)
    keep = policy.limit if policy.mode == "all" and policy.limit else 1
    recent = _recent_ticks(cron, tz, last_tick, now, keep)
    if not recent:
        return CatchupPlan((), 0)
    # Counting what is dropped walks forward from the newest kept tick's predecessor range only when asked for;
    # the figure is for logs and history, so count lazily with a bound.
    dropped = len(ticks_between(cron, tz, last_tick, recent[0], limit=10_000)) - 1
    if policy.mode == "none":
        on_time = [t for t in recent if _aware(now) - t <= ON_TIME_GRACE]
        return CatchupPlan(tuple(on_time), dropped + len(recent) - len(on_time))
    return CatchupPlan(tuple(recent), dropped)


class _SafeFormatter(string.Formatter):
    """``str.format`` without attribute or index access, so a template cannot reach into objects."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if not field_name.isidentifier():
            raise ScheduleError(
                f"partition template field {{{field_name}}} is not allowed; use {{tick:FORMAT}}, {{date}} or "
                "{yesterday}, e.g. '{yesterday}' or '{tick:%Y-%m}'."
            )
        return super().get_field(field_name, args, kwargs)


def target_partition(pdef: PartitionsDef, rule: str, tick: datetime, tz: str) -> str | None:
    """The partition key a tick targets; None means the whole (unpartitioned) asset.

    ``latest``: the last partition complete at the tick's wall-clock time in ``tz`` (yesterday for a daily asset
    ticking at 06:00). Anything else is a template over the tick's local time: ``{date}``, ``{yesterday}``
    (YYYY-MM-DD), ``{tick:%Y-%m}`` (any strftime format).
    """
    local = _aware(tick).astimezone(zone(tz))
    if rule == "latest":
        if isinstance(pdef, Unpartitioned):
            return None
        if isinstance(pdef, StaticPartitions):
            raise ScheduleError(
                f"--partition latest needs time partitions, but the selection is {pdef.describe()}; "
                "name the key instead, e.g. --partition us."
            )
        assert isinstance(pdef, TimeWindowPartitions)
        index = pdef.index_at_time(local.replace(tzinfo=None)) - 1
        if index < 0 or (pdef.end is not None and index > pdef.index_at_time(pdef.end)):
            return None if index < 0 else pdef.key_of(pdef.index_at_time(pdef.end))
        return pdef.key_of(index)
    yesterday = (local - timedelta(days=1)).date().isoformat()
    values = {"tick": local, "date": local.date().isoformat(), "yesterday": yesterday}
    try:
        return _SafeFormatter().format(rule, **values)
    except (KeyError, IndexError, ValueError) as e:
        if isinstance(e, ScheduleError):
            raise
        raise ScheduleError(
            f"--partition {rule!r} is neither 'latest' nor a template ({e}); use 'latest', '{{yesterday}}' or "
            "'{tick:%Y-%m}'."
        ) from None


def utc(t: datetime) -> datetime:
    """``t`` in UTC (how ticks are stored)."""
    return _aware(t).astimezone(timezone.utc)
