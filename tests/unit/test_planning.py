"""Planning: which runs start, in what order, and every reason a plan cannot be made — exact, no I/O."""

from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.core.graph import build_graph, validate_specs
from notebook_orch.core.planning import (
    PartitionSelection,
    PlanError,
    PlannedRun,
    RunPlan,
    key_interval,
    plan_materialization,
)
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.errors import NotebookOrchError
from notebook_orch.testing import MemoryHistory

NOW = datetime(2014, 1, 1)
D5 = "--partitions daily:2013-01-01..2013-01-05"
D20 = "--partitions daily:2013-01-01..2013-01-20"
U = "unpartitioned"


def s(line, nb="x.ipynb", cell=0):
    return replace(parse_declaration(line, notebook=nb, cell=cell), code_version="c1")


def days(first, last):
    return [f"2013-01-{d:02d}" for d in range(first, last + 1)]


def materialize(graph, history, names=None, only=None):
    """Materialize partitions upstream first, each reading what its mappings say (so they come out FRESH)."""
    edges = resolve_staleness(graph, MemoryHistory().snapshot(), now=NOW)
    for name in graph.order:
        if names is not None and name not in names:
            continue
        for key in edges.keys(name):
            if only is not None and key not in only:
                continue
            inputs = [(u, k) for u, k, _ in edges.upstream_partitions(name, key) if (u, k) in history.rows]
            history.materialize(graph.spec(name), key, inputs=inputs)
    return history


def setup(specs, history=None, fill=False):
    g = build_graph(specs)
    h = history or MemoryHistory()
    if fill:
        materialize(g, h)
    return g, h, resolve_staleness(g, h.snapshot(), now=NOW)


def plan(g, rep, selection, *keys, start=None, end=None, **kw):
    sel = PartitionSelection(tuple(keys), start, end) if keys or start or end else None
    return plan_materialization(g, rep, selection=selection, partitions=sel, **kw)


def problems(g, rep, selection, *keys, **kw):
    with pytest.raises(PlanError) as err:
        plan(g, rep, selection, *keys, **kw)
    return err.value.problems


def targets_of(p, asset):
    return [k for a, k in p.targets if a == asset]


# -- which partitions ---------------------------------------------------------------------------------------------
def test_no_partition_selection_means_every_partition():
    g, _, rep = setup([s(f"a {D5}"), s("st --partitions static:us,eu,jp", "y.ipynb"), s("u", "z.ipynb")])
    p = plan(g, rep, ["a", "st", "u"])
    assert targets_of(p, "a") == days(1, 5)
    assert targets_of(p, "st") == ["us", "eu", "jp"]
    assert targets_of(p, "u") == [U]
    assert plan_materialization(g, rep, selection=["a"], partitions=PartitionSelection()).targets == p.targets[:5]


def test_keys_and_inclusive_ranges_on_a_daily_asset():
    g, _, rep = setup([s(f"a {D5}")])
    assert targets_of(plan(g, rep, ["a"], "2013-01-04", "2013-01-02"), "a") == ["2013-01-02", "2013-01-04"]
    assert targets_of(plan(g, rep, ["a"], start="2013-01-02", end="2013-01-04"), "a") == days(2, 4)
    assert targets_of(plan(g, rep, ["a"], start="2013-01-04"), "a") == days(4, 5)
    assert targets_of(plan(g, rep, ["a"], end="2013-01-01"), "a") == days(1, 1)
    # A range reaching past the asset's partitions is clipped to them.
    assert targets_of(plan(g, rep, ["a"], start="2012-12", end="2013-01-02"), "a") == days(1, 2)


