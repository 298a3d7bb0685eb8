"""Per-partition SLAs, pure: the --sla syntax, deadlines (time zones, DST), which deadlines fall due, verdicts."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from notebook_orch.core.partitions import parse_partitions
from notebook_orch.core.sla import (
    SlaError,
    Verdict,
    deadline,
    due_partitions,
    format_duration,
    judge,
    parse_duration,
    parse_sla,
)
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.status import Status
from notebook_orch.errors import DeclarationError

DAILY = parse_partitions("daily:2024-01-01")
HOURLY = parse_partitions("hourly:2024-01-01T00")


@pytest.mark.parametrize("text, offset, at, tz", [
    ("06:00", timedelta(0), time(6, 0), "UTC"),
    ("6:30 Europe/Berlin", timedelta(0), time(6, 30), "Europe/Berlin"),
    ("06:00+1d Europe/Berlin", timedelta(days=1), time(6, 0), "Europe/Berlin"),
    ("06:00 +1d", timedelta(days=1), time(6, 0), "UTC"),
    ("+2h", timedelta(hours=2), None, "UTC"),
    ("+1d12h America/New_York", timedelta(hours=36), None, "America/New_York"),
])
def test_parse_sla_forms(text, offset, at, tz):
    sla = parse_sla(text)
    assert (sla.offset, sla.at, sla.tz) == (offset, at, tz)


@pytest.mark.parametrize("text, match", [
    ("", "not an SLA"),
    ("Europe/Berlin", "not an SLA"),
    ("25:00", "not a time of day"),
    ("06:61", "not a time of day"),
    ("06:00 Mars/Olympus", "not an IANA time zone"),
    ("+2x", "not a duration"),
    ("+400d", "more than 366d"),
    ("tomorrow", "not an SLA"),
])
def test_bad_sla_says_what_and_how(text, match):
    with pytest.raises(SlaError, match=match):
        parse_sla(text)


def test_declaration_refuses_sla_without_time_windows_and_names_the_cell():
    with pytest.raises(DeclarationError, match="needs time-window partitions") as info:
        parse_declaration("%%asset a --partitions static:us,eu --sla 06:00", notebook="nb.ipynb", cell=2)
    assert str(info.value).startswith("nb.ipynb, cell 3: ")
    with pytest.raises(DeclarationError, match="needs time-window partitions"):
        parse_declaration("%%asset a --sla '+2h'")
    spec = parse_declaration("%%asset a --partitions daily:2024-01-01 --sla '06:00+1d  Europe/Berlin'")
    assert spec.sla.text == "06:00+1d Europe/Berlin"


def test_daily_deadline_is_the_next_morning_in_the_zone():
    # 2024-01-05's window ends 2024-01-06 00:00 UTC = 01:00 in Berlin (CET, +1): the first 06:00 after is that day.
    assert deadline(parse_sla("06:00 Europe/Berlin"), DAILY, "2024-01-05") == datetime(2024, 1, 6, 5, 0)
    assert deadline(parse_sla("06:00"), DAILY, "2024-01-05") == datetime(2024, 1, 6, 6, 0)
    assert deadline(parse_sla("06:00+1d Europe/Berlin"), DAILY, "2024-01-05") == datetime(2024, 1, 7, 5, 0)
    # Summer (CEST, +2).
    assert deadline(parse_sla("06:00 Europe/Berlin"), DAILY, "2024-07-05") == datetime(2024, 7, 6, 4, 0)
    # A time of day before the window's end in the zone's wall clock moves to the next day: New York is 19:00 the
    # evening before when a UTC day ends, so 18:00 there is almost a day later.
    assert deadline(parse_sla("18:00 America/New_York"), DAILY, "2024-01-05") == datetime(2024, 1, 6, 23, 0)


def test_offset_only_and_hourly():
    assert deadline(parse_sla("+2h"), HOURLY, "2024-01-05T10") == datetime(2024, 1, 5, 13, 0)
    assert deadline(parse_sla("+30m"), DAILY, "2024-01-05") == datetime(2024, 1, 6, 0, 30)


def test_dst_spring_forward_moves_a_skipped_time_to_the_first_that_exists():
    # 02:30 does not exist in Berlin on 2024-03-31 (clocks jump from 02:00 to 03:00 CEST = 01:00 UTC).
    got = deadline(parse_sla("02:30 Europe/Berlin"), DAILY, "2024-03-30")
    assert got == datetime(2024, 3, 31, 1, 30)  # zoneinfo reads 02:30 with the winter offset: 03:30 CEST
    # Fall back: 02:30 happens twice on 2024-10-27; the first (CEST, 00:30 UTC) is the deadline.
    assert deadline(parse_sla("02:30 Europe/Berlin"), DAILY, "2024-10-26") == datetime(2024, 10, 27, 0, 30)


def test_due_partitions_lists_each_deadline_once_across_consecutive_intervals():
    sla = parse_sla("06:00 Europe/Berlin")
    start, cut, end = datetime(2024, 1, 3), datetime(2024, 1, 6, 5, 0), datetime(2024, 1, 9)
    first = list(due_partitions(sla, DAILY, after=start, until=cut))
    second = list(due_partitions(sla, DAILY, after=cut, until=end))
    assert [k for k, _ in first] == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    assert [k for k, _ in second] == ["2024-01-06", "2024-01-07"]
    whole = list(due_partitions(sla, DAILY, after=start, until=end))
    assert whole == first + second
    assert list(due_partitions(sla, DAILY, after=end, until=end)) == []


def test_due_partitions_stay_inside_the_declared_range():
    pdef = parse_partitions("daily:2024-01-01..2024-01-03")
    got = [k for k, _ in due_partitions(parse_sla("+1h"), pdef, after=datetime(2023, 1, 1), until=datetime(2025, 1, 1))]
    assert got == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_judge():
    due = datetime(2024, 1, 6, 6)
    before, after = datetime(2024, 1, 6, 5), datetime(2024, 1, 6, 7)
    assert judge(due, now=before, status=Status.MISSING, materialized_at=None).verdict == Verdict.OPEN
    assert judge(due, now=after, status=Status.FRESH, materialized_at=before).verdict == Verdict.MET
    assert judge(due, now=due, status=Status.FRESH, materialized_at=due).verdict == Verdict.MET
    late = judge(due, now=after, status=Status.FRESH, materialized_at=after)
    assert (late.verdict, late.reason) == (Verdict.MISSED, "LATE")
    for status in (Status.MISSING, Status.STALE, Status.FAILED, Status.RUNNING):
        v = judge(due, now=after, status=status, materialized_at=before)
        assert (v.verdict, v.reason) == (Verdict.MISSED, status.value)


def test_durations():
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1d12h") == timedelta(hours=36)
    assert parse_duration("90m") == timedelta(minutes=90)
    with pytest.raises(SlaError, match="not a duration"):
        parse_duration("2 hours")
    assert format_duration(timedelta(hours=26, minutes=5)) == "1d2h"
    assert format_duration(-5400) == "-1h30m"
    assert format_duration(12) == "12s"
