"""The partition heatmap's view-model as pure data (no store, no widget): exact rows, ranges, colours, axis ticks,
live patches and the selected partition's words."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest

from notebook_orch.core.graph import build_graph
from notebook_orch.core.heatmap import (
    changed_ranges,
    epoch_ms,
    heatmap_view,
    partition_detail,
    ranges_of,
    row_patch,
    time_axis,
)
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.core.viewmodel import COLOURS
from notebook_orch.testing import MemoryHistory

NOW = datetime(2014, 1, 1)
DAYS = "--partitions daily:2013-01-30..2013-02-08"
FRESH, STALE, MISSING, FAILED, RUNNING, INVALID = range(6)


def s(line: str, cell: int = 1):
    return replace(parse_declaration(line, notebook="nb.ipynb", cell=cell), code_version="c1")


def project():
    a, b = s(f"a {DAYS}"), s(f"b --deps a {DAYS}", 2)
    m = s("m --partitions monthly:2013-01..2013-02", 3)
    regions = s("regions --partitions static:us,eu,asia", 4)
    report = s("report --deps m[all]", 5)
    graph = build_graph([a, b, m, regions, report])
    h = MemoryHistory()
    keys = a.partitions.keys()
    for k in keys:
        h.materialize(a, k)
    for k in keys[:8]:
        h.materialize(b, k, inputs=[("a", k)])
    h.materialize(a, keys[2], data_version="v2")  # b[2013-02-01] read the old data: stale
    h.fail("b", keys[8])
    h.running[("b", keys[9])] = "run-9"
    h.materialize(regions, "eu")
    return graph, h, keys


def report_of(graph, h):
    return resolve_staleness(graph, h.snapshot(), now=NOW, consumed=h.consumed_versions)


def test_rows_are_status_ranges_and_counts_never_every_key():
    graph, h, keys = project()
    view = heatmap_view(graph, report_of(graph, h))
    rows = {r["asset"]: r for r in view["rows"]}
    # Time rows first (graph order), then static and unpartitioned ones.
    assert [r["asset"] for r in view["rows"]] == ["a", "m", "b", "regions", "report"]
    assert rows["b"]["ranges"] == [[FRESH, 0, 2], [STALE, 2, 3], [FRESH, 3, 8], [FAILED, 8, 9], [RUNNING, 9, 10]]
    assert rows["b"]["counts"] == {"FRESH": 7, "STALE": 1, "FAILED": 1, "RUNNING": 1}
    assert rows["b"]["counts_text"] == "fresh 7 · stale 1 · failed 1 · running 1"
    assert rows["b"]["status"] == "RUNNING"
    assert rows["a"]["ranges"] == [[FRESH, 0, 10]] and rows["m"]["ranges"] == [[MISSING, 0, 2]]
    assert {k: rows["b"][k] for k in ("kind", "grain", "n", "start_ms")} == {
        "kind": "time", "grain": "daily", "n": 10, "start_ms": epoch_ms(datetime(2013, 1, 30))}
    assert rows["m"]["start_ms"] == epoch_ms(datetime(2013, 1, 1))
    # Static keys are the declaration, sent for hover text; time keys never are.
    assert rows["regions"]["keys"] == ["us", "eu", "asia"]
    assert rows["regions"]["ranges"] == [[MISSING, 0, 1], [FRESH, 1, 2], [MISSING, 2, 3]]
    assert rows["report"]["kind"] == "index" and rows["report"]["ranges"] == [[MISSING, 0, 1]]
    text = json.dumps(view, default=str)
    assert not any(k in text for k in keys[1:-1])  # the first and last are in the declaration, "daily:a..b"
    assert view["totals"] == {"FRESH": 18, "STALE": 1, "MISSING": 5, "FAILED": 1, "RUNNING": 1}


def test_colours_are_the_graph_legend_colours_indexed_by_status_code():
    graph, h, _ = project()
    view = heatmap_view(graph, report_of(graph, h))
    assert view["statuses"] == ["FRESH", "STALE", "MISSING", "FAILED", "RUNNING", "INVALID", "WAITING", "PRESUMED_DEAD"]
    assert view["colours"] == [COLOURS[s] for s in view["statuses"]]
    assert [i["colour"] for i in view["legend"]] == [COLOURS[i["status"]] for i in view["legend"]]


def test_time_axis_spans_every_time_row_with_month_ticks():
    graph, h, _ = project()
    axis = heatmap_view(graph, report_of(graph, h))["axis"]
    # m starts 2013-01-01 and ends with February; a and b sit inside.
    assert axis["start_ms"] == epoch_ms(datetime(2013, 1, 1)) and axis["days"] == 59
    assert axis["ticks"] == [{"x": 0.0, "label": "Jan 2013", "major": True},
                             {"x": 31.0, "label": "Feb", "major": False}]


def test_axis_ticks_thin_out_over_long_spans_and_become_days_over_short_ones():
    def row(grain, start, n):
        return {"kind": "time", "grain": grain, "start_ms": epoch_ms(start), "n": n}

    year = time_axis([row("daily", datetime(2013, 1, 1), 365)])
    assert year["days"] == 365 and len(year["ticks"]) == 12
    assert [t["label"] for t in year["ticks"][:3]] == ["Jan 2013", "Feb", "Mar"]
    assert year["ticks"][-1] == {"x": 334.0, "label": "Dec", "major": False}
    five = time_axis([row("monthly", datetime(2012, 2, 1), 60)])
    assert [t["label"] for t in five["ticks"][:4]] == ["Apr 2012", "Jul", "Oct", "Jan 2013"]
    decade = time_axis([row("weekly", datetime(2010, 1, 4), 600)])
    assert [t["label"] for t in decade["ticks"][:3]] == ["2011", "2012", "2013"]
    hours = time_axis([row("hourly", datetime(2013, 1, 30, 5), 72)])
    assert hours["start_ms"] == epoch_ms(datetime(2013, 1, 30))  # the axis starts at midnight
    assert [t["label"] for t in hours["ticks"]] == ["Jan 30", "31", "Feb 1", "2"]
    assert time_axis([{"kind": "index", "n": 3}]) is None


def test_changed_ranges_are_the_runs_that_differ():
    assert ranges_of([0, 0, 2, 2, 2, 1]) == [[0, 0, 2], [2, 2, 5], [1, 5, 6]]
    assert changed_ranges([2, 2, 2, 2, 2, 2], [2, 0, 0, 4, 2, 0]) == [[0, 1, 3], [4, 3, 4], [0, 5, 6]]
    assert changed_ranges([0, 1], [0, 1]) == []
    with pytest.raises(ValueError, match="one length"):
        changed_ranges([0], [0, 1])


def test_row_patch_after_a_run_finishes_sends_only_the_changed_cell():
    graph, h, keys = project()
    report = report_of(graph, h)
    before = report.status_codes("b").copy()
    h.running.clear()
    h.materialize(graph.spec("b"), keys[9], inputs=[("a", keys[9])])
    report.apply(h.snapshot(only=[("b", keys[9])]).assets, running={}, event_id=99)
    patch = row_patch(graph, report, "b", before)
    assert patch == {"asset": "b", "ranges": [[FRESH, 9, 10]], "status": "FAILED",
                     "counts": {"FRESH": 8, "STALE": 1, "FAILED": 1},
                     "counts_text": "fresh 8 · stale 1 · failed 1"}
    assert row_patch(graph, report, "a", report.status_codes("a")) is None
    grown = row_patch(graph, report, "b", before[:5])  # the partition count changed: the whole row
    assert grown is not None and grown["full"]["n"] == 10


def test_partition_detail_says_why_in_words():
    graph, h, keys = project()
    report = report_of(graph, h)
    assert partition_detail(report.explain("b", keys[2])).startswith(
        "b[2013-02-01] is stale: upstream data changed: a[2013-02-01] got new data at ")
    assert partition_detail(report.explain("b", keys[8])) == (
        "b[2013-02-07] is failed: the last run failed, and no earlier run made a value")
    assert partition_detail(report.explain("b", keys[9])) == (
        "b[2013-02-08] is running: a run is working on it; run run-9")
    assert partition_detail(report.explain("report", "unpartitioned")) == (
        "report[unpartitioned] is missing: upstream missing: m[2013-01, 2013-02] are missing; "
        "root cause: m[2013-01] (missing), m[2013-02] (missing)")


def test_fifty_assets_by_a_year_is_a_small_payload():
    specs = [s(f"a{i:02d} --partitions daily:2013-01-01..2013-12-31", i) for i in range(50)]
    graph = build_graph(specs)
    h = MemoryHistory()
    keys = specs[0].partitions.keys()
    for spec in specs[:10]:
        for k in keys[:200]:
            h.materialize(spec, k)
    view = heatmap_view(graph, report_of(graph, h))
    assert len(view["rows"]) == 50 and sum(sum(r["counts"].values()) for r in view["rows"]) == 50 * 365
    assert view["rows"][0]["ranges"] == [[FRESH, 0, 200], [MISSING, 200, 365]]
    assert len(json.dumps(view, default=str)) < 20_000  # 18,250 cells, a few hundred bytes per asset


def test_invalid_assets_are_rows_of_their_own_never_hidden():
    from notebook_orch.core.graph import build_valid_graph

    graph = build_valid_graph([s(f"a {DAYS}"), s(f"bad --deps nope {DAYS}", 2)])
    view = heatmap_view(graph, report_of(graph, MemoryHistory()), invalid=[graph.invalid["bad"]])
    bad = view["rows"][-1]
    assert {k: bad[k] for k in ("asset", "kind", "n", "ranges", "status", "counts_text")} == {
        "asset": "bad", "kind": "invalid", "n": 1, "ranges": [[INVALID, 0, 1]], "status": "INVALID",
        "counts_text": "invalid"}
    assert bad["problem"].startswith("nb.ipynb, cell 3") and "'nope', which no asset declares" in bad["problem"]
    assert view["totals"] == {"MISSING": 10, "INVALID": 1}


def test_a_project_without_assets_is_an_empty_heatmap():
    graph = build_graph([])
    view = heatmap_view(graph, report_of(graph, MemoryHistory()))
    assert (view["rows"], view["axis"], view["totals"]) == ([], None, {})