def test_keys_are_time_intervals_whatever_the_grain():
    d = s("d --partitions daily:2013-01-01..2013-03-31")
    m = s("m --partitions monthly:2013-01..2013-03", "m.ipynb")
    w = s("w --partitions weekly:2013-01-07..2013-03-25", "w.ipynb")
    hr = s("hr --partitions hourly:2013-01-05T00..2013-01-06T23", "h.ipynb")
    g, _, rep = setup([d, m, w, hr])
    every = ["d", "m", "w", "hr"]
    p = plan(g, rep, every, "2013-01-09")  # a day: the month and the week containing it; no hours that day
    assert (targets_of(p, "d"), targets_of(p, "m"), targets_of(p, "w"), targets_of(p, "hr")) == (
        ["2013-01-09"], ["2013-01"], ["2013-01-07"], [])
    p = plan(g, rep, every, "2013-01-05T06")  # an hour
    assert (targets_of(p, "d"), targets_of(p, "m"), targets_of(p, "hr")) == (
        ["2013-01-05"], ["2013-01"], ["2013-01-05T06"])
    p = plan(g, rep, every, "2013-02")  # a month: all its days and the weeks overlapping it
    assert targets_of(p, "d") == [f"2013-02-{x:02d}" for x in range(1, 29)]
    assert targets_of(p, "w") == ["2013-01-28", "2013-02-04", "2013-02-11", "2013-02-18", "2013-02-25"]
    assert targets_of(p, "m") == ["2013-02"]
    p = plan(g, rep, ["d", "m"], start="2013-01-31", end="2013-02-01")
    assert (targets_of(p, "d"), targets_of(p, "m")) == (["2013-01-31", "2013-02-01"], ["2013-01", "2013-02"])
    p = plan(g, rep, ["hr"], "2013-01-06")
    assert targets_of(p, "hr") == [f"2013-01-06T{x:02d}" for x in range(24)]


def test_key_interval_shapes():
    assert key_interval("2013-12") == (datetime(2013, 12, 1), datetime(2014, 1, 1))
    assert key_interval("2013-01-05T23") == (datetime(2013, 1, 5, 23), datetime(2013, 1, 6))
    assert key_interval("2013-02-30") is None
    assert key_interval("us") is None


def test_static_keys_and_ranges():
    a, st_ = s(f"a {D5}"), s("st --partitions static:us,eu,jp", "y.ipynb")
    g, _, rep = setup([a, st_])
    assert targets_of(plan(g, rep, ["st"], "jp", "us"), "st") == ["us", "jp"]
    p = plan(g, rep, ["a", "st"], "eu", "2013-01-02")
    assert (targets_of(p, "a"), targets_of(p, "st")) == (["2013-01-02"], ["eu"])
    p = plan(g, rep, ["a", "st"], start="2013-01-02", end="2013-01-03")  # a range leaves static assets whole
    assert (targets_of(p, "a"), targets_of(p, "st")) == (days(2, 3), ["us", "eu", "jp"])
    assert problems(g, rep, ["st"], start="2013-01-02") == [
        "The range --from 2013-01-02 selects time partitions, but none of the selected assets is time-partitioned "
        "(st: static us, eu, jp); use --partition KEY instead."
    ]


def test_unpartitioned_asset_runs_its_one_partition():
    g, _, rep = setup([s(f"a {D5}"), s("u", "u.ipynb")])
    p = plan(g, rep, ["a", "u"], "2013-01-03")
    assert p.targets == (("a", "2013-01-03"), ("u", U))
    assert plan(g, rep, ["u"], U).targets == (("u", U),)
    assert problems(g, rep, ["u"], "2013-01-03") == [
        "Partition '2013-01-03' fits none of the selected assets (u: unpartitioned); pick a key in one of these ranges."
    ]


