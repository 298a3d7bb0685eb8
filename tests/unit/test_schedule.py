"""Cron ticks, targets and catch-up as pure functions with an injected clock (no sleeping)."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from notebook_orch.core.partitions import parse_partitions
from notebook_orch.core.schedule import (
    CatchupPolicy,
    ScheduleError,
    check_cron,
    next_tick,
    parse_catchup,
    plan_catchup,
    target_partition,
    ticks_between,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


def test_daily_ticks_are_in_the_schedules_time_zone():
    ticks = ticks_between("0 6 * * *", "Europe/Berlin", datetime(2024, 1, 1, tzinfo=UTC),
                          datetime(2024, 1, 3, tzinfo=UTC))
    assert [t.astimezone(UTC) for t in ticks] == [datetime(2024, 1, 1, 5, tzinfo=UTC),
                                                  datetime(2024, 1, 2, 5, tzinfo=UTC)]


def test_spring_forward_skipped_time_fires_at_the_first_existing_time():
    ticks = ticks_between("30 2 * * *", "Europe/Berlin", datetime(2024, 3, 29, 12, tzinfo=BERLIN),
                          datetime(2024, 4, 2, tzinfo=BERLIN))
    assert [t.astimezone(UTC) for t in ticks] == [
        datetime(2024, 3, 30, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2024, 3, 31, 1, 0, tzinfo=UTC),  # 02:30 does not exist: 03:00 CEST
        datetime(2024, 4, 1, 0, 30, tzinfo=UTC),  # 02:30 CEST
    ]


def test_fall_back_repeated_time_fires_in_each_offset():
    ticks = ticks_between("30 2 * * *", "Europe/Berlin", datetime(2024, 10, 26, 12, tzinfo=BERLIN),
                          datetime(2024, 10, 28, tzinfo=BERLIN))
    assert [t.astimezone(UTC) for t in ticks] == [
        datetime(2024, 10, 27, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2024, 10, 27, 1, 30, tzinfo=UTC),  # 02:30 CET, the repeated hour
    ]


def test_hourly_ticks_over_spring_forward_skip_the_missing_hour():
    ticks = ticks_between("0 * * * *", "Europe/Berlin", datetime(2024, 3, 31, 0, 30, tzinfo=BERLIN),
                          datetime(2024, 3, 31, 4, tzinfo=BERLIN))
    assert [t.astimezone(UTC).hour for t in ticks] == [0, 1, 2]  # 01:00 CET, 03:00 CEST, 04:00 CEST


def test_next_tick_and_naive_times_refused():
    after = datetime(2024, 1, 1, 0, 7, tzinfo=UTC)
    assert next_tick("*/15 * * * *", "UTC", after) == datetime(2024, 1, 1, 0, 15, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="timezone-aware"):
        next_tick("0 6 * * *", "UTC", datetime(2024, 1, 1))


@pytest.mark.parametrize("bad", ["0 6 * *", "61 * * * *", "0 6 * * * *", "every day"])
def test_bad_cron_names_the_expression_and_an_example(bad):
    with pytest.raises(ScheduleError, match="five-field cron expression.*'0 6 \\* \\* \\*'"):
        check_cron(bad)


def test_bad_timezone_suggests_close_matches():
    with pytest.raises(ScheduleError, match="'Europe/Berlin'"):
        ticks_between("0 6 * * *", "Europe/Berln", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))


def test_parse_catchup():
    assert parse_catchup("none") == CatchupPolicy("none")
    assert parse_catchup("latest") == CatchupPolicy("latest")
    assert parse_catchup("all") == CatchupPolicy("all")
    assert parse_catchup("all:7") == CatchupPolicy("all", 7)
    for bad in ["some", "all:0", "all:x", "latest:3"]:
        with pytest.raises(ScheduleError, match="--catchup"):
            parse_catchup(bad)


# Daily at 06:00 UTC; the daemon was down from just after the tick of Jan 1 until Jan 5 08:00.
LAST = datetime(2024, 1, 1, 6, tzinfo=UTC)
NOW = datetime(2024, 1, 5, 8, tzinfo=UTC)
MISSED = [datetime(2024, 1, d, 6, tzinfo=UTC) for d in (2, 3, 4, 5)]


def test_catchup_all_fires_every_missed_tick_oldest_first():
    plan = plan_catchup("0 6 * * *", "UTC", last_tick=LAST, now=NOW, policy=CatchupPolicy("all"))
    assert list(plan.fire) == MISSED and plan.skipped == 0


def test_catchup_all_n_fires_the_most_recent_n():
    plan = plan_catchup("0 6 * * *", "UTC", last_tick=LAST, now=NOW, policy=CatchupPolicy("all", 2))
    assert list(plan.fire) == MISSED[-2:] and plan.skipped == 2


def test_catchup_latest_fires_only_the_newest():
    plan = plan_catchup("0 6 * * *", "UTC", last_tick=LAST, now=NOW, policy=CatchupPolicy("latest"))
    assert list(plan.fire) == MISSED[-1:] and plan.skipped == 3


def test_catchup_none_drops_late_ticks_but_fires_an_on_time_one():
    late = plan_catchup("0 6 * * *", "UTC", last_tick=LAST, now=NOW, policy=CatchupPolicy("none"))
    assert late.fire == () and late.skipped == 4
    on_time = plan_catchup("0 6 * * *", "UTC", last_tick=LAST, now=datetime(2024, 1, 2, 6, 0, 2, tzinfo=UTC),
                           policy=CatchupPolicy("none"))
    assert list(on_time.fire) == [MISSED[0]] and on_time.skipped == 0


def test_nothing_due_and_a_tick_exactly_at_now_is_due():
    assert plan_catchup("0 6 * * *", "UTC", last_tick=MISSED[0], now=MISSED[0] + timedelta(hours=1),
                        policy=CatchupPolicy("all")).fire == ()
    assert plan_catchup("0 6 * * *", "UTC", last_tick=LAST, now=MISSED[0], policy=CatchupPolicy("latest")).fire == (
        MISSED[0],)


def test_latest_targets_yesterday_for_a_daily_asset_at_six_local():
    daily = parse_partitions("daily:2024-01-01")
    tick = datetime(2024, 3, 10, 6, tzinfo=BERLIN)
    assert target_partition(daily, "latest", tick, "Europe/Berlin") == "2024-03-09"
    # 00:30 Berlin is still the previous UTC day; the local wall clock decides.
    assert target_partition(daily, "latest", datetime(2024, 3, 9, 23, 30, tzinfo=UTC), "Europe/Berlin") == "2024-03-09"


def test_latest_for_other_grains_and_edges():
    monthly = parse_partitions("monthly:2024-01-01")
    assert target_partition(monthly, "latest", datetime(2024, 3, 1, 6, tzinfo=UTC), "UTC") == "2024-02"
    hourly = parse_partitions("hourly:2024-01-01-00:00")
    assert target_partition(hourly, "latest", datetime(2024, 1, 2, 5, 10, tzinfo=UTC), "UTC") == "2024-01-02T04"
    assert target_partition(parse_partitions("daily:2024-01-01"), "latest", datetime(2024, 1, 1, 6, tzinfo=UTC),
                            "UTC") is None  # no partition has ended yet
    assert target_partition(parse_partitions(None), "latest", datetime(2024, 1, 1, tzinfo=UTC), "UTC") is None
    with pytest.raises(ScheduleError, match="needs time partitions"):
        target_partition(parse_partitions("static:us,eu"), "latest", datetime(2024, 1, 1, tzinfo=UTC), "UTC")


def test_key_templates():
    daily = parse_partitions("daily:2024-01-01")
    tick = datetime(2024, 3, 10, 6, tzinfo=UTC)
    assert target_partition(daily, "{yesterday}", tick, "UTC") == "2024-03-09"
    assert target_partition(daily, "{date}", tick, "UTC") == "2024-03-10"
    assert target_partition(daily, "{tick:%Y-%m}", tick, "UTC") == "2024-03"
    assert target_partition(daily, "us", tick, "UTC") == "us"
    for bad in ["{tick.__class__}", "{nope}", "{tick[0]}"]:
        with pytest.raises(ScheduleError, match="--partition|template field"):
            target_partition(daily, bad, tick, "UTC")
