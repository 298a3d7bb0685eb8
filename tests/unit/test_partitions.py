"""Partitions: keys, ranges, validation — examples and properties."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.core.partitions import (
    UNPARTITIONED_KEY,
    StaticPartitions,
    TimeWindowPartitions,
    Unpartitioned,
    check_key_is_safe,
    parse_partitions,
    partition_date,
)
from notebook_orch.errors import PartitionError


def test_daily_range_keys_and_count():
    p = parse_partitions("daily:2013-01-01..2013-12-31")
    assert p.count() == 365
    keys = p.keys()
    assert keys[0] == "2013-01-01" and keys[-1] == "2013-12-31" and len(keys) == 365
    assert p.index_of("2013-02-01") == 31
    assert partition_date(p, "2013-02-01").isoformat() == "2013-02-01"


def test_hourly_weekly_monthly_keys():
    assert parse_partitions("hourly:2013-01-01..2013-01-01T23").keys()[-1] == "2013-01-01T23"
    assert parse_partitions("hourly:2013-01-01..2013-01-01T23").count() == 24
    assert parse_partitions("weekly:2013-01-07..2013-01-28").keys() == (
        "2013-01-07", "2013-01-14", "2013-01-21", "2013-01-28")
    assert parse_partitions("monthly:2013-01..2013-12").keys()[11] == "2013-12"


def test_open_ended_partitions_depend_on_now():
    p = parse_partitions("daily:2013-01-01")
    assert p.count(now=datetime(2013, 1, 4, 12)) == 3  # only windows that have ended
    with pytest.raises(PartitionError, match="open-ended"):
        p.count()


def test_static_and_unpartitioned():
    p = parse_partitions("static:us,eu,apac")
    assert p.keys() == ("us", "eu", "apac") and p.index_of("eu") == 1
    with pytest.raises(PartitionError, match="not one of the static keys.*Did you mean 'eu'"):
        p.index_of("euu")
    assert parse_partitions(None) is not None and Unpartitioned().keys() == (UNPARTITIONED_KEY,)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("daily:2013-12-31..2013-01-01", "reversed"),
        ("daily:notadate", "not a date"),
        ("dayly:2013-01-01", "unknown kind 'dayly'.*Did you mean 'daily'"),
        ("daily", "needs a kind and a value"),
        ("static:", "needs a kind and a value"),
        ("static:a,a", "listed twice"),
        ("static:a/b", "path-like"),
        ("monthly:2013-01-15", "first of a month"),
        ("weekly:2013-01-07..2013-01-10", "not the start of a weekly window"),
    ],
)
def test_bad_partition_specs(spec, match):
    with pytest.raises(PartitionError, match=match):
        parse_partitions(spec)


@pytest.mark.parametrize(
    "key, match",
    [
        ("2014-01-01", "out of range.*'2013-01-01' to '2013-12-31'"),
        ("2012-12-31", "out of range"),
        ("../etc", "path-like"),
        ("2013/01/01", "path-like"),
        ("13-1-1", "not a daily key"),
    ],
)
def test_bad_partition_keys(key, match):
    with pytest.raises(PartitionError, match=match):
        parse_partitions("daily:2013-01-01..2013-12-31").index_of(key)


def test_path_like_keys_refused():
    for key in ["", "..", "a/b", "a\\b", ".hidden"]:
        with pytest.raises(PartitionError):
            check_key_is_safe(key)


grains = st.sampled_from(["hourly", "daily", "weekly", "monthly"])
starts = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1))


@given(grains, starts, st.integers(min_value=0, max_value=400))
def test_key_index_round_trip(grain, start, n):
    if grain == "monthly":
        start = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif grain == "hourly":
        start = start.replace(minute=0, second=0, microsecond=0)
    else:
        start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    p = TimeWindowPartitions(grain, start, None)
    end = p.window_start(n)
    bounded = TimeWindowPartitions(grain, start, end)
    assert bounded.count() == n + 1
    for i in {0, n // 2, n}:
        key = bounded.key_of(i)
        assert bounded.index_of(key) == i
        s, e = bounded.window(i)
        assert s < e and bounded.index_at_time(s) == i and bounded.index_at_time(e - timedelta(microseconds=1)) == i


@given(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=20, unique=True))
def test_static_keys_round_trip(keys):
    p = StaticPartitions(tuple(keys))
    assert [p.index_of(k) for k in keys] == list(range(len(keys)))