def test_bad_keys_are_named_with_every_valid_range():
    g, _, rep = setup([s(f"a {D5}"), s("st --partitions static:us,eu", "y.ipynb"), s("u", "u.ipynb")])
    ranges = "a: daily 2013-01-01..2013-01-05; st: static us, eu; u: unpartitioned"
    assert problems(g, rep, ["a", "st", "u"], "2013-02-01", "fr") == [
        f"Partition '2013-02-01' fits none of the selected assets ({ranges}); pick a key in one of these ranges.",
        f"Partition 'fr' fits none of the selected assets ({ranges}); pick a key in one of these ranges. "
        "Time keys look like 2013-01-05 (a day), 2013-01 (a month) or 2013-01-05T06 (an hour).",
    ]
    assert problems(g, rep, ["a"], "../etc", "2013-01-02") == [
        "Partition key '../etc' is path-like or empty; keys may not contain '/', '\\', '..' or start with '.'."
    ]
    assert problems(g, rep, ["a"], start="2013-01-04", end="2013-01-02") == [
        "The range --from 2013-01-04 --to 2013-01-02 is reversed: 2013-01-04 comes after 2013-01-02. Swap them."
    ]
    assert problems(g, rep, ["a"], start="2013-02", end="2013-01-31") == [
        "The range --from 2013-02 --to 2013-01-31 is reversed: 2013-02 comes after 2013-01-31. Swap them."
    ]
    assert problems(g, rep, ["a"], start="2014-01-01", end="2014-02-01") == [
        "The range --from 2014-01-01 --to 2014-02-01 fits none of the selected assets "
        "(a: daily 2013-01-01..2013-01-05); pick dates in one of them."
    ]
    assert problems(g, rep, ["a"], start="soon", end="../x") == [
        "Partition key '../x' is path-like or empty; keys may not contain '/', '\\', '..' or start with '.'."
    ]
    assert problems(g, rep, ["a"], start="soon") == [
        "--from 'soon' is not a time key; write it like 2013-01-05 (a day), 2013-01 (a month) or 2013-01-05T06 "
        "(an hour)."
    ]
    with pytest.raises(PlanError, match="not both"):
        plan_materialization(g, rep, selection=["a"], partitions=PartitionSelection(("2013-01-01",), "2013-01-01"))


def test_unknown_names_and_empty_selection():
    g, _, rep = setup([s(f"sales_raw {D5}")])
    assert problems(g, rep, ["sales_rw"]) == ["No asset named 'sales_rw' in the project. Did you mean 'sales_raw'?"]
    assert problems(g, rep, [])[0].startswith("Nothing selected")


def test_plan_error_lists_every_problem_once():
    err = PlanError(["one", "two"])
    assert isinstance(err, NotebookOrchError) and err.problems == ["one", "two"]
    assert str(err) == "2 problems with the plan:\n  - one\n  - two"
    assert str(PlanError(["only"])) == "only"


# -- downstream closure -------------------------------------------------------------------------------------------
def test_downstream_through_identity_is_transitive():
    g, _, rep = setup([s(f"a {D5}"), s(f"b --deps a {D5}", cell=1), s(f"c --deps b {D5}", "y.ipynb")], fill=True)
    p = plan(g, rep, ["a"], "2013-01-02", downstream=True)
    assert p.targets == (("a", "2013-01-02"), ("b", "2013-01-02"), ("c", "2013-01-02"))
    assert plan(g, rep, ["a"], "2013-01-02").targets == (("a", "2013-01-02"),)


def test_downstream_through_a_window_reaches_six_partitions_forward():
    g, _, rep = setup([s(f"a {D20}"), s(f"w --deps a[-6:0] {D20}", "w.ipynb")], fill=True)
    assert targets_of(plan(g, rep, ["a"], "2013-01-03", downstream=True), "w") == days(3, 9)
    assert targets_of(plan(g, rep, ["a"], "2013-01-18", downstream=True), "w") == days(18, 20)  # clipped at the end


def test_downstream_through_grain_changes():
    d = s("d --partitions daily:2013-01-01..2013-03-31")
    m = s("m --deps d --partitions monthly:2013-01..2013-03", "m.ipynb")
    mo = s("mo --partitions monthly:2013-01..2013-03", "mo.ipynb")
    dd = s("dd --deps mo --partitions daily:2013-01-01..2013-03-31", "dd.ipynb")
    g, _, rep = setup([d, m, mo, dd], fill=True)
    assert targets_of(plan(g, rep, ["d"], "2013-01-05", downstream=True), "m") == ["2013-01"]
    assert targets_of(plan(g, rep, ["mo"], "2013-02", downstream=True), "dd") == [
        f"2013-02-{x:02d}" for x in range(1, 29)]


def test_downstream_through_all():
    a = s(f"a {D5}")
    g, _, rep = setup([a, s("r --deps a[all]", "r.ipynb"), s(f"z --deps a[all] {D5}", "z.ipynb")], fill=True)
    p = plan(g, rep, ["a"], "2013-01-05", downstream=True)
    assert (targets_of(p, "r"), targets_of(p, "z")) == ([U], days(1, 5))


