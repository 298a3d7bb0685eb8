"""The lineage widget's view-model as pure data: exact classes, counts, ranges, labels and panel content."""

from dataclasses import replace
from datetime import datetime

from notebook_orch.core.graph import build_graph
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.core.viewmodel import (
    changed_nodes,
    counts_text,
    graph_view,
    key_ranges,
    layered_positions,
    panel_view,
    partition_bar,
    ranges_text,
    run_lengths,
)
from notebook_orch.store.records import CheckResult, MaterializationRecord, RunRecord
from notebook_orch.testing import MemoryHistory

NOW = datetime(2014, 1, 1)
DAYS = "--partitions daily:2013-01-01..2013-01-10"


def s(line, cell=1, notebook="nb.ipynb"):
    return replace(parse_declaration(line, notebook=notebook, cell=cell), code_version="c1")


def pipeline():
    a, b = s(f"a {DAYS}", 0, "load.ipynb"), s(f"b --deps a {DAYS}", 2, "load.ipynb")
    w, r = s(f"w --deps b[-2:0] {DAYS}", 1), s("r --deps w[all]", 3)
    d = s("d --partitions daily:2013-01-01..2013-01-31", 4)
    m = s("m --deps d --partitions monthly:2013-01..2013-01", 5)
    g = build_graph([a, b, w, r, d, m])
    h = MemoryHistory()
    keys = a.partitions.keys()
    for k in keys:
        h.materialize(a, k)
    for k in keys[:8]:
        h.materialize(b, k, inputs=[("a", k)])
    return g, h, keys


def test_run_lengths_and_counts_text():
    assert run_lengths([0, 0, 1, 1, 1, 2, 0]) == [(0, 0, 2), (1, 2, 5), (2, 5, 6), (0, 6, 7)]
    assert run_lengths([]) == []
    assert counts_text({"FRESH": 31, "STALE": 2, "MISSING": 332, "FAILED": 0}) == "fresh 31 · stale 2 · missing 332"
    assert counts_text({}) == "no partitions"


def test_key_ranges_compress_consecutive_keys():
    keys = [f"k{i:02d}" for i in range(10)]
    ranges = key_ranges(keys, ["k07", "k01", "k02", "k03", "k09"])
    assert ranges == [("k01", "k03", 3), ("k07", "k07", 1), ("k09", "k09", 1)]
    assert ranges_text(ranges) == "k01..k03 (3), k07, k09"
    assert ranges_text(ranges, limit=1) == "k01..k03 (3), and 2 more in 2 runs"


def test_partition_bar_is_ranges_and_buckets_keep_the_worst():
    statuses = ("FRESH", "STALE", "MISSING", "FAILED", "RUNNING")
    assert partition_bar([0, 0, 2, 2], statuses) == [["FRESH", 0.0, 0.5], ["MISSING", 0.5, 1.0]]
    codes = [0] * 1000
    codes[500] = 3  # one failed partition among a thousand still shows
    bar = partition_bar(codes, statuses, buckets=10)
    assert bar == [["FRESH", 0.0, 0.5], ["FAILED", 0.5, 0.6], ["FRESH", 0.6, 1.0]]


def test_graph_view_nodes_classes_counts_bars_and_groups():
    g, h, keys = pipeline()
    view = graph_view(g, resolve_staleness(g, h.snapshot(), now=NOW))
    nodes = {n["id"]: n for n in view["nodes"]}
    assert nodes["a"]["classes"] == "status-fresh partitioned"
    assert nodes["a"]["counts_text"] == "fresh 10" and nodes["a"]["bar"] == [["FRESH", 0.0, 1.0]]
    assert nodes["b"]["status"] == "FRESH"  # 8 built, 2 not yet: coloured fresh, the bar shows the share
    assert nodes["b"]["counts"] == {"FRESH": 8, "MISSING": 2}
    assert nodes["b"]["counts_text"] == "fresh 8 · missing 2"
    assert nodes["b"]["bar"] == [["FRESH", 0.0, 0.8], ["MISSING", 0.8, 1.0]]
    assert nodes["r"]["classes"] == "status-missing" and nodes["r"]["counts_text"] == "missing"
    assert nodes["b"]["notebook"] == "load.ipynb" and nodes["b"]["cell"] == 3  # counted from 1
    assert nodes["b"]["group"] == "nb:load.ipynb"
    assert view["groups"] == [{"id": "nb:load.ipynb", "label": "load.ipynb", "members": 2},
                              {"id": "nb:nb.ipynb", "label": "nb.ipynb", "members": 4}]
    edges = {e["id"]: (e["label"], e["classes"]) for e in view["edges"]}
    assert edges == {"a->b": ("", ""), "b->w": ("[-2:0]", "mapped"), "w->r": ("[all]", "mapped"),
                     "d->m": ("daily→monthly", "mapped")}
    assert view["totals"] == {"FRESH": 18, "MISSING": 45}
    assert [item["status"] for item in view["legend"]] == ["FRESH", "STALE", "MISSING", "FAILED", "RUNNING",
                                                           "WAITING", "PRESUMED_DEAD", "INVALID"]


def test_layout_is_layered_left_to_right():
    g, _, _ = pipeline()
    pos = layered_positions(g, g.order)
    assert pos["a"][0] < pos["b"][0] < pos["w"][0] < pos["r"][0]
    assert pos["d"][0] == pos["a"][0] and pos["m"][0] == pos["b"][0]
    assert len(set(pos.values())) == len(pos)  # no two nodes on the same spot


def test_selection_keeps_only_edges_inside_it():
    g, h, _ = pipeline()
    view = graph_view(g, None, names=["b", "a"])
    assert [n["id"] for n in view["nodes"]] == ["a", "b"]
    assert [e["id"] for e in view["edges"]] == ["a->b"]


