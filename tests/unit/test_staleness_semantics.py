"""STALE means materializing clears it: reverted data, ``[all]`` over what exists, failed and canceled attempts.

Exact statuses, cause lists and messages, with the consumed-versions lookup of the test double (``MemoryHistory``).
"""

from dataclasses import replace
from datetime import datetime

from notebook_orch.core.graph import build_graph
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.core.status import CauseKind, Status
from notebook_orch.testing import MemoryHistory

NOW = datetime(2014, 1, 1)
DAYS = "--partitions daily:2013-01-01..2013-01-10"


def s(line, cv="c1"):
    return replace(parse_declaration(line, notebook="nb.ipynb", cell=1), code_version=cv)


def resolve(g, h, *, lookup=True):
    return resolve_staleness(g, h.snapshot(), now=NOW, consumed=h.consumed_versions if lookup else None)


def causes(rep, asset, key):
    return [(c.kind, c.message) for c in rep.explain(asset, key).causes]


# -- (a) reverted data is no change ----------------------------------------------------------------------------------


def two_steps():
    a, b = s(f"a {DAYS}"), s(f"b --deps a {DAYS}")
    g, h = build_graph([a, b]), MemoryHistory()
    keys = a.partitions.keys()
    for k in keys:
        h.materialize(a, k, data_version="A")
        h.materialize(b, k, inputs=[("a", k)])
    return g, h, a, b, keys


def test_data_that_reverts_a_b_a_is_no_change():
    g, h, a, b, keys = two_steps()
    h.materialize(a, keys[2], data_version="B")
    rep = resolve(g, h)
    assert rep.status("b", keys[2]) == Status.STALE
    assert [k for k, _ in causes(rep, "b", keys[2])] == [CauseKind.UPSTREAM_DATA_CHANGED]
    h.materialize(a, keys[2], data_version="A")
    h.lookups.clear()
    rep = resolve(g, h)
    assert rep.status("b", keys[2]) == Status.FRESH
    assert rep.explain("b", keys[2]).causes == () and rep.totals()[Status.STALE] == 0
    # Only the partition whose upstream sequence moved was looked up, once.
    assert h.lookups == [(h.rows[("b", keys[2])]["materialization_id"],)]
    # Without the lookup the sequence test alone decides (the documented fallback).
    assert resolve(g, h, lookup=False).status("b", keys[2]) == Status.STALE


def test_reverting_after_a_rebuild_on_the_new_data_is_a_change():
    g, h, a, b, keys = two_steps()
    h.materialize(a, keys[2], data_version="B")
    h.materialize(b, keys[2], inputs=[("a", keys[2])])  # built on B
    assert resolve(g, h).status("b", keys[2]) == Status.FRESH
    h.materialize(a, keys[2], data_version="A")
    rep = resolve(g, h)
    [(kind, message)] = causes(rep, "b", keys[2])
    assert kind == CauseKind.UPSTREAM_DATA_CHANGED
    assert message.startswith(f"upstream data changed: a[{keys[2]}] got new data at ")


def test_incremental_apply_agrees_on_a_revert():
    g, h, a, b, keys = two_steps()
    rep = resolve(g, h)
    for version, expected in (("B", Status.STALE), ("A", Status.FRESH)):
        h.materialize(a, keys[4], data_version=version)
        changed = rep.apply(h.snapshot(only=[("a", keys[4])]).assets)
        assert rep.status("b", keys[4]) == expected
        assert ("b", keys[4]) in changed


# -- (b) [all] reads what exists -------------------------------------------------------------------------------------


def leaderboard(materialized=(0, 1, 2)):
    daily, board = s(f"daily {DAYS}"), s("board --deps daily[all]")
    g, h = build_graph([daily, board]), MemoryHistory()
    keys = daily.partitions.keys()
    for i in materialized:
        h.materialize(daily, keys[i])
    h.materialize(board, "unpartitioned", inputs=[("daily", keys[i]) for i in materialized])
    return g, h, daily, board, keys


def test_all_built_from_every_existing_partition_is_fresh_with_its_coverage():
    g, h, *_ = leaderboard()
    rep = resolve(g, h)
    board = rep.explain("board", "unpartitioned")
    assert (board.status, board.causes, board.root_causes) == (Status.FRESH, (), ())
    assert board.notes == ("built from 3 of 10 partitions of daily",)
    assert rep.counts("daily")[Status.MISSING] == 7


def test_all_is_stale_when_a_partition_is_added_or_changed():
    g, h, daily, board, keys = leaderboard()
    h.materialize(daily, keys[5])
    rep = resolve(g, h)
    assert causes(rep, "board", "unpartitioned") == [(
        CauseKind.UPSTREAM_DATA_CHANGED,
        f"upstream data changed: daily[{keys[5]}] was materialized since this was built",
    )]
    assert rep.explain("board", "unpartitioned").causes[0].upstream_partitions == (keys[5],)
    h.materialize(board, "unpartitioned", inputs=[("daily", keys[i]) for i in (0, 1, 2, 5)])
    rep = resolve(g, h)
    assert rep.status("board", "unpartitioned") == Status.FRESH
    assert rep.explain("board", "unpartitioned").notes == ("built from 4 of 10 partitions of daily",)
    h.materialize(daily, keys[1], data_version="v2")
    [(kind, message)] = causes(resolve(g, h), "board", "unpartitioned")
    assert kind == CauseKind.UPSTREAM_DATA_CHANGED
    assert message.startswith(f"upstream data changed: daily[{keys[1]}] got new data at ")