# -- upstream check -----------------------------------------------------------------------------------------------
def test_every_missing_upstream_partition_is_listed_in_one_error():
    a, q = s(f"a {D20}"), s("q --partitions daily:2013-01-01..2013-01-20", "q.ipynb")
    b = s(f"b --deps a,q[-1] {D20}", "b.ipynb")
    g, h, _ = setup([a, q, b])
    materialize(g, h, names={"a"}, only=days(1, 20)[::2])  # odd days of a exist
    materialize(g, h, names={"q"}, only=days(1, 3))
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    assert problems(g, rep, ["b"], start="2013-01-02", end="2013-01-08") == [
        "b[2013-01-02, 2013-01-04, 2013-01-06, 2013-01-08] reads a[2013-01-02, 2013-01-04, 2013-01-06, 2013-01-08], "
        "which have never been materialized; materialize it first, or add it to the selection (e.g. '+b').",
        "b[2013-01-05..2013-01-08] reads q[2013-01-04..2013-01-07], "
        "which have never been materialized; materialize it first, or add it to the selection (e.g. '+b').",
    ]


def test_failed_upstream_counts_only_without_an_earlier_value():
    a, b = s(f"a {D5}"), s(f"b --deps a {D5}", "b.ipynb")
    g, h, _ = setup([a, b], fill=True)
    h.fail("a", "2013-01-02")  # failed after a success: the old value is still there
    h2 = MemoryHistory()
    h2.fail("a", "2013-01-02")  # never succeeded
    assert plan(g, resolve_staleness(g, h.snapshot(), now=NOW), ["b"], "2013-01-02").targets == (("b", "2013-01-02"),)
    assert problems(g, resolve_staleness(g, h2.snapshot(), now=NOW), ["b"], "2013-01-02") == [
        "b[2013-01-02] reads a[2013-01-02], which has never been materialized; materialize it first, or add it to "
        "the selection (e.g. '+b')."
    ]


def test_no_upstream_error_through_all_or_when_the_upstream_is_planned():
    a, b, r = s(f"a {D5}"), s(f"b --deps a {D5}", "b.ipynb"), s("r --deps a[all]", "r.ipynb")
    g, _, rep = setup([a, b, r])  # nothing materialized
    assert plan(g, rep, ["r"]).targets == (("r", U),)
    assert len(plan(g, rep, ["a", "b"]).targets) == 10
    assert len(plan(g, rep, ["a"], downstream=True).targets) == 11
    assert plan(g, rep, ["a", "b"], "2013-01-03").targets == (("a", "2013-01-03"), ("b", "2013-01-03"))


def test_upstream_held_by_another_run_for_the_first_time_is_a_problem():
    a, b = s(f"a {D5}"), s(f"b --deps a {D5}", "b.ipynb")
    g, h, _ = setup([a, b])
    h.running[("a", "2013-01-02")] = "run-9"
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    assert problems(g, rep, ["a", "b"], "2013-01-02") == [
        "b[2013-01-02] reads a[2013-01-02], which another run is materializing for the first time; wait for it to "
        "finish (nbo runs), then plan again."
    ]


# -- skips --------------------------------------------------------------------------------------------------------
def test_only_stale_skips_fresh_partitions():
    a, b = s(f"a {D5}"), s(f"b --deps a {D5}", "b.ipynb")
    g, h, _ = setup([a, b], fill=True)
    h.materialize(a, "2013-01-03", data_version="v2")
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    p = plan(g, rep, ["a", "b"], only_stale=True)
    assert p.targets == (("b", "2013-01-03"),)
    assert p.skipped == tuple(("a", k, "fresh") for k in days(1, 5)) + tuple(
        ("b", k, "fresh") for k in days(1, 5) if k != "2013-01-03")
    assert len(plan(g, rep, ["a", "b"]).targets) == 10  # without only_stale, everything


def test_only_stale_is_decided_after_the_downstream_closure():
    a, b = s(f"a {D5}"), s(f"b --deps a {D5}", "b.ipynb")
    g, h, _ = setup([a, b], fill=True)
    h.materialize(b, "2013-01-04", code_version="old")
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    # a is fresh everywhere, but its downstream is still reached and only the stale part kept.
    p = plan(g, rep, ["a"], only_stale=True, downstream=True)
    assert p.targets == (("b", "2013-01-04"),)


