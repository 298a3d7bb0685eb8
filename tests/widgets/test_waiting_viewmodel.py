"""WAITING (a run waits for a concurrency-pool slot) and PRESUMED_DEAD (its heartbeat stopped) as the widgets draw
them, pure data: the report says RUNNING for both; the view-model draws each partition as what its run is, in the
one set of colours every face receives."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from notebook_orch.core.graph import build_graph
from notebook_orch.core.heatmap import heatmap_view, partition_detail, row_patch
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.core.viewmodel import changed_nodes, graph_view, node_status, panel_view
from notebook_orch.core.viewstates import (
    COLOURS,
    TEXT_COLOURS,
    VIEW_STATUSES,
    headline,
    live_run_view,
    run_states,
)
from notebook_orch.store.records import RunRecord
from notebook_orch.testing import MemoryHistory

NOW = datetime(2014, 1, 1)
DAYS = "--partitions daily:2013-01-01..2013-01-06"
FRESH, STALE, MISSING, FAILED, RUNNING, INVALID, WAITING, DEAD = range(8)


def s(line: str, cell: int = 1):
    return replace(parse_declaration(line, notebook="nb.ipynb", cell=cell), code_version="c1")


def setup():
    a, u = s(f"a {DAYS}"), s("u", 2)
    graph = build_graph([a, u])
    h = MemoryHistory()
    keys = a.partitions.keys()
    for k in keys[:3]:
        h.materialize(a, k)
    # Three live runs hold a's partitions 3, 4, 5 (one runs, one waits, one went silent) and u (waiting).
    h.running.update({("a", keys[3]): "run-go", ("a", keys[4]): "run-wait", ("a", keys[5]): "run-dead",
                      ("u", "unpartitioned"): "run-u"})
    report = resolve_staleness(graph, h.snapshot(), now=NOW, consumed=h.consumed_versions)
    return graph, report, keys


def test_run_states_map_partitions_of_waiting_and_silent_runs_only():
    running = {("a", "1"): "r1", ("a", "2"): "r2", ("b", "x"): "r2", ("c", "1"): "r3"}
    assert run_states(running, waiting=["r2", "r3"], dead=["r3"]) == {
        "a": {"2": "WAITING"}, "b": {"x": "WAITING"}, "c": {"1": "PRESUMED_DEAD"}}
    assert run_states(running) == {}


def test_a_node_counts_and_draws_waiting_and_presumed_dead_apart_from_running():
    graph, report, keys = setup()
    states = run_states(dict(report._running), waiting=["run-wait", "run-u"], dead=["run-dead"])  # noqa: SLF001
    assert node_status(report, graph, "a")["counts"] == {"FRESH": 3, "RUNNING": 3}  # without states: as before
    a = node_status(report, graph, "a", states["a"])
    assert a["counts"] == {"FRESH": 3, "RUNNING": 1, "WAITING": 1, "PRESUMED_DEAD": 1}
    assert a["counts_text"] == "fresh 3 · running 1 · waiting 1 · presumed dead 1"
    assert a["status"] == "PRESUMED_DEAD" and a["classes"] == "status-presumed_dead partitioned"
    assert a["bar"] == [["FRESH", 0.0, 0.5], ["RUNNING", 0.5, 0.6667], ["WAITING", 0.6667, 0.8333],
                        ["PRESUMED_DEAD", 0.8333, 1.0]]
    u = node_status(report, graph, "u", states["u"])
    assert (u["status"], u["classes"], u["counts"], u["counts_text"]) == (
        "WAITING", "status-waiting", {"WAITING": 1}, "waiting")
    # Only waiting: the node is WAITING; waiting beside failed and stale partitions still shows the wait.
    assert headline({"FRESH": 2, "WAITING": 1, "FAILED": 1}) == "WAITING"
    assert headline({"RUNNING": 1, "WAITING": 1}) == "RUNNING"


def test_the_graph_carries_the_one_set_of_colours_and_a_legend_with_waiting():
    graph, report, _ = setup()
    states = run_states(dict(report._running), waiting=["run-wait", "run-u"])  # noqa: SLF001
    view = graph_view(graph, report, states=states)
    assert view["colours"] == {str(k): v for k, v in COLOURS.items()}
    assert view["colours"]["WAITING"] != view["colours"]["RUNNING"]
    assert view["text_colours"]["WAITING"] == "#212121" == TEXT_COLOURS["STALE"]
    legend = {item["status"]: item for item in view["legend"]}
    assert legend["WAITING"]["label"] == "waiting" and legend["PRESUMED_DEAD"]["label"] == "presumed dead"
    assert legend["WAITING"]["colour"] == COLOURS["WAITING"]
    nodes = {n["id"]: n for n in view["nodes"]}
    assert nodes["u"]["status"] == "WAITING" and nodes["a"]["counts"]["WAITING"] == 1
    assert view["totals"] == {"FRESH": 3, "RUNNING": 2, "WAITING": 2}
    json.dumps(view)  # plain data for the page


def test_a_wait_that_ends_patches_the_node_to_running():
    graph, report, _ = setup()
    before_states = run_states(dict(report._running), waiting=["run-u"])  # noqa: SLF001
    before = {n: node_status(report, graph, n, before_states.get(n)) for n in ("a", "u")}
    patches = changed_nodes(before, graph, report, ["a", "u"], states={})  # run-u took its slot
    assert list(patches) == ["u"] and patches["u"]["status"] == "RUNNING"


def test_heatmap_codes_colours_and_words_for_waiting_and_presumed_dead():
    graph, report, keys = setup()
    states = run_states(dict(report._running), waiting=["run-wait"], dead=["run-dead"])  # noqa: SLF001
    view = heatmap_view(graph, report, states=states)
    assert view["statuses"] == [str(s) for s in VIEW_STATUSES]
    assert view["colours"][WAITING] == COLOURS["WAITING"] and view["colours"][DEAD] == COLOURS["PRESUMED_DEAD"]
    assert view["labels"][DEAD] == "presumed dead"
    rows = {r["asset"]: r for r in view["rows"]}
    assert rows["a"]["ranges"] == [[FRESH, 0, 3], [RUNNING, 3, 4], [WAITING, 4, 5], [DEAD, 5, 6]]
    assert rows["a"]["counts"] == {"FRESH": 3, "RUNNING": 1, "WAITING": 1, "PRESUMED_DEAD": 1}
    # The wait ends: the row patch turns that cell running.
    before = [FRESH] * 3 + [RUNNING, WAITING, DEAD]
    patch = row_patch(graph, report, "a", before, {keys[5]: "PRESUMED_DEAD"})
    assert patch is not None and patch["ranges"] == [[RUNNING, 4, 5]]
    assert partition_detail(report.explain("a", keys[4]), "WAITING") == (
        "a[2013-01-05] is waiting: a run waits for a concurrency-pool slot before it starts; run run-wait")


def test_the_panel_says_which_run_waits_for_which_pool_since_when():
    graph, report, _ = setup()
    run = RunRecord(run_id="run-wait", notebook="nb.ipynb", assets=("a",), partition_keys=("2013-01-05",),
                    status="WAITING", kind="manual", started_at=datetime(2014, 1, 1, 9, 0, 0))
    line = live_run_view(run, state="WAITING", now=datetime(2014, 1, 1, 9, 0, 42),
                         ahead={"pool:warehouse": 2, "global": 0}, since=datetime(2014, 1, 1, 9, 0, 1))
    assert line["text"] == ("run run-wait waits for max_runs (global) with 0 ahead, pool warehouse with 2 ahead, "
                            "since 09:00:01 UTC (41 s ago)")
    assert line["pools"] == [{"pool": "global", "label": "max_runs (global)", "ahead": 0},
                             {"pool": "pool:warehouse", "label": "pool warehouse", "ahead": 2}]
    silent = replace(run, run_id="run-dead", status="RUNNING", heartbeat_at=datetime(2014, 1, 1, 8, 50, 0))
    dead = live_run_view(silent, state="PRESUMED_DEAD", now=datetime(2014, 1, 1, 9, 0, 0))
    assert dead["text"] == ("run run-dead is presumed dead: no heartbeat since 08:50:00 UTC (10 min ago); the next "
                            "writer (or nbo reap) records it failed")
    view = panel_view(graph, report, "a", states={"2013-01-05": "WAITING"}, live_runs=[line])
    assert view["live_runs"] == [line] and view["counts"]["WAITING"] == 1
