"""Partition mappings as index ranges: exact examples and properties against a brute-force definition."""

from datetime import timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.core.mappings import mapping_problem, range_max, readers_of, upstream_ranges
from notebook_orch.core.partitions import parse_partitions
from notebook_orch.core.specs import AllPartitions, Identity, Offset, Window

DAILY = parse_partitions("daily:2013-01-01..2013-12-31")
HOURLY = parse_partitions("hourly:2013-01-01..2013-12-31T23")
MONTHLY = parse_partitions("monthly:2013-01..2013-12")


def ranges(down, up, mapping):
    lo, hi = upstream_ranges(down, up, mapping, down.count(), up.count())
    return [list(range(a, b)) for a, b in zip(lo.tolist(), hi.tolist())]


def test_identity_offset_window_all():
    assert ranges(DAILY, DAILY, Identity())[5] == [5]
    assert ranges(DAILY, DAILY, Offset(-1))[0] == [] and ranges(DAILY, DAILY, Offset(-1))[5] == [4]
    assert ranges(DAILY, DAILY, Window(-6, 0))[2] == [0, 1, 2]
    assert ranges(DAILY, DAILY, Window(-6, 0))[10] == list(range(4, 11))
    assert ranges(DAILY, DAILY, AllPartitions())[0] == list(range(365))


def test_grain_changes():
    month = ranges(MONTHLY, DAILY, Identity())
    assert month[0] == list(range(0, 31)) and month[1] == list(range(31, 59)) and month[11][-1] == 364
    day = ranges(DAILY, HOURLY, Identity())
    assert day[1] == list(range(24, 48))
    hour = ranges(HOURLY, DAILY, Identity())
    assert hour[25] == [1]


def test_unpartitioned_edges():
    report = parse_partitions(None)
    assert ranges(report, DAILY, AllPartitions()) == [list(range(365))]
    assert ranges(DAILY, report, Identity())[100] == [0]


def test_mappings_that_do_not_fit():
    static = parse_partitions("static:a,b")
    assert "NAME[all]" in mapping_problem(parse_partitions(None), DAILY, Identity())
    assert "same grain" in mapping_problem(MONTHLY, DAILY, Offset(-1))
    assert "static lists have no order" in mapping_problem(static, static, Offset(-1))
    assert "different kinds" in mapping_problem(static, DAILY, Identity())
    assert "no partition of the same key" in mapping_problem(parse_partitions("static:a,c"), static, Identity())
    assert "runs past the end" in mapping_problem(parse_partitions("daily:2013-01-01..2014-01-05"), DAILY,
                                                    Identity())
    assert "starts before" in mapping_problem(parse_partitions("daily:2012-12-01..2013-01-05"), DAILY, Identity())
    assert mapping_problem(DAILY, DAILY, Window(-6, 0)) is None
    assert mapping_problem(MONTHLY, DAILY, Identity()) is None


@given(st.integers(-10, 3), st.integers(0, 10), st.integers(1, 60))
def test_window_matches_brute_force(start, length, n):
    d = parse_partitions("daily:2013-01-01")
    lo, hi = upstream_ranges(d, d, Window(start, start + length), n, n)
    for i in range(n):
        expect = [q for q in range(i + start, i + start + length + 1) if 0 <= q < n]
        assert list(range(lo[i], hi[i])) == expect


@given(st.sampled_from(["hourly", "daily"]), st.sampled_from(["daily", "weekly", "monthly"]))
def test_grain_change_covers_exactly_overlapping_windows(fine, coarse):
    up = parse_partitions(f"{fine}:2013-01-07..2013-03-31" + ("T23" if fine == "hourly" else ""))
    down = parse_partitions({"daily": "daily:2013-01-07..2013-03-31", "weekly": "weekly:2013-01-07..2013-03-25",
                             "monthly": "monthly:2013-02..2013-03"}[coarse])
    if fine == coarse:
        return
    lo, hi = upstream_ranges(down, up, Identity(), down.count(), up.count())
    for i in range(down.count()):
        s, e = down.window(i)
        expect = [q for q in range(up.count()) if up.window(q)[0] < e and up.window(q)[1] > s]
        assert list(range(lo[i], hi[i])) == expect, (i, s, e)
    assert all(up.window(q)[1] - up.window(q)[0] <= timedelta(days=31) for q in range(3))


@given(st.lists(st.integers(-1, 1000), min_size=1, max_size=50), st.data())
def test_range_max_and_readers_match_brute_force(values, data):
    n = data.draw(st.integers(0, 30))
    los = sorted(data.draw(st.lists(st.integers(0, len(values)), min_size=n, max_size=n)))
    widths = data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    lo = np.array(los, dtype=np.int64)
    hi = np.minimum(lo + np.array(widths, dtype=np.int64), len(values))
    arr = np.array(values, dtype=np.int64)
    got = range_max(arr, lo, hi, -1)
    for i in range(n):
        seg = values[lo[i]:hi[i]]
        assert got[i] == (max(seg) if seg else -1)
    changed = np.array(sorted(set(data.draw(st.lists(st.integers(0, len(values) - 1), max_size=5)))), dtype=np.int64)
    expect = [i for i in range(n) if any(lo[i] <= q < hi[i] for q in changed)]
    assert readers_of(lo, hi, changed).tolist() == expect