def test_rerun_after_partial_progress_does_only_the_rest():
    a, b = s(f"a {D5}"), s(f"b --deps a {D5}", cell=1)
    g, h, rep = setup([a, b])
    first = plan(g, rep, ["a", "b"], only_stale=True)
    assert [r.partition for r in first.runs] == days(1, 5) and first.skipped == ()
    materialize(g, h, names={"a"}, only=days(1, 3))  # the run died after three partitions of a and one of b
    materialize(g, h, names={"b"}, only=days(1, 1))
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    again = plan(g, rep, ["a", "b"], only_stale=True)
    # Runs whose first asset is further upstream go first (ties: graph position, then partition).
    assert again.targets == (("a", "2013-01-04"), ("b", "2013-01-04"), ("a", "2013-01-05"), ("b", "2013-01-05"),
                             ("b", "2013-01-02"), ("b", "2013-01-03"))
    assert again.skipped == (("a", "2013-01-01", "fresh"), ("a", "2013-01-02", "fresh"), ("a", "2013-01-03", "fresh"),
                             ("b", "2013-01-01", "fresh"))


def test_running_partitions_are_always_skipped():
    a, b = s(f"a {D5}"), s(f"b --deps a {D5}", "b.ipynb")
    g, h, _ = setup([a, b], fill=True)
    h.running[("a", "2013-01-02")] = "run-7"
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    p = plan(g, rep, ["a"], start="2013-01-01", end="2013-01-03")
    assert p.targets == (("a", "2013-01-01"), ("a", "2013-01-03"))
    assert p.skipped == (("a", "2013-01-02", "running"),)


# -- runs ---------------------------------------------------------------------------------------------------------
def test_runs_group_a_notebook_by_partition_with_assets_in_cell_order():
    z = s("z_first --partitions daily:2013-01-01..2013-01-02", "x.ipynb", 0)
    y = s("y_second --deps z_first --partitions daily:2013-01-01..2013-01-02", "x.ipynb", 3)
    c = s("c --deps y_second --partitions daily:2013-01-01..2013-01-02", "c.ipynb", 0)
    r = s("r --deps c[all]", "x.ipynb", 5)  # same notebook, its own key
    g, _, rep = setup([c, r, y, z])
    p = plan(g, rep, ["z_first"], downstream=True)
    assert p.runs == (
        PlannedRun("x.ipynb", "2013-01-01", ("z_first", "y_second"), ()),
        PlannedRun("x.ipynb", "2013-01-02", ("z_first", "y_second"), ()),
        PlannedRun("c.ipynb", "2013-01-01", ("c",), (0,)),
        PlannedRun("c.ipynb", "2013-01-02", ("c",), (1,)),
        PlannedRun("x.ipynb", U, ("r",), (2, 3)),
    )
    assert p.targets == (("z_first", "2013-01-01"), ("y_second", "2013-01-01"), ("z_first", "2013-01-02"),
                         ("y_second", "2013-01-02"), ("c", "2013-01-01"), ("c", "2013-01-02"), ("r", U))


def test_after_edges_through_offsets():
    a = s("a --partitions daily:2013-01-01..2013-01-03", "a.ipynb")
    b = s("b --deps a[-1] --partitions daily:2013-01-01..2013-01-03", "b.ipynb")
    g, _, rep = setup([a, b])
    assert plan(g, rep, ["a", "b"]).runs == (
        PlannedRun("a.ipynb", "2013-01-01", ("a",), ()),
        PlannedRun("a.ipynb", "2013-01-02", ("a",), ()),
        PlannedRun("a.ipynb", "2013-01-03", ("a",), ()),
        PlannedRun("b.ipynb", "2013-01-01", ("b",), ()),  # reads a[2012-12-31], which does not exist
        PlannedRun("b.ipynb", "2013-01-02", ("b",), (0,)),
        PlannedRun("b.ipynb", "2013-01-03", ("b",), (1,)),
    )
    same = s("b --deps a[-1] --partitions daily:2013-01-01..2013-01-03", "a.ipynb", 1)
    g, _, rep = setup([a, same])
    assert [r.after for r in plan(g, rep, ["a", "b"]).runs] == [(), (0,), (1,)]


