"""The layered layout (pure): ranks follow edges, boxes never overlap, the result is deterministic, and the
barycenter sweeps never leave more crossings than the input order."""

import itertools
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.core.layout import count_crossings, layered_layout, rank_nodes, widget_positions


@st.composite
def dags(draw, max_nodes=14):
    n = draw(st.integers(1, max_nodes))
    names = [f"n{i}" for i in range(n)]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=3 * n, unique=True)) if pairs else []
    order = draw(st.permutations(names))  # the input order is not the topological one
    return list(order), [(names[i], names[j]) for i, j in chosen]


def geometric_crossings(layout) -> int:
    """Crossings counted on the drawing itself: two segments spanning the same gap cross when their ends swap."""
    segments = {}
    for route in layout.edges:
        for (x1, y1), (x2, y2) in zip(route.points, route.points[1:]):
            if abs(x1 - x2) > 1e-9:
                (x1, y1), (x2, y2) = sorted([(x1, y1), (x2, y2)])
                segments.setdefault((round(x1, 6), round(x2, 6)), []).append((y1, y2))
    total = 0
    for segs in segments.values():
        for (a1, b1), (a2, b2) in itertools.combinations(segs, 2):
            if (a1 - a2) * (b1 - b2) < -1e-9:
                total += 1
    return total


def overlapping(a, b) -> bool:
    return a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.y + b.height and b.y < a.y + a.height


@given(dags())
def test_ranks_are_longest_paths_and_respect_every_edge(graph):
    nodes, edges = graph
    rank, ignored = rank_nodes(nodes, edges)
    assert ignored == set()  # a DAG has no edge to ignore
    for a, b in edges:
        assert rank[b] > rank[a]
    for v in nodes:
        preds = [rank[a] for a, b in edges if b == v]
        assert rank[v] == (1 + max(preds) if preds else 0)
    layout = layered_layout(nodes, edges)
    assert {n: box.rank for n, box in layout.nodes.items()} == rank
    for a, b in edges:  # left to right
        assert layout.nodes[a].x + layout.nodes[a].width < layout.nodes[b].x


@given(dags())
def test_no_two_nodes_overlap_and_edges_join_their_nodes(graph):
    nodes, edges = graph
    sizes = {n: (100 + 10 * (i % 5), 30 + 7 * (i % 3)) for i, n in enumerate(nodes)}
    layout = layered_layout(nodes, edges, sizes=sizes)
    boxes = list(layout.nodes.values())
    assert sorted(layout.nodes) == sorted(nodes)
    for a, b in itertools.combinations(boxes, 2):
        assert not overlapping(a, b), (a, b)
    for box in boxes:
        assert (box.width, box.height) == sizes[box.name]
        assert box.x >= 0 and box.y >= 0
        assert box.x + box.width <= layout.width and box.y + box.height <= layout.height
    assert len(layout.edges) == len(set(edges))
    for route in layout.edges:
        src, dst = layout.nodes[route.source], layout.nodes[route.target]
        assert route.points[0] == pytest.approx((src.x + src.width, src.cy))
        assert route.points[-1] == pytest.approx((dst.x, dst.cy))
        assert not route.reversed


@given(dags(max_nodes=10))
def test_sweeps_never_leave_more_crossings_than_the_input_order(graph):
    nodes, edges = graph
    kept = layered_layout(nodes, edges, sweeps=0)
    swept = layered_layout(nodes, edges)
    assert geometric_crossings(kept) == kept.crossings == swept.input_crossings
    assert geometric_crossings(swept) == swept.crossings <= kept.crossings


def test_a_sweep_that_makes_things_worse_is_not_kept():
    # Found by search: the last barycenter sweep leaves 2 crossings here where the input order has 1.
    nodes = ["n0", "n3", "n2", "n1", "n4"]
    edges = [("n0", "n2"), ("n0", "n4"), ("n1", "n2"), ("n1", "n3"), ("n1", "n4"), ("n2", "n3")]
    assert layered_layout(nodes, edges, sweeps=0).crossings == 1
    layout = layered_layout(nodes, edges)
    assert layout.crossings == geometric_crossings(layout) <= 1


def test_sweeps_untangle_a_twisted_ladder():
    # Input order crosses every rung; a barycenter sweep straightens them.
    nodes = ["a1", "a2", "a3", "b3", "b2", "b1", "c1", "c2", "c3"]
    edges = [("a1", "b1"), ("a2", "b2"), ("a3", "b3"), ("b1", "c1"), ("b2", "c2"), ("b3", "c3")]
    assert layered_layout(nodes, edges, sweeps=0).crossings == 6
    layout = layered_layout(nodes, edges)
    assert layout.crossings == 0 == geometric_crossings(layout)
    assert layout.ranks[1] == ("b1", "b2", "b3")


