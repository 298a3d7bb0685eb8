"""A layered (Sugiyama-style) layout of a directed graph for a left-to-right drawing (pure).

Used by the SVG lineage picture and meant for the lineage widget too: positions are computed here, in Python,
because a layout done on the page's main thread (dagre) takes tens of seconds at 1,000 assets.

Steps, each simple on purpose:

1. **Rank** every node by dependency depth: the longest path from a source (sources are rank 0). Edges that close
   a cycle (only an invalid project has them) are found while ranking and drawn reversed.
2. **Long edges** get one dummy node per rank they cross, so they run through reserved slots instead of through
   other nodes, and crossings can be counted between neighbouring ranks only.
3. **Order** each rank to reduce crossings: barycenter sweeps, down then up, keeping the best order seen
   (the input order included, so the result is never worse than the input by this count).
4. **Coordinates**: x from the rank; y by placing each node as close as possible to the mean of its neighbours
   while keeping the order and the gaps (an isotonic regression, solved exactly by pool-adjacent-violators).

Deterministic: ties are broken by the current position, never by hash order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notebook_orch.core.graph import AssetGraph

Point = tuple[float, float]


@dataclass(frozen=True)
class NodeBox:
    """A node's rectangle; ``x``/``y`` are the top-left corner."""

    name: str
    rank: int
    order: int
    x: float
    y: float
    width: float
    height: float

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class EdgeRoute:
    """The polyline an edge follows from its source's side to its target's side.

    ``reversed`` marks an edge that closes a cycle: it runs right to left.
    """

    source: str
    target: str
    points: tuple[Point, ...]
    reversed: bool = False


@dataclass(frozen=True)
class LayeredLayout:
    nodes: Mapping[str, NodeBox]
    edges: tuple[EdgeRoute, ...]
    ranks: tuple[tuple[str, ...], ...]  # the real nodes of each rank, top to bottom
    width: float
    height: float
    crossings: int  # edge crossings between neighbouring ranks, dummies included
    input_crossings: int  # the same count for the input order (before any sweep)


def rank_nodes(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> tuple[dict[str, int], set[int]]:
    """Longest-path ranks, and the indexes (into ``edges``) of edges ignored to break cycles."""
    index = {n: i for i, n in enumerate(nodes)}
    n = len(nodes)
    preds: list[list[int]] = [[] for _ in range(n)]  # (edge index) per target
    succs: list[list[int]] = [[] for _ in range(n)]
    src_of, dst_of = [], []
    for k, (a, b) in enumerate(edges):
        i, j = index[a], index[b]
        src_of.append(i)
        dst_of.append(j)
        preds[j].append(k)
        succs[i].append(k)
    indeg = [len(p) for p in preds]
    rank = [0] * n
    done = [False] * n
    ignored: set[int] = set()
    ready = [i for i in range(n) if indeg[i] == 0]
    ready.reverse()  # a stack popped from the end: lowest index first
    next_forced = 0
    processed = 0
    while processed < n:
        if not ready:
            # Only a cycle is left: take its first node in input order and ignore the edges still pointing at it.
            while done[next_forced]:
                next_forced += 1
            v = next_forced
            for k in preds[v]:
                if not done[src_of[k]]:
                    ignored.add(k)
            indeg[v] = 0
            ready.append(v)
        v = ready.pop()
        done[v] = True
        processed += 1
        r = 0
        for k in preds[v]:
            if k not in ignored:
                r = max(r, rank[src_of[k]] + 1)
        rank[v] = r
        for k in succs[v]:
            if k in ignored:
                continue
            w = dst_of[k]
            indeg[w] -= 1
            if indeg[w] == 0 and not done[w]:
                ready.append(w)
    return {nodes[i]: rank[i] for i in range(n)}, ignored


def count_crossings(upper: Sequence[int], lower: Sequence[int], size: int) -> int:
    """Crossings among segments ``upper[k] -> lower[k]`` (positions in two neighbouring ranks).

    Sort by the upper end, then count inversions of the lower ends with a Fenwick tree: O(E log V).
    """
    pairs = sorted(zip(upper, lower))
    tree = [0] * (size + 1)
    seen = crossings = 0
    for _, low in pairs:
        # segments already seen whose lower end is > low cross this one
        i, at_most = low + 1, 0
        while i > 0:
            at_most += tree[i]
            i -= i & -i
        crossings += seen - at_most
        seen += 1
        i = low + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return crossings


def layered_layout(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str]],
    *,
    sizes: Mapping[str, tuple[float, float]] | None = None,
    default_size: tuple[float, float] = (160.0, 48.0),
    rank_gap: float = 90.0,
    node_gap: float = 18.0,
    dummy_gap: float = 8.0,
    sweeps: int = 6,
    margin: float = 16.0,
) -> LayeredLayout:
    """Lay ``nodes`` out left to right; ``edges`` are ``(upstream, downstream)`` pairs of names in ``nodes``.

    Duplicate edges are drawn once; self-loops are not drawn. ``sweeps`` = 0 keeps the input order in each rank.
    """
    names = list(dict.fromkeys(nodes))
    known = set(names)
    unique_edges: list[tuple[str, str]] = []
    for a, b in dict.fromkeys(edges):
        for end in (a, b):
            if end not in known:
                raise ValueError(f"edge {a!r} -> {b!r}: {end!r} is not one of the nodes; add it as a node first")
        if a != b:
            unique_edges.append((a, b))
    sizes = sizes or {}
    rank_of, _ = rank_nodes(names, unique_edges)
    g = _LayeredGraph(names, unique_edges, rank_of)
    input_crossings = g.crossings()
    best, best_crossings = g.orders(), input_crossings
    for sweep in range(sweeps):
        if best_crossings == 0:
            break
        g.barycenter_sweep(down=sweep % 2 == 0)
        c = g.crossings()
        if c < best_crossings:
            best, best_crossings = g.orders(), c
    g.set_orders(best)
    return g.coordinates(names, sizes, default_size, rank_gap, node_gap, dummy_gap, margin, best_crossings,
                         input_crossings)