def test_notebooks_feeding_each_other_are_split_into_one_run_per_asset():
    # x.ipynb: a, then d (reads c); y.ipynb: c (reads a). Per (notebook, key) the runs would wait on each other.
    a = s("a --partitions daily:2013-01-01..2013-01-02", "x.ipynb", 0)
    d = s("d --deps c --partitions daily:2013-01-01..2013-01-02", "x.ipynb", 1)
    c = s("c --deps a --partitions daily:2013-01-01..2013-01-02", "y.ipynb", 0)
    p_ = s("p --partitions daily:2013-01-01..2013-01-02", "z.ipynb", 0)
    q = s("q --deps p --partitions daily:2013-01-01..2013-01-02", "z.ipynb", 1)
    g, _, rep = setup([a, d, c, p_, q])
    runs = plan(g, rep, g.select("*")).runs
    assert runs == (
        PlannedRun("x.ipynb", "2013-01-01", ("a",), ()),
        PlannedRun("x.ipynb", "2013-01-02", ("a",), ()),
        PlannedRun("z.ipynb", "2013-01-01", ("p", "q"), ()),  # not in a cycle: stays one run
        PlannedRun("z.ipynb", "2013-01-02", ("p", "q"), ()),
        PlannedRun("y.ipynb", "2013-01-01", ("c",), (0,)),
        PlannedRun("y.ipynb", "2013-01-02", ("c",), (1,)),
        PlannedRun("x.ipynb", "2013-01-01", ("d",), (4,)),
        PlannedRun("x.ipynb", "2013-01-02", ("d",), (5,)),
    )


def test_round_robin_notebooks_are_split_at_every_key():
    # a0 -> a1 -> ... -> a5 placed round-robin in three notebooks: every key has a cycle of runs.
    d3 = "--partitions daily:2013-01-01..2013-01-03"
    specs = [s(f"a0 {d3}", "n0.ipynb", 0)] + [
        s(f"a{i} --deps a{i - 1} {d3}", f"n{i % 3}.ipynb", i) for i in range(1, 6)]
    g, _, rep = setup(specs)
    runs = plan(g, rep, list(g.names)).runs
    assert len(runs) == 18 and all(len(r.assets) == 1 for r in runs)
    assert [(r.assets[0], r.partition) for r in runs[:4]] == [("a0", "2013-01-01"), ("a0", "2013-01-02"),
                                                               ("a0", "2013-01-03"), ("a1", "2013-01-01")]
    assert runs[3].after == (0,)


def test_assets_declared_outside_a_notebook_cannot_be_planned():
    g, _, rep = setup([replace(s(f"a {D5}"), notebook=None)])
    assert problems(g, rep, ["a"], "2013-01-01") == [
        "Asset 'a' was declared outside a notebook, so there is no notebook to run for it; move its %%asset cell "
        "into a notebook of the project."
    ]


def test_describe_lists_each_run_it_would_start():
    a, b = s("a --partitions daily:2013-01-01..2013-01-03"), s("b --deps a --partitions daily:2013-01-01..2013-01-03",
                                                               cell=1)
    r = s("r --deps b[all]", "report.ipynb")
    g, h, _ = setup([a, b, r], fill=True)
    h.materialize(a, "2013-01-02", data_version="v2")
    h.running[("a", "2013-01-03")] = "run-3"
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    p = plan(g, rep, ["a"], downstream=True, only_stale=True)
    assert p.describe() == (
        "Would start 2 runs for 2 asset partitions:\n"
        "  1. x.ipynb [2013-01-02] b\n"
        "  2. report.ipynb [unpartitioned] r  (after 1)\n"
        "Skipped 4 fresh, 1 running."
    )
    assert RunPlan((), (), (("a", "2013-01-01", "fresh"),)).describe() == "Nothing to run.\nSkipped 1 fresh."
    one = plan(g, rep, ["r"])
    assert one.describe() == "Would start 1 run for 1 asset partition:\n  1. report.ipynb [unpartitioned] r"


# -- property -----------------------------------------------------------------------------------------------------
KINDS = {
    "u": "",
    "d": " --partitions daily:2013-01-01..2013-01-06",
    "m": " --partitions monthly:2013-01..2013-01",
    "s": " --partitions static:p,q",
}
MAPPINGS = ["", "[-1]", "[-2:0]", "[all]"]


