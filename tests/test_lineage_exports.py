"""``nbo lineage`` exports a person can use: Mermaid that Mermaid's own parser accepts, and an HTML page that draws
the graph offline (inline SVG computed in Python), coloured by how much of each asset is fresh."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import mermaid_check
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.core.graph import build_graph, build_valid_graph
from notebook_orch.core.partitions import UNPARTITIONED_KEY
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.core.status import headline_status
from notebook_orch.core.viewmodel import COLOURS
from notebook_orch.faces.cli import main
from notebook_orch.faces.lineage import render
from notebook_orch.store import NewMaterialization
from notebook_orch.testing import MemoryHistory

NOW = datetime(2014, 1, 1)
YEAR = "--partitions daily:2013-01-01..2013-12-31"
SVG = "{http://www.w3.org/2000/svg}"


def s(line: str, cell: int = 1, notebook: str = "notebooks/nb.ipynb"):
    return replace(parse_declaration(line, notebook=notebook, cell=cell), code_version="c1")


@pytest.fixture(scope="module")
def flights():
    """The example's shape: January built, one day re-delivered (so downstream is stale), one failed run."""
    specs = [
        s(f"flights_raw {YEAR}", 1), s(f"weather_raw {YEAR}", 2), s("airports", 3),
        s(f"flights_daily --deps flights_raw,weather_raw,airports {YEAR}", 4),
        s(f"delay_rank --deps flights_daily[-6:0] {YEAR}", 5),
        s("carrier_leaderboard --deps flights_daily[all]", 6),
        s("monthly_summary --deps flights_daily --partitions monthly:2013-01..2013-12", 7),
        s("report --deps carrier_leaderboard,monthly_summary[all],delay_rank[all]", 8),
    ]
    by = {spec.name: spec for spec in specs}
    graph, history = build_graph(specs), MemoryHistory()
    days = by["flights_raw"].partitions.keys()
    history.materialize(by["airports"], UNPARTITIONED_KEY)
    for day in days[:31]:
        history.materialize(by["flights_raw"], day)
        history.materialize(by["weather_raw"], day)
        history.materialize(by["flights_daily"], day,
                            inputs=[("flights_raw", day), ("weather_raw", day), ("airports", UNPARTITIONED_KEY)])
    for day in days[10:20]:
        history.materialize(by["delay_rank"], day, inputs=[("flights_daily", day)])
    history.fail("delay_rank", days[20])
    history.materialize(by["flights_raw"], days[30], data_version="v2")  # flights_daily[2013-01-31] is stale now
    return graph, resolve_staleness(graph, history.snapshot(), now=NOW)