def widget_positions(graph: AssetGraph, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Node centres for the lineage widget's preset layout (its nodes are 200 x 52 model units), ``names`` only."""
    chosen = set(names)
    edges = [(e.upstream, name) for name in names for e in graph.upstream_edges(name) if e.upstream in chosen]
    layout = layered_layout(names, edges, default_size=(200.0, 52.0), rank_gap=80.0, node_gap=38.0)
    return {name: (box.cx, box.cy) for name, box in layout.nodes.items()}


class _LayeredGraph:
    """Real nodes 0..n-1 then dummies; ``up``/``down`` are neighbours in the previous/next rank."""

    def __init__(self, names: list[str], edges: list[tuple[str, str]], rank_of: dict[str, int]) -> None:
        index = {name: i for i, name in enumerate(names)}
        self.n_real = len(names)
        self.rank = [rank_of[name] for name in names]
        self.up: list[list[int]] = [[] for _ in names]
        self.down: list[list[int]] = [[] for _ in names]
        self.chains: list[tuple[int, list[int], bool]] = []  # (edge index, nodes from left to right, reversed)
        self.flat: list[int] = []  # edges within one rank (cycle leftovers): drawn straight
        self.edges = edges
        for k, (a, b) in enumerate(edges):
            i, j = index[a], index[b]
            rev = self.rank[i] > self.rank[j]
            if rev:
                i, j = j, i
            if self.rank[i] == self.rank[j]:
                self.flat.append(k)
                continue
            chain = [i]
            for r in range(self.rank[i] + 1, self.rank[j]):
                d = len(self.rank)
                self.rank.append(r)
                self.up.append([])
                self.down.append([])
                chain.append(d)
            chain.append(j)
            for p, q in zip(chain, chain[1:]):
                self.down[p].append(q)
                self.up[q].append(p)
            self.chains.append((k, chain, rev))
        n_ranks = max(self.rank, default=-1) + 1
        # The input order: real nodes as given, then each rank's dummies in edge order.
        self.layers: list[list[int]] = [[] for _ in range(n_ranks)]
        for v, r in enumerate(self.rank):
            self.layers[r].append(v)
        self.pos = [0] * len(self.rank)
        self._renumber()

    def _renumber(self) -> None:
        for layer in self.layers:
            for p, v in enumerate(layer):
                self.pos[v] = p

    def orders(self) -> list[list[int]]:
        return [list(layer) for layer in self.layers]

    def set_orders(self, orders: list[list[int]]) -> None:
        self.layers = [list(layer) for layer in orders]
        self._renumber()

    def barycenter_sweep(self, *, down: bool) -> None:
        pos = self.pos
        r_range = range(1, len(self.layers)) if down else range(len(self.layers) - 2, -1, -1)
        neighbours = self.up if down else self.down
        for r in r_range:
            layer = self.layers[r]
            keyed = []
            for v in layer:
                nb = neighbours[v]
                # A node without neighbours on that side keeps its place.
                key = sum(pos[u] for u in nb) / len(nb) if nb else float(pos[v])
                keyed.append((key, pos[v], v))
            keyed.sort()
            self.layers[r] = [v for _, _, v in keyed]
            for p, (_, _, v) in enumerate(keyed):
                pos[v] = p

    def crossings(self) -> int:
        total = 0
        pos = self.pos
        for r in range(len(self.layers) - 1):
            upper, lower = [], []
            for v in self.layers[r]:
                pv = pos[v]
                for w in self.down[v]:
                    upper.append(pv)
                    lower.append(pos[w])
            if len(upper) > 1:
                total += count_crossings(upper, lower, len(self.layers[r + 1]))
        return total

    def coordinates(
        self,
        names: list[str],
        sizes: Mapping[str, tuple[float, float]],
        default_size: tuple[float, float],
        rank_gap: float,
        node_gap: float,
        dummy_gap: float,
        margin: float,
        crossings: int,
        input_crossings: int,
    ) -> LayeredLayout:
        n_real = self.n_real
        w = [sizes.get(name, default_size)[0] for name in names] + [0.0] * (len(self.rank) - n_real)
        h = [sizes.get(name, default_size)[1] for name in names] + [0.0] * (len(self.rank) - n_real)
        col_w = [max((w[v] for v in layer), default=0.0) for layer in self.layers]
        col_x, x = [], margin
        for cw in col_w:
            col_x.append(x)
            x += cw + rank_gap
        width = (x - rank_gap + margin) if col_w else 2 * margin
        y = [0.0] * len(self.rank)  # centres
        gaps = []
        for layer in self.layers:
            gl, at = [], 0.0
            for p, v in enumerate(layer):
                if p:
                    prev = layer[p - 1]
                    gap = node_gap if v < n_real and prev < n_real else dummy_gap
                    sep = (h[prev] + h[v]) / 2 + gap
                    gl.append(sep)
                    at += sep
                y[v] = at
            gaps.append(gl)
        # Alternate passes pulling each rank towards its neighbours' mean, then a last one towards both sides.
        passes = [True, False, True, False, None]
        for direction in passes:
            order = range(len(self.layers)) if direction is not False else range(len(self.layers) - 1, -1, -1)
            for r in order:
                layer = self.layers[r]
                want = []
                for v in layer:
                    nb = self.up[v] if direction else self.down[v] if direction is False else self.up[v] + self.down[v]
                    want.append(sum(y[u] for u in nb) / len(nb) if nb else y[v])
                for v, value in zip(layer, _place_in_order(want, gaps[r])):
                    y[v] = value
        top = min((y[v] - h[v] / 2 for v in range(len(y))), default=0.0)
        shift = margin - top
        y = [value + shift for value in y]
        height = max((y[v] + h[v] / 2 for v in range(len(y))), default=0.0) + margin
        boxes = {}
        ranks = []
        for r, layer in enumerate(self.layers):
            real = [v for v in layer if v < n_real]
            ranks.append(tuple(names[v] for v in real))
            for order, v in enumerate(real):
                boxes[names[v]] = NodeBox(names[v], r, order, col_x[r] + (col_w[r] - w[v]) / 2, y[v] - h[v] / 2,
                                          w[v], h[v])
        routes: list[EdgeRoute | None] = [None] * len(self.edges)
        for k, chain, rev in self.chains:
            a, b = chain[0], chain[-1]
            pts: list[Point] = [(boxes[names[a]].x + w[a], y[a])]
            for d in chain[1:-1]:
                r = self.rank[d]
                pts += [(col_x[r], y[d]), (col_x[r] + col_w[r], y[d])]
            pts.append((boxes[names[b]].x, y[b]))
            src, dst = self.edges[k]
            routes[k] = EdgeRoute(src, dst, tuple(reversed(pts)) if rev else tuple(pts), rev)
        for k in self.flat:
            src, dst = self.edges[k]
            a, b = boxes[src], boxes[dst]
            bend = (max(a.x + a.width, b.x + b.width) + rank_gap / 3, (a.cy + b.cy) / 2)
            routes[k] = EdgeRoute(src, dst, ((a.x + a.width, a.cy), bend, (b.x + b.width, b.cy)), True)
        return LayeredLayout(boxes, tuple(r for r in routes if r is not None), tuple(ranks), width, height,
                             crossings, input_crossings)


def _place_in_order(want: list[float], seps: list[float]) -> list[float]:
    """The closest positions to ``want`` (least squares) with ``y[i+1] - y[i] >= seps[i]``.

    Shifting by the cumulative separations turns it into an isotonic regression, solved by pool-adjacent-violators.
    """
    offsets = [0.0]
    for s in seps:
        offsets.append(offsets[-1] + s)
    blocks: list[list[float]] = []  # [mean, weight]
    for target, off in zip(want, offsets):
        blocks.append([target - off, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2 = blocks.pop()
            m1, w1 = blocks[-1]
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2]
    out = []
    for mean, weight in blocks:
        out.extend([mean] * int(weight))
    return [value + off for value, off in zip(out, offsets)]