@st.composite
def projects(draw):
    n = draw(st.integers(2, 6))
    specs = []
    for i in range(n):
        kind = draw(st.sampled_from(sorted(KINDS)))
        kind = "d" if kind == "m" and any("monthly" in (x.partitions.describe()) for x in specs) else kind
        ups = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=min(i, 3))) if i else []
        deps = []
        for j in ups:
            deps.append(f"a{j}{draw(st.sampled_from(MAPPINGS))}")
        nb = draw(st.sampled_from(["n1.ipynb", "n2.ipynb", "n3.ipynb"]))
        line = f"a{i}{KINDS[kind]}" + (f" --deps {','.join(deps)}" if deps else "")
        spec = s(line, nb, i)
        if validate_specs([*specs, spec]):  # a mapping that does not fit these partitions: read everything
            spec = s(f"a{i}{KINDS[kind]}" + (f" --deps {','.join(f'a{j}[all]' for j in ups)}" if ups else ""), nb, i)
        specs.append(spec)
    g = build_graph(specs)
    h = MemoryHistory()
    empty = resolve_staleness(g, h.snapshot(), now=NOW)
    for name in g.order:
        for key in empty.keys(name):
            state = draw(st.sampled_from(["done", "done", "none", "fail", "run"]))
            if state == "done":
                inputs = [(u, k) for u, k, _ in empty.upstream_partitions(name, key) if (u, k) in h.rows
                          and h.rows[(u, k)]["materialization_id"]]
                h.materialize(g.spec(name), key, inputs=inputs, data_version=draw(st.sampled_from(["v1", "v2"])))
            elif state == "fail":
                h.fail(name, key)
            elif state == "run":
                h.running[(name, key)] = "r"
    selection = draw(st.lists(st.sampled_from(list(g.names)), min_size=1, unique=True))
    keys = draw(st.sampled_from([(), ("2013-01-03",), ("p",), ("2013-01",), ("q", "2013-01-06")]))
    return g, resolve_staleness(g, h.snapshot(), now=NOW), selection, keys


@given(projects(), st.booleans(), st.booleans())
def test_runs_respect_every_dependency(project, downstream, only_stale):
    g, rep, selection, keys = project
    try:
        p = plan(g, rep, selection, *keys, downstream=downstream, only_stale=only_stale)
    except PlanError as err:
        assert err.problems
        return
    where = {}
    for i, run in enumerate(p.runs):
        assert all(j < i for j in run.after)
        assert len({g.spec(a).notebook for a in run.assets}) == 1 and run.notebook == g.spec(run.assets[0]).notebook
        for pos, asset in enumerate(run.assets):
            assert (asset, run.partition) not in where
            where[(asset, run.partition)] = (i, pos)
    assert list(where) == list(p.targets)
    assert not {(a, k) for a, k, _ in p.skipped} & set(where)
    before = []  # runs that run i waits for, transitively
    for run in p.runs:
        before.append(set(run.after).union(*(before[j] for j in run.after)))
    for (asset, key), (i, pos) in where.items():
        for up, up_key, _ in rep.upstream_partitions(asset, key):
            if (up, up_key) in where:
                j, up_pos = where[(up, up_key)]
                assert (j == i and up_pos < pos) or j in before[i], (asset, key, up, up_key)


def test_selected_upstream_gets_every_partition_its_targets_read():
    daily = s("daily_x --partitions daily:2013-01-01..2013-02-28")
    monthly = s("monthly_x --deps daily_x --partitions monthly:2013-01..2013-02", nb="m.ipynb")
    report_x = s("report_x --deps daily_x[all]", nb="r.ipynb")
    g, h, rep = setup([daily, monthly, report_x])
    got = plan_materialization(g, rep, selection=["daily_x", "monthly_x"],
                               partitions=PartitionSelection(start="2013-01-01", end="2013-01-03"))
    # Three days asked for, but monthly_x[2013-01] reads all 31 days of January: they are in the plan too.
    assert [k for a, k in got.targets if a == "daily_x"] == days(1, 31)
    assert [k for a, k in got.targets if a == "monthly_x"] == ["2013-01"]
    # An [all] edge reads whatever exists: selecting its upstream adds no partitions beyond those asked for.
    got = plan_materialization(g, rep, selection=["daily_x", "report_x"],
                               partitions=PartitionSelection(start="2013-01-01", end="2013-01-03"))
    assert [k for a, k in got.targets if a == "daily_x"] == days(1, 3)