def test_long_edges_run_through_reserved_slots_not_through_nodes():
    nodes = ["src", "m1", "m2", "m3", "sink"]
    edges = [("src", "m1"), ("m1", "m2"), ("m2", "m3"), ("m3", "sink"), ("src", "sink")]
    layout = layered_layout(nodes, edges)
    long = next(r for r in layout.edges if (r.source, r.target) == ("src", "sink"))
    assert len(long.points) == 2 + 2 * 3  # two points through each of the three ranks it crosses
    for x, y in long.points[1:-1]:
        for box in layout.nodes.values():
            assert not (box.x < x < box.x + box.width and box.y <= y <= box.y + box.height)


def test_count_crossings():
    assert count_crossings([0, 1], [1, 0]) == 1
    assert count_crossings([0, 0, 1], [0, 1, 0]) == 1  # a shared end point is not a crossing
    assert count_crossings([0, 1, 2], [2, 1, 0]) == 3
    assert count_crossings([], []) == 0


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=25))
def test_count_crossings_matches_the_definition(segments):
    expected = sum(1 for (a1, b1), (a2, b2) in itertools.combinations(segments, 2) if (a1 - a2) * (b1 - b2) < 0)
    upper, lower = [a for a, _ in segments], [b for _, b in segments]
    assert count_crossings(upper, lower) == expected
    # the Fenwick path taken for huge ranks agrees (a position far away makes the U x L table too big)
    if segments:
        far = [*upper, 5_000], [*lower, 5_000]
        assert count_crossings(*far) == expected


def test_a_cycle_is_drawn_with_its_closing_edge_reversed():
    # Only an invalid project has a cycle, and the picture must still show it.
    nodes, edges = ["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("b", "b")]
    layout = layered_layout(nodes, edges)
    assert [layout.nodes[n].rank for n in nodes] == [0, 1, 2, 3]
    back = [r for r in layout.edges if r.reversed]
    assert [(r.source, r.target) for r in back] == [("c", "a")]
    assert back[0].points[0][0] == layout.nodes["c"].x  # leaves c on its left side, right to left
    assert back[0].points[-1][0] == layout.nodes["a"].x + layout.nodes["a"].width
    assert ("b", "b") not in {(r.source, r.target) for r in layout.edges}  # self-loops are not drawn


def test_unknown_edge_end_is_refused_by_name():
    with pytest.raises(ValueError, match="'ghost' is not one of the nodes"):
        layered_layout(["a"], [("ghost", "a")])


def test_empty_graph():
    layout = layered_layout([], [])
    assert layout.nodes == {} and layout.edges == () and layout.crossings == 0


_SCRIPT = """
import json, random
from notebook_orch.core.layout import layered_layout
rnd = random.Random(3)
nodes = [f"asset_{i}" for i in range(60)]
edges = [(nodes[j], nodes[i]) for i in range(1, 60) for j in rnd.sample(range(i), min(2, i))]
lay = layered_layout(nodes, edges)
print(json.dumps([[(b.name, b.x, b.y) for b in lay.nodes.values()], [r.points for r in lay.edges]]))
"""


def test_deterministic_across_processes_and_hash_seeds():
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    nodes = [f"x{i}" for i in range(30)]
    edges = [(nodes[i], nodes[(i * 7 + 3) % 30]) for i in range(30) if i < (i * 7 + 3) % 30]
    assert layered_layout(nodes, edges) == layered_layout(nodes, edges)


def test_widget_positions_are_the_layered_layout_for_the_chosen_assets():
    from notebook_orch.core.graph import build_graph
    from notebook_orch.core.specs import parse_declaration

    lines = ["a", "b --deps a", "c --deps a", "d --deps b,c", "e --deps d"]
    graph = build_graph([parse_declaration(line, notebook="nb.ipynb", cell=i) for i, line in enumerate(lines)])
    positions = widget_positions(graph, ["a", "b", "c", "d"])
    assert sorted(positions) == ["a", "b", "c", "d"]
    assert positions["a"][0] < positions["b"][0] == positions["c"][0] < positions["d"][0]
    assert abs(positions["b"][1] - positions["c"][1]) >= 52  # the widget's nodes are 52 high: no overlap


@given(st.integers(1, 10).flatmap(lambda n: st.tuples(
    st.just([f"v{i}" for i in range(n)]),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))))
def test_any_directed_graph_is_laid_out_cycles_included(graph):
    # An invalid project can hold cycles: the picture must still place every node once, without overlaps.
    nodes, pairs = graph
    edges = [(nodes[a], nodes[b]) for a, b in pairs]
    layout = layered_layout(nodes, edges)
    assert sorted(layout.nodes) == sorted(nodes)
    for a, b in itertools.combinations(layout.nodes.values(), 2):
        assert not overlapping(a, b)
    drawn = {(r.source, r.target) for r in layout.edges}
    assert drawn == {(a, b) for a, b in edges if a != b}
    for route in layout.edges:
        src, dst = layout.nodes[route.source], layout.nodes[route.target]
        assert route.reversed == (src.rank >= dst.rank)
