"""Staleness: exact statuses and cause lists, root causes, and incremental == full."""

from dataclasses import replace
from datetime import datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.core.graph import build_graph
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.staleness import resolve_staleness, stale_partitions
from notebook_orch.testing import MemoryHistory

NOW = datetime(2014, 1, 1)
DAYS = "--partitions daily:2013-01-01..2013-01-10"


def s(line, cv="c1"):
    return replace(parse_declaration(line, notebook="nb.ipynb", cell=1), code_version=cv)


def kinds(report, asset, key):
    return [c.kind for c in report.explain(asset, key).causes]


def pipeline():
    a, b = s(f"a {DAYS}"), s(f"b --deps a {DAYS}")
    w, r = s(f"w --deps b[-2:0] {DAYS}"), s("r --deps w[all]")
    g = build_graph([a, b, w, r])
    h = MemoryHistory()
    keys = a.partitions.keys()
    for k in keys:
        h.materialize(a, k)
    for k in keys:
        h.materialize(b, k, inputs=[("a", k)])
    for i, k in enumerate(keys):
        h.materialize(w, k, inputs=[("b", x) for x in keys[max(0, i - 2): i + 1]])
    h.materialize(r, "unpartitioned", inputs=[("w", k) for k in keys])
    return g, h, (a, b, w, r), keys


def test_all_fresh_then_missing():
    g, h, _, keys = pipeline()
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    assert rep.totals() == {"FRESH": 31, "STALE": 0, "MISSING": 0, "FAILED": 0, "RUNNING": 0, "INVALID": 0}
    empty = resolve_staleness(g, MemoryHistory().snapshot(), now=NOW)
    assert empty.totals()["MISSING"] == 31


def test_identical_data_makes_nothing_stale():
    g, h, (a, *_), keys = pipeline()
    h.materialize(a, keys[3], data_version="v1")
    assert resolve_staleness(g, h.snapshot(), now=NOW).totals()["STALE"] == 0


def test_changed_data_exact_causes_and_root_cause():
    g, h, (a, *_), keys = pipeline()
    h.materialize(a, keys[3], data_version="v2")
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    stale = [(p.asset, p.partition) for p in stale_partitions(rep)]
    assert stale == [("b", keys[3]), ("w", keys[3]), ("w", keys[4]), ("w", keys[5]), ("r", "unpartitioned")]
    b = rep.explain("b", keys[3])
    assert [c.kind for c in b.causes] == ["upstream_data_changed"]
    assert b.causes[0].upstream == "a" and b.causes[0].upstream_partitions == (keys[3],)
    assert b.causes[0].since is not None and b.root_causes == ()
    w = rep.explain("w", keys[5])
    assert [c.kind for c in w.causes] == ["upstream_stale"]
    assert w.causes[0].upstream_partitions == (keys[3],)
    assert [(r.asset, r.partition, r.kinds) for r in w.root_causes] == [("b", keys[3], ("upstream_data_changed",))]
    r = rep.explain("r", "unpartitioned")
    assert r.causes[0].upstream_partitions == (keys[3], keys[4], keys[5])
    assert [(x.asset, x.partition) for x in r.root_causes] == [("b", keys[3])]


def test_code_change_and_dependency_change():
    g, h, (a, b, w, r), keys = pipeline()
    g2 = build_graph([a, replace(b, code_version="c2"), w, r])
    rep = resolve_staleness(g2, h.snapshot(), now=NOW)
    assert rep.counts("b") == {"FRESH": 0, "STALE": 10, "MISSING": 0, "FAILED": 0, "RUNNING": 0, "INVALID": 0}
    assert kinds(rep, "b", keys[0]) == ["code_changed"]
    assert "built with code version c1" in rep.explain("b", keys[0]).causes[0].message
    assert kinds(rep, "w", keys[0]) == ["upstream_stale"]
    x = s(f"x {DAYS}")
    g3 = build_graph([a, replace(b, deps=b.deps + (parse_declaration("q --deps x").deps[0],)), w, r, x])
    rep3 = resolve_staleness(g3, h.snapshot(), now=NOW)
    assert kinds(rep3, "b", keys[0]) == ["dependencies_changed", "upstream_missing"]
    assert rep3.explain("b", keys[0]).causes[0].message == "dependencies changed: added x"