def test_stale_reasons_grouped_with_ranges_and_root_causes():
    g, h, keys = pipeline()
    a = g.spec("a")
    h.materialize(a, keys[3], data_version="v2")
    for k in keys[:8]:
        h.materialize(g.spec("w"), k, inputs=[("b", x) for x in keys[max(0, keys.index(k) - 2): keys.index(k) + 1]])
    report = resolve_staleness(g, h.snapshot(), now=NOW)
    panel = panel_view(g, report, "w")
    assert panel["counts_text"] == "fresh 5 · stale 3 · missing 2"
    assert [(r["kind"], r["upstream"], r["partitions"]) for r in panel["reasons"]] == [
        ("upstream_stale", "b", "2013-01-04..2013-01-06 (3)"),
    ]
    assert panel["reasons"][0]["text"] == "upstream b is stale" and panel["reasons"][0]["count"] == 3
    assert [r["text"] for r in panel["root_causes"]] == ["b[2013-01-04] (upstream data changed)"]
    assert [(x["status"], x["first"], x["last"], x["count"]) for x in panel["ranges"]] == [
        ("FRESH", "2013-01-01", "2013-01-03", 3), ("STALE", "2013-01-04", "2013-01-06", 3),
        ("FRESH", "2013-01-07", "2013-01-08", 2), ("MISSING", "2013-01-09", "2013-01-10", 2)]
    assert panel["upstream"] == [{"name": "b", "status": "STALE", "mapping": "[-2:0]"}]
    assert panel["downstream"] == [{"name": "r", "status": "MISSING", "mapping": "[all]"}]
    assert panel["notebook"] == "nb.ipynb" and panel["cell"] == 2


def test_panel_last_materialization_and_failed_run():
    g, h, keys = pipeline()
    report = resolve_staleness(g, h.snapshot(), now=NOW)
    mat = MaterializationRecord(
        id=7, asset="a", partition=keys[-1], run_id="r-1", code_version="c1", data_version="d", deps_signature="",
        inputs=(), row_count=120, schema={"x": "int64", "name": "string"}, null_rates={"x": 0.0, "name": 0.25},
        checks=(CheckResult("len(df) > 0", True),), duration_s=1.23456, storage_path="/data/a", io="parquet",
        created_at=datetime(2013, 12, 31, 9, 30),
    )
    run = RunRecord(run_id="r-1", notebook="load.ipynb", assets=("a",), partition_keys=(keys[-1],),
                    status="SUCCESS", kind="manual", started_at=datetime(2013, 12, 31, 9, 29),
                    output_path=".notebook_orch/runs/r-1.ipynb")
    failed = replace(run, run_id="r-2", status="FAILED", error="ValueError: boom", error_cell=4)
    panel = panel_view(g, report, "a", materialization=mat, materialization_run=run, last_run=failed)
    last = panel["last_materialization"]
    assert last["rows"] == 120 and last["duration_s"] == 1.235 and last["run_id"] == "r-1"
    assert last["columns"] == [{"name": "x", "type": "int64", "null_rate": 0.0},
                               {"name": "name", "type": "string", "null_rate": 0.25}]
    assert last["checks"] == [{"expr": "len(df) > 0", "passed": True, "detail": None}]
    assert last["output_notebook"] == ".notebook_orch/runs/r-1.ipynb" and last["at"] == "2013-12-31 09:30:00 UTC"
    assert panel["last_run"]["error_cell"] == 5 and panel["last_run"]["status"] == "FAILED"
    assert panel["reasons"] == [] and panel["root_causes"] == []


def test_changed_nodes_patches_only_what_changed():
    g, h, keys = pipeline()
    report = resolve_staleness(g, h.snapshot(), now=NOW)
    before = {n["id"]: {k: n[k] for k in ("status", "classes", "counts", "counts_text", "bar")}
              for n in graph_view(g, report)["nodes"]}
    h.running[("b", keys[9])] = "run-x"
    report.apply({}, running=h.running)
    patches = changed_nodes(before, g, report, g.order)
    assert list(patches) == ["b"]
    assert patches["b"]["classes"] == "status-running partitioned"
    assert patches["b"]["counts_text"] == "fresh 8 · missing 1 · running 1"


def test_invalid_assets_are_drawn_right_of_what_they_read_with_their_problems():
    from notebook_orch.core.graph import build_valid_graph
    from notebook_orch.core.viewmodel import invalid_panel_view

    a = s(f"a {DAYS}", 0, "load.ipynb")
    broken = s("bad --deps a,nowhere", 2)
    reader = s("reads_bad --deps bad", 3)
    g = build_valid_graph([a, broken, reader])
    assert sorted(g.invalid) == ["bad", "reads_bad"]
    view = graph_view(g, resolve_staleness(g, MemoryHistory().snapshot(), now=NOW),
                      invalid=[g.invalid["bad"], g.invalid["reads_bad"]])
    nodes = {n["id"]: n for n in view["nodes"]}
    assert nodes["bad"]["classes"] == "status-invalid" and nodes["bad"]["counts_text"] == "invalid"
    assert nodes["a"]["x"] < nodes["bad"]["x"] < nodes["reads_bad"]["x"]
    assert [(e["id"], e["classes"]) for e in view["edges"] if e["classes"] == "invalid"] == [
        ("a->bad", "invalid"), ("bad->reads_bad", "invalid")]
    assert view["totals"] == {"MISSING": 10, "INVALID": 2}
    panel = invalid_panel_view(g.invalid["bad"])
    assert panel["status"] == "INVALID" and panel["cell"] == 3
    assert any("'nowhere'" in p for p in panel["problems"])