# -- why partitions nobody asked for are in the plan ------------------------------------------------------------
def test_pulled_in_partitions_say_which_target_read_them_and_why():
    daily = s("daily_x --partitions daily:2013-01-01..2013-02-28")
    raw = s("raw_x --partitions daily:2013-01-01..2013-02-28", nb="raw.ipynb")
    clean = s("clean_x --deps raw_x --partitions daily:2013-01-01..2013-02-28", nb="c.ipynb")
    monthly = s("monthly_x --deps daily_x,clean_x --partitions monthly:2013-01..2013-02", nb="m.ipynb")
    g, _, rep = setup([daily, raw, clean, monthly])
    got = plan(g, rep, ["daily_x", "raw_x", "clean_x", "monthly_x"], start="2013-01-01", end="2013-01-03")
    pulled = [(p.asset, p.partitions, p.by, p.by_partitions, p.dependency, p.reason) for p in got.pulled_in]
    assert pulled == [  # in the order the planner met them: downstream first, dependencies as declared
        ("daily_x", tuple(days(4, 31)), "monthly_x", ("2013-01",), "daily_x",
         "a monthly asset reads every day of its month"),
        ("clean_x", tuple(days(4, 31)), "monthly_x", ("2013-01",), "clean_x",
         "a monthly asset reads every day of its month"),
        # pulled in by what was itself pulled in: only the 28 days that read it
        ("raw_x", tuple(days(4, 31)), "clean_x", tuple(days(4, 31)), "raw_x",
         "each partition reads the upstream partition of the same key"),
    ]
    text = got.describe()
    assert "Also runs 84 upstream partitions outside what was asked, because planned partitions read them:" in text
    assert ("  28 partitions of daily_x (2013-01-04..2013-01-31) pulled in by monthly_x 2013-01 (a monthly asset "
            "reads every day of its month)") in text.splitlines()
    assert got.pulled_in[0].to_json()["count"] == 28


def test_nothing_is_pulled_in_when_the_asked_partitions_cover_every_read():
    a = s(f"a {D20}")
    b = s(f"b --deps a {D20}", nb="b.ipynb")
    g, _, rep = setup([a, b])
    got = plan(g, rep, ["a", "b"], start="2013-01-02", end="2013-01-05")
    assert got.pulled_in == () and "Also runs" not in got.describe()


def test_offsets_and_windows_say_what_they_read_and_skips_are_not_explained():
    a = s(f"a {D20}")
    lag = s(f"lag --deps a[-1] {D20}", nb="l.ipynb")
    week = s(f"week --deps a[-6:0] {D20}", nb="w.ipynb")
    g, _, rep = setup([a, lag, week])
    got = plan(g, rep, ["a", "lag"], "2013-01-10")
    assert [(p.asset, p.partitions, p.reason) for p in got.pulled_in] == [
        ("a", ("2013-01-09",), "a[-1]: each partition reads the one before it")]
    got = plan(g, rep, ["a", "week"], "2013-01-10")
    assert [(p.partitions, p.reason) for p in got.pulled_in] == [
        (tuple(days(4, 9)), "a[-6:0]: each partition reads a window of 7 partitions")]
    # Upstream partitions that are fresh and skipped with only_stale do not run, so they are not listed.
    g, h, rep = setup([a, week], fill=True)
    got = plan(g, rep, ["a", "week"], "2013-01-10", only_stale=True)
    assert got.pulled_in == ()


def test_a_finer_asset_reading_a_coarser_one_says_so():
    from notebook_orch.core.pulled_in import pull_reason
    from notebook_orch.core.specs import DepSpec

    daily = s("d --deps m --partitions daily:2013-01-01..2013-02-28")
    monthly = s("m --partitions monthly:2013-01..2013-02", nb="m.ipynb")
    assert pull_reason(daily.partitions, monthly.partitions, DepSpec("m")) == (
        "a daily asset reads the month that holds its day")
    assert pull_reason(daily.partitions, s("u", nb="u.ipynb").partitions, DepSpec("u")) == (
        "it reads u, which has one partition")