def test_failed_running_and_upstream_failed():
    g, h, (a, b, w, r), keys = pipeline()
    h.fail("a", keys[0])  # a[0] keeps its earlier value, and its status: downstream read that and stays fresh
    h.running[("a", keys[1])] = "run-x"
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    assert rep.status("a", keys[0]) == "FRESH" and rep.status("a", keys[1]) == "RUNNING"
    assert rep.explain("a", keys[1]).running_run_id == "run-x"
    assert rep.status("b", keys[0]) == "FRESH"
    # A partition that failed with nothing materialized is what downstream sees as "upstream failed".
    h2 = MemoryHistory()
    for k in keys[1:]:
        h2.materialize(a, k)
    h2.fail("a", keys[0])
    for k in keys[1:]:
        h2.materialize(b, k, inputs=[("a", k)])
    h2.materialize(w, keys[1], inputs=[("b", keys[1])])
    rep2 = resolve_staleness(g, h2.snapshot(), now=NOW)
    assert rep2.status("a", keys[0]) == "FAILED" and rep2.status("b", keys[0]) == "MISSING"
    assert kinds(rep2, "b", keys[0]) == ["upstream_failed"]
    assert kinds(rep2, "w", keys[1]) == ["upstream_missing"]
    assert [(x.asset, x.partition, x.status) for x in rep2.explain("w", keys[1]).root_causes] == [
        ("a", keys[0], "FAILED"), ("b", keys[0], "MISSING")]


def test_missing_upstream_window_partition_reported():
    g, h, (a, b, w, r), keys = pipeline()
    h2 = MemoryHistory()
    for k in keys:
        h2.materialize(a, k)
    for k in keys[1:]:
        h2.materialize(b, k, inputs=[("a", k)])
    h2.materialize(w, keys[2], inputs=[("b", keys[1]), ("b", keys[2])])
    rep = resolve_staleness(g, h2.snapshot(), now=NOW)
    assert rep.status("b", keys[0]) == "MISSING"
    assert kinds(rep, "w", keys[2]) == ["upstream_missing"]
    # b[0] appears later: w[2] now has data it has not seen.
    h2.materialize(b, keys[0], inputs=[("a", keys[0])])
    rep2 = resolve_staleness(g, h2.snapshot(), now=NOW)
    assert kinds(rep2, "w", keys[2]) == ["upstream_data_changed"]


def test_no_threshold_on_wide_edges():
    # 400 upstream partitions read through [all]: a change to any one of them counts (Dagster stops at 100).
    up = s("up --partitions daily:2013-01-01..2014-02-04")
    down = s("down --deps up[all]")
    g = build_graph([up, down])
    h = MemoryHistory()
    keys = up.partitions.keys()
    assert len(keys) == 400
    for k in keys:
        h.materialize(up, k)
    h.materialize(down, "unpartitioned", inputs=[("up", k) for k in keys])
    h.materialize(up, keys[-1], data_version="v9")
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    assert rep.explain("down", "unpartitioned").causes[0].upstream_partitions == (keys[-1],)


event = st.tuples(st.sampled_from(["a", "b", "w", "r", "fail", "run"]), st.integers(0, 9), st.integers(1, 3))


@given(st.lists(event, min_size=1, max_size=25))
def test_incremental_equals_full(events):
    g, h, specs, keys = pipeline()
    by_name = {sp.name: sp for sp in specs}
    rep = resolve_staleness(g, h.snapshot(), now=NOW)
    for name, i, version in events:
        key = keys[i]
        if name == "fail":
            h.fail("b", key)
            touched = [("b", key)]
        elif name == "run":
            h.running = {("w", key): "r1"} if not h.running else {}
            rep.apply({}, running=h.running)
            touched = []
        else:
            part = "unpartitioned" if name == "r" else key
            inputs = {"a": [], "b": [("a", key)], "w": [("b", x) for x in keys[max(0, i - 2): i + 1]],
                      "r": [("w", x) for x in keys]}[name]
            inputs = [x for x in inputs if x in h.rows and h.rows[x]["materialization_id"]]
            h.materialize(by_name[name], part, data_version=f"v{version}", inputs=inputs)
            touched = [(name, part)]
        if touched:
            rep.apply(h.snapshot(only=touched).assets, running=h.running)
        full = resolve_staleness(g, h.snapshot(), now=NOW)
        for n in g.order:
            assert np.array_equal(full.status_codes(n), rep.status_codes(n)), n
            assert np.array_equal(full._states[n].causes, rep._states[n].causes), n