def nodes_of(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    return {g.get("data-asset"): g for g in root.iter(f"{SVG}g") if "node" in (g.get("class") or "").split()}


# -- Mermaid -----------------------------------------------------------------------------------------------------
def hostile_graph():
    """Names Mermaid reads as keywords or arrow heads (``end``, ``o``/``x`` next to an arrow), non-ASCII names, a
    name equal to a generated id, every mapping kind and a grain change."""
    names = ["end", "graph", "style", "default", "subgraph", "click", "flowchart", "classDef", "o", "x", "ops",
             "xray", "café", "Ω", "_private", "n0", "A1"]
    specs = [s(f"{names[0]} {YEAR}", 0)]
    for i, name in enumerate(names[1:], 1):
        prev, kind = names[i - 1], i % 4
        if kind == 3:  # unpartitioned, reading every partition of its upstream
            specs.append(s(f"{name} --deps {prev}[all]", i))
        else:  # daily, reading the previous asset by identity (or whole, after an unpartitioned one), [-1], [-6:0]
            dep = [prev, f"{prev}[-1]", f"{prev}[-6:0]"][kind] if kind else prev
            specs.append(s(f"{name} --deps {dep} {YEAR}", i))
    specs.append(s("monthly --deps ops --partitions monthly:2013-01..2013-12", 99))
    return build_graph(specs)


def test_mermaid_parses_with_mermaids_own_parser(flights):
    try:
        mermaid_check.install()
    except mermaid_check.Unavailable as exc:
        pytest.skip(f"LOUD SKIP: Mermaid's parser is unavailable, so the Mermaid export is NOT checked: {exc}")
    graph, report = flights
    hostile = hostile_graph()
    broken = broken_graph()
    big = build_graph([s(f"a{i}" + (" --deps " + ",".join(sorted({f"a{i - 1}", f"a{i // 2}"})) if i else ""))
                       for i in range(300)])
    sources = [
        render(graph, "mermaid", report),
        render(graph, "mermaid"),
        render(hostile, "mermaid"),
        render(hostile, "mermaid", resolve_staleness(hostile, MemoryHistory().snapshot(), now=NOW)),
        render(broken, "mermaid"),
        render(broken, "mermaid", resolve_staleness(broken, MemoryHistory().snapshot(), now=NOW)),
        "graph LR\n    a -->|[all]| b",  # what the export used to write: the parser must refuse it
    ]
    results = mermaid_check.parse(sources)
    for source, result in zip(sources[:-1], results):
        assert result == {"ok": True, "type": "flowchart-v2"}, (result, source)
    assert results[-1]["ok"] is False and "Parse error" in results[-1]["error"]
    # Past 500 edges Mermaid refuses by default (a limit a diagram cannot raise); the export says so up front,
    # and its syntax is right for a renderer configured with a higher limit.
    large = render(big, "mermaid")
    assert large.startswith("%% 596 edges, ")
    assert "Mermaid refuses more than 500 edges or 50,000 characters" in large.splitlines()[0]
    assert "Edge limit exceeded" in mermaid_check.parse([large])[0]["error"]
    assert mermaid_check.parse([large], maxEdges=1000) == [{"ok": True, "type": "flowchart-v2"}]


def test_mermaid_text_labels_and_colours(flights):
    graph, report = flights
    text = render(graph, "mermaid", report)
    assert 'flights_daily -->|"[all]"| carrier_leaderboard' in text
    assert 'flights_daily -->|"[-6:0]"| delay_rank' in text
    assert 'flights_daily -->|"daily→monthly"| monthly_summary' in text
    assert "flights_raw --> flights_daily" in text
    assert 'flights_raw["flights_raw<br/>fresh 30 · stale 1 · missing 334"]' not in text  # raw is never stale
    assert 'flights_raw["flights_raw<br/>fresh 31 · missing 334"]' in text
    classes = dict(reversed(line.split()[1:]) for line in text.splitlines() if line.startswith("    class "))
    assert set(classes["st_fresh"].split(",")) == {"flights_raw", "weather_raw", "airports"}
    assert classes["st_failed"] == "delay_rank" and classes["st_stale"] == "flights_daily"
    assert f"classDef st_fresh fill:#e8f5e9,stroke:{COLOURS['FRESH']}" in text
    ids = render(hostile_graph(), "mermaid")
    assert '    n0["end"]' not in ids and '    n0["n0"]' in ids  # "n0" is an asset: no clash
    assert re.search(r'^    (n0_\d+)\["end"\]$', ids, re.M)


def broken_graph():
    """Valid assets beside invalid ones: an unknown dependency, its downstream, and a cycle."""
    return build_valid_graph([s("a", 1), s("b --deps a[all]", 2), s("bad --deps nope", 3), s("worse --deps bad,a", 4),
                              s("c1 --deps c2,a", 5), s("c2 --deps c1", 6)])


def test_invalid_assets_are_drawn_with_their_problem_not_hidden():
    graph = broken_graph()
    assert sorted(graph.invalid) == ["bad", "c1", "c2", "worse"]
    report = resolve_staleness(graph, MemoryHistory().snapshot(), now=NOW)
    root = ET.fromstring(render(graph, "svg", report))
    nodes = nodes_of(render(graph, "svg", report))
    assert {n: g.get("data-status") for n, g in nodes.items()} == {
        "a": "MISSING", "b": "MISSING", "bad": "INVALID", "worse": "INVALID", "c1": "INVALID", "c2": "INVALID"}
    assert nodes["bad"].find(f"{SVG}rect").get("stroke") == COLOURS["INVALID"]
    assert "depends on 'nope'" in nodes["bad"].find(f"{SVG}title").text
    assert [t.text for t in nodes["worse"].iter(f"{SVG}text")][1].startswith("invalid: Asset 'worse' depends on")
    edges = {(g.get("data-source"), g.get("data-target")): g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"}
    assert set(edges) == {("a", "b"), ("bad", "worse"), ("a", "worse"), ("c2", "c1"), ("a", "c1"), ("c1", "c2")}
    dashed = [k for k, g in edges.items() if g.find(f"{SVG}path").get("stroke-dasharray")]
    assert len(dashed) == 1 and dashed[0] in {("c2", "c1"), ("c1", "c2")}  # the edge closing the cycle
    legend = [t for t in root.iter(f"{SVG}g") if t.get("data-status") == "INVALID" and t.get("class") == "legend-item"]
    assert "".join(legend[0].find(f"{SVG}text").itertext()) == "invalid 4 assets"
    assert "bad [INVALID]" in render(graph, "text", report)
    assert "<p>6 assets (4 invalid), 6 dependencies." in render(graph, "html", report)


# -- the picture -------------------------------------------------------------------------------------------------
def test_html_draws_every_asset_offline(flights):
    graph, report = flights
    page = render(graph, "html", report)
    assert page.startswith("<!doctype html>")
    svg = page[page.index("<svg"):page.index("</svg>") + len("</svg>")]
    assert page.count("<svg") == 1
    nodes = nodes_of(svg)
    assert sorted(nodes) == sorted(graph.names)  # one node per asset
    # Nothing to fetch and nothing to run: no src/href/url to anywhere, the only script is inert JSON data.
    without_namespace = svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for needle in ("http:", "https:", "src=", "@import", "//cdn", "xlink:href"):
        assert needle not in without_namespace and needle not in page.replace(svg, ""), needle
    assert re.findall(r"<script[^>]*>", page) == ["<script type='application/json' id='lineage'>"]
    data = json.loads(page.split("id='lineage'>")[1].split("</script>")[0])
    assert [a["name"] for a in data["assets"]] == list(graph.names)


def test_colours_follow_statuses_and_show_how_much_is_fresh(flights):
    graph, report = flights
    nodes = nodes_of(render(graph, "svg", report))
    expected = {
        "flights_raw": "FRESH",  # January built, the rest not yet: green, not grey
        "weather_raw": "FRESH",
        "airports": "FRESH",
        "flights_daily": "STALE",
        "delay_rank": "FAILED",
        "carrier_leaderboard": "MISSING",
        "monthly_summary": "MISSING",
        "report": "MISSING",
    }
    for name, status in expected.items():
        g = nodes[name]
        assert g.get("data-status") == status == headline_status(report.counts(name)), name
        assert f"status-{status.lower()}" in g.get("class")
        frame = g.find(f"{SVG}rect")
        assert frame.get("stroke") == COLOURS[status], name
    # The partition bar: January's 31 fresh days are 31/365 of flights_raw's width, in the fresh colour.
    bar = nodes["flights_raw"].findall(f"{SVG}rect")
    track = next(r for r in bar if r.get("class") == "bar")
    fresh = [r for r in bar if r.get("class") == "bar-fresh"]
    assert len(fresh) == 1 and fresh[0].get("fill") == COLOURS["FRESH"]
    assert float(fresh[0].get("width")) / float(track.get("width")) == pytest.approx(31 / 365, abs=0.01)
    assert not nodes["airports"].findall(f"{SVG}rect[@class='bar']")  # unpartitioned: no bar
    # Counts on the node and in its tooltip; the legend says how the colour is chosen.
    texts = ["".join(t.itertext()) for t in nodes["flights_raw"].iter(f"{SVG}text")]
    assert texts == ["flights_raw", "fresh 31 · missing 334"]
    tip = nodes["flights_raw"].find(f"{SVG}title").text
    assert "notebooks/nb.ipynb, cell 2" in tip and "fresh 31 · missing 334 (of 365)" in tip and "8%" in tip
    rule = next(t for t in ET.fromstring(render(graph, "svg", report)).iter(f"{SVG}text")
                if t.get("class") == "legend-rule")
    assert "else fresh when any partition is built" in " ".join(span.text for span in rule)


def test_edge_labels_only_for_mappings_that_are_not_identity(flights):
    graph, report = flights
    root = ET.fromstring(render(graph, "svg", report))
    labels = sorted("".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") == "edge-label")
    # the tooltip text is part of itertext: keep the visible label only
    visible = sorted(t.text for t in root.iter(f"{SVG}text") if t.get("class") == "edge-label")
    assert visible == sorted(["[all]", "[all]", "[all]", "[-6:0]", "daily→monthly", "unpartitioned→daily"])
    assert len(labels) == 6
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edges) == sum(len(spec.deps) for spec in graph.specs)
    tips = {(g.get("data-source"), g.get("data-target")): g.find(f"{SVG}title").text for g in edges}
    assert tips[("flights_daily", "carrier_leaderboard")] == "flights_daily → carrier_leaderboard: reads [all]"
    assert tips[("flights_raw", "flights_daily")] == "flights_raw → flights_daily: same partition key"


def test_without_statuses_nodes_are_neutral(flights):
    graph, _ = flights
    nodes = nodes_of(render(graph, "svg"))
    assert {g.get("data-status") for g in nodes.values()} == {""}
    assert "legend" not in render(graph, "svg")


# -- through the command line, on real notebooks and a real SQLite store -------------------------------------------
def write(root: Path, name: str, *cells: str) -> None:
    nb = new_notebook()
    nb.cells = [new_code_cell(c) for c in cells]
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / "notebooks" / name)


def test_cli_html_and_mermaid_on_a_real_project(tmp_path: Path, capsys):
    days = "--partitions daily:2013-01-01..2013-01-31"
    write(tmp_path, "raw.ipynb", f"%%asset raw {days}\nraw = {{'x': 1}}")
    write(tmp_path, "use.ipynb", f"%%asset clean --deps raw {days}\nclean = raw",
          "%%asset report --deps clean[all]\nreport = clean")
    with Project(tmp_path) as project:
        spec = project.graph.spec("raw")
        for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
            run = project.store.start_run(notebook=spec.notebook, targets=[("raw", day)], kind="manual")
            project.store.finalize_success(run.run_id, [NewMaterialization(
                asset="raw", partition=day, code_version=spec.code_version, data_version="v1",
                deps_signature=spec.deps_signature)])
    assert main(["-C", str(tmp_path), "lineage", "--format", "html"]) == 0
    page = capsys.readouterr().out
    nodes = nodes_of(page[page.index("<svg"):page.index("</svg>") + 6])
    assert sorted(nodes) == ["clean", "raw", "report"]
    assert nodes["raw"].get("data-status") == "FRESH"  # 3 of 31 days built: fresh, and the bar says how much
    assert nodes["clean"].get("data-status") == "MISSING"
    assert main(["-C", str(tmp_path), "lineage", "--format", "mermaid"]) == 0
    mermaid = capsys.readouterr().out
    assert 'clean -->|"[all]"| report' in mermaid
    try:
        assert mermaid_check.parse([mermaid])[0]["ok"]
    except mermaid_check.Unavailable as exc:
        pytest.skip(f"LOUD SKIP: Mermaid's parser is unavailable, so the CLI's Mermaid is NOT checked: {exc}")
