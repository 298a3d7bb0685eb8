"""Partition keys as ranges (core/ranges.py) and the grouped stale summary (core/stale_summary.py): pure."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.core.partitions import parse_partitions
from notebook_orch.core.ranges import KeyRange, describe_keys, describe_ranges, key_ranges
from notebook_orch.core.stale_summary import CodeChange, render_stale, source_diff, summarize_stale
from notebook_orch.core.staleness import PartitionStatus, RootCause, StaleCause

DAYS = parse_partitions("daily:2013-01-01..2013-12-31").keys(now=datetime(2026, 1, 1))


def test_consecutive_days_become_one_range_with_its_count() -> None:
    missing = DAYS[31:]
    assert key_ranges(missing, DAYS) == (KeyRange("2013-02-01", "2013-12-31", 334),)
    assert describe_keys(missing, DAYS) == "2013-02-01..2013-12-31"


def test_gaps_split_ranges_and_singles_read_as_keys() -> None:
    keys = ["2013-01-05", "2013-01-01", "2013-01-02", "2013-01-03", "2013-01-07", "2013-01-02"]  # any order, dupes
    assert key_ranges(keys, DAYS) == (KeyRange("2013-01-01", "2013-01-03", 3), KeyRange("2013-01-05", "2013-01-05", 1),
                                      KeyRange("2013-01-07", "2013-01-07", 1))
    assert describe_keys(keys, DAYS) == "2013-01-01..2013-01-03, 2013-01-05, 2013-01-07"


def test_static_keys_follow_the_declared_order_and_unknown_keys_are_kept() -> None:
    order = ("us", "eu", "apac", "latam")
    assert describe_keys(["apac", "us", "eu", "gone"], order) == "us..apac, gone"
    assert key_ranges([], order) == ()


def test_many_ranges_are_cut_with_how_many_more() -> None:
    every_other = DAYS[0:20:2]
    assert describe_ranges(key_ranges(every_other, DAYS), limit=3) == (
        "2013-01-01, 2013-01-03, 2013-01-05 and 7 more ranges (7 partitions)")


@given(st.sets(st.integers(0, 364)))
def test_ranges_hold_exactly_the_keys(positions: set[int]) -> None:
    keys = [DAYS[i] for i in positions]
    ranges = key_ranges(keys, DAYS)
    expanded = [k for r in ranges for k in DAYS[DAYS.index(r.first): DAYS.index(r.last) + 1]]
    assert sorted(expanded) == sorted(keys) and sum(r.count for r in ranges) == len(keys)
    assert all(DAYS.index(b.first) > DAYS.index(a.last) + 1 for a, b in zip(ranges, ranges[1:]))  # maximal runs


def _missing_upstream(asset: str, key: str, upstream_keys: tuple[str, ...]) -> PartitionStatus:
    cause = StaleCause("upstream_missing", "upstream missing: ...", "flights_daily", upstream_keys)
    roots = tuple(RootCause("flights_daily", k, "MISSING", ()) for k in upstream_keys)
    return PartitionStatus(asset, key, "STALE", (cause,), roots)


def _order(asset: str) -> tuple[str, ...]:
    return ("unpartitioned",) if asset == "carrier_leaderboard" else DAYS


def test_an_all_dependency_missing_334_partitions_is_one_line() -> None:
    stale = [_missing_upstream("carrier_leaderboard", "unpartitioned", DAYS[31:])]
    assert render_stale(summarize_stale(stale, _order)) == [
        "carrier_leaderboard: stale",
        "  upstream missing: flights_daily 2013-02-01..2013-12-31: 334 missing",  # the root cause says the same
    ]


def test_a_code_change_is_shown_once_per_asset_with_its_cell_and_diff() -> None:
    code = StaleCause("code_changed", "code changed: ...")
    flights = [PartitionStatus("flights_daily", k, "STALE", (code,)) for k in DAYS[:31]]
    delays = [PartitionStatus("delays_daily", k, "STALE", (
        StaleCause("upstream_stale", "", "flights_daily", (k,)),),
        (RootCause("flights_daily", k, "STALE", ("code_changed",)),)) for k in DAYS[:31]]
    change = CodeChange("flights_daily", "notebooks/flights.ipynb, cell 5", "bbbb", "f = load()\nflights = f[f.x]\n",
                        "aaaa", "f = load()\nflights = f\n", key_ranges(DAYS[:31], DAYS), 31)
    lines = render_stale(summarize_stale(flights + delays, _order), {"flights_daily": [change]})
    assert lines == [
        "flights_daily 2013-01-01..2013-01-31: 31 stale",
        "  code changed in notebooks/flights.ipynb, cell 5",
        "    --- built (aaaa)",
        "    +++ now (bbbb)",
        "    @@ -1,2 +1,2 @@",
        "     f = load()",
        "    -flights = f",
        "    +flights = f[f.x]",
        "delays_daily 2013-01-01..2013-01-31: 31 stale",
        "  upstream stale: flights_daily 2013-01-01..2013-01-31: 31 stale",
        "  root cause: flights_daily 2013-01-01..2013-01-31: 31 code changed",
    ]


def test_a_cause_shared_by_some_partitions_says_which_and_unknown_sources_say_so() -> None:
    code = StaleCause("code_changed", "code changed: ...")
    data = StaleCause("upstream_data_changed", "", "raw", ("2013-01-03",))
    stale = [PartitionStatus("clean", k, "STALE", (code,)) for k in DAYS[:5]]
    stale[2] = PartitionStatus("clean", DAYS[2], "STALE", (code, data))
    change = CodeChange("clean", "nb.ipynb, cell 2", "new", "x = 2\n", "old", None, key_ranges(DAYS[:5], DAYS), 5)
    assert render_stale(summarize_stale(stale, _order), {"clean": [change]}) == [
        "clean 2013-01-01..2013-01-05: 5 stale",
        "  code changed in nb.ipynb, cell 2",
        "    (built with old, whose source the store does not have: it was built before sources were kept)",
        "  upstream data changed: raw 2013-01-03: 1 with new data (for 2013-01-03: 1)",
    ]


def test_long_diffs_are_cut_and_say_how_much_is_left() -> None:
    old = "".join(f"a{i} = {i}\n" for i in range(40))
    new = "".join(f"a{i} = {i + 1}\n" for i in range(40))
    lines = source_diff(old, new, max_lines=20)
    assert len(lines) == 21 and lines[-1] == "... 63 more diff lines (--json shows all)"
    assert len(source_diff(old, new, max_lines=None)) == 83  # 3 header lines, 40 removed, 40 added