def test_all_is_stale_when_a_partition_it_read_is_withdrawn():
    g, h, daily, board, keys = leaderboard()
    # The partitions definition shrank: daily[2013-01-03] is no partition any more (same code version, to isolate).
    shorter = replace(daily, partitions=parse_declaration("x --partitions daily:2013-01-01..2013-01-02").partitions)
    rep = resolve_staleness(build_graph([shorter, board]), h.snapshot(), now=NOW, consumed=h.consumed_versions)
    assert causes(rep, "board", "unpartitioned") == [(
        CauseKind.UPSTREAM_DATA_CHANGED,
        f"upstream data changed: daily[{keys[2]}] was read then and is gone now",
    )]


def test_all_with_nothing_upstream_is_missing_and_a_stale_partition_still_counts():
    daily, board = s(f"daily {DAYS}"), s("board --deps daily[all]")
    g = build_graph([daily, board])
    rep = resolve(g, MemoryHistory())
    assert rep.status("board", "unpartitioned") == Status.MISSING
    # Nothing to read at all: that upstream is what is missing.
    assert causes(rep, "board", "unpartitioned") == [(
        CauseKind.UPSTREAM_MISSING,
        "upstream missing: daily[2013-01-01, 2013-01-02, 2013-01-03] and 7 more are missing",
    )]
    g2, h, daily, board, keys = leaderboard()
    g3 = build_graph([replace(daily, code_version="c2"), board])
    rep = resolve_staleness(g3, h.snapshot(), now=NOW, consumed=h.consumed_versions)
    explained = rep.explain("board", "unpartitioned")
    assert [(c.kind, c.upstream_partitions) for c in explained.causes] == [
        (CauseKind.UPSTREAM_STALE, tuple(keys[:3]))]
    assert [(r.partition, r.kinds) for r in explained.root_causes] == [
        (k, (CauseKind.CODE_CHANGED,)) for k in keys[:3]]


def test_a_partitioned_reader_of_a_missing_partition_still_says_upstream_missing():
    a, b = s(f"a {DAYS}"), s(f"b --deps a[-1] {DAYS}")
    g, h = build_graph([a, b]), MemoryHistory()
    keys = a.partitions.keys()
    h.materialize(a, keys[1])
    h.materialize(b, keys[1], inputs=[])
    rep = resolve(g, h)
    assert causes(rep, "b", keys[1]) == [(CauseKind.UPSTREAM_MISSING, f"upstream missing: a[{keys[0]}] is missing")]


# -- (c) failed and canceled attempts --------------------------------------------------------------------------------


def test_failed_and_canceled_attempts_leave_an_existing_value_its_status():
    g, h, a, b, keys = two_steps()
    h.fail("a", keys[0])
    h.cancel("a", keys[1])
    rep = resolve(g, h)
    assert [rep.status("a", k) for k in keys[:2]] == [Status.FRESH, Status.FRESH]
    assert rep.explain("a", keys[0]).notes == (
        "the last attempt (run failed-run) failed; the value shown is from an earlier run",)
    assert rep.explain("a", keys[1]).notes == (
        "the last attempt (run canceled-run) was canceled; the value shown is from an earlier run",)
    assert [rep.status("b", k) for k in keys[:2]] == [Status.FRESH, Status.FRESH]


def test_failed_over_nothing_is_failed_and_canceled_over_nothing_is_missing():
    a, b = s(f"a {DAYS}"), s(f"b --deps a {DAYS}")
    g, h = build_graph([a, b]), MemoryHistory()
    keys = a.partitions.keys()
    h.fail("a", keys[0])
    h.cancel("a", keys[1])
    rep = resolve(g, h)
    assert rep.status("a", keys[0]) == Status.FAILED and rep.status("a", keys[1]) == Status.MISSING
    assert causes(rep, "b", keys[0]) == [(CauseKind.UPSTREAM_FAILED, f"upstream failed: a[{keys[0]}] is failed")]
    assert causes(rep, "b", keys[1]) == [(CauseKind.UPSTREAM_MISSING, f"upstream missing: a[{keys[1]}] is missing")]
    assert rep.totals()[Status.FAILED] == 1


def test_a_stale_value_stays_stale_after_a_failed_attempt():
    g, h, a, b, keys = two_steps()
    h.materialize(a, keys[0], data_version="B")
    h.fail("b", keys[0])
    rep = resolve(g, h)
    assert rep.status("b", keys[0]) == Status.STALE
    assert [k for k, _ in causes(rep, "b", keys[0])] == [CauseKind.UPSTREAM_DATA_CHANGED]
