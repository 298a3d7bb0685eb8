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


def count_crossings(upper: Sequence[int], lower: Sequence[int]) -> int:
    """Crossings among segments ``upper[k] -> lower[k]`` (positions in two neighbouring ranks).

    Two segments cross when one is above the other at one end and below it at the other: the inversions of the
    lower ends once the segments are sorted by (upper, lower). Small dense gaps use a table of segment counts and
    two cumulative sums, O(U x L); others count inversions bit by bit, O(E log L). Both in numpy.
    """
    import numpy as np

    u = np.asarray(upper, dtype=np.int64)
    low = np.asarray(lower, dtype=np.int64)
    if len(u) < 2:
        return 0
    n_up, n_low = int(u.max()) + 1, int(low.max()) + 1
    if n_up * n_low <= 16 * len(u) + 4096:
        h = np.bincount(u * n_low + low, minlength=n_up * n_low).reshape(n_up, n_low)
        further = np.cumsum(h[:, ::-1], axis=1)[:, ::-1] - h  # per row: segments ending strictly lower
        above = np.cumsum(further, axis=0) - further  # of those, in rows strictly above
        return int((h * above).sum())
    seq = low[np.lexsort((low, u))]
    crossings = 0
    # A pair a_i > a_j (i < j) differs first at one bit, where a_i has 1 and a_j has 0 and the higher bits agree:
    # count, at each bit, the 1s before each 0 among elements sharing the higher bits.
    for b in range(n_low.bit_length() - 1, -1, -1):
        group = seq >> (b + 1)
        order = np.argsort(group, kind="stable")
        g, bit = group[order], (seq[order] >> b) & 1
        ones_before = np.cumsum(bit) - bit
        new_group = np.empty(len(g), dtype=bool)
        new_group[0], new_group[1:] = True, g[1:] != g[:-1]
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(g)), 0))
        crossings += int((ones_before - ones_before[group_start])[bit == 0].sum())
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
        import numpy as np

        n_ranks = max(self.rank, default=-1) + 1
        # The input order: real nodes as given, then each rank's dummies in edge order.
        self.layers: list[list[int]] = [[] for _ in range(n_ranks)]
        for v, r in enumerate(self.rank):
            self.layers[r].append(v)
        # Ordering works on numpy arrays: per rank, the position of each member (members keep their index in
        # ``layers`` as built); per gap between ranks, the segments as (member index above, member index below).
        local = [0] * len(self.rank)
        for layer in self.layers:
            for p, v in enumerate(layer):
                local[v] = p
        self.seg_up, self.seg_low = [], []
        for r in range(n_ranks - 1):
            pairs = [(local[v], local[w]) for v in self.layers[r] for w in self.down[v]]
            self.seg_up.append(np.array([a for a, _ in pairs], dtype=np.int64))
            self.seg_low.append(np.array([b for _, b in pairs], dtype=np.int64))
        self.members = [list(layer) for layer in self.layers]
        self.pos = [np.arange(len(layer), dtype=np.int64) for layer in self.layers]

    def orders(self) -> list:
        return [p.copy() for p in self.pos]

    def set_orders(self, orders: list) -> None:
        import numpy as np

        self.pos = [p.copy() for p in orders]
        # ``layers`` become top-to-bottom lists again, for the coordinates.
        self.layers = [[members[i] for i in np.argsort(p, kind="stable").tolist()] for members, p in
                       zip(self.members, self.pos)]

    def barycenter_sweep(self, *, down: bool) -> None:
        """Sort each rank by the mean position of its neighbours in the rank before (down) or after (up)."""
        import numpy as np

        pos = self.pos
        for r in range(1, len(pos)) if down else range(len(pos) - 2, -1, -1):
            if down:
                idx, other = self.seg_low[r - 1], pos[r - 1][self.seg_up[r - 1]]
            else:
                idx, other = self.seg_up[r], pos[r + 1][self.seg_low[r]]
            n = len(pos[r])
            degree = np.bincount(idx, minlength=n)
            sums = np.bincount(idx, weights=other, minlength=n)
            # A node without neighbours on that side keeps its place; ties keep the current order.
            key = np.where(degree > 0, sums / np.maximum(degree, 1), pos[r])
            order = np.lexsort((pos[r], key))
            new = np.empty(n, dtype=np.int64)
            new[order] = np.arange(n)
            pos[r] = new

    def crossings(self) -> int:
        return sum(count_crossings(self.pos[r][self.seg_up[r]], self.pos[r + 1][self.seg_low[r]])
                   for r in range(len(self.pos) - 1))

    def _centres(self, h: list[float], node_gap: float, dummy_gap: float) -> list[float]:
        """Vertical centres: each rank pulled towards the mean of its neighbours, keeping its order and gaps.

        Passes alternate left-to-right and right-to-left, then one pulls towards both sides.
        """
        import numpy as np

        n_real = self.n_real
        y = np.zeros(len(self.rank))
        where = np.zeros(len(self.rank), dtype=np.int64)  # node -> position in its rank
        offsets = []
        for layer in self.layers:
            ids = np.array(layer, dtype=np.int64)
            where[ids] = np.arange(len(layer))
            heights = np.array([h[v] for v in layer])
            real = ids < n_real
            seps = (heights[1:] + heights[:-1]) / 2 + np.where(real[1:] & real[:-1], node_gap, dummy_gap)
            off = np.concatenate(([0.0], np.cumsum(seps)))
            y[ids] = off
            offsets.append(off.tolist())
        # Segments between rank r and r + 1 as node ids: (upper ends, lower ends).
        gaps = [(np.array(self.members[r], dtype=np.int64)[self.seg_up[r]],
                 np.array(self.members[r + 1], dtype=np.int64)[self.seg_low[r]]) for r in range(len(self.layers) - 1)]
        n_ranks = len(self.layers)
        for direction in ("down", "up", "down", "up", "both"):
            for r in range(n_ranks) if direction != "up" else range(n_ranks - 1, -1, -1):
                ids = np.array(self.layers[r], dtype=np.int64)
                n = len(ids)
                idx_parts, val_parts = [], []
                if direction != "up" and r > 0:
                    upper, lower = gaps[r - 1]
                    idx_parts.append(where[lower])
                    val_parts.append(y[upper])
                if direction != "down" and r < n_ranks - 1:
                    upper, lower = gaps[r]
                    idx_parts.append(where[upper])
                    val_parts.append(y[lower])
                if not idx_parts:
                    continue
                idx, vals = np.concatenate(idx_parts), np.concatenate(val_parts)
                degree = np.bincount(idx, minlength=n)
                sums = np.bincount(idx, weights=vals, minlength=n)
                want = np.where(degree > 0, sums / np.maximum(degree, 1), y[ids])
                y[ids] = _place_in_order(want.tolist(), offsets[r])
        return y.tolist()

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
        y_list = self._centres(h, node_gap, dummy_gap)
        top = min((y_list[v] - h[v] / 2 for v in range(len(y_list))), default=0.0)
        y = [value + margin - top for value in y_list]
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


def _place_in_order(want: list[float], offsets: list[float]) -> list[float]:
    """The closest positions to ``want`` (least squares) with ``y[i+1] - y[i] >= offsets[i+1] - offsets[i]``.

    Shifting by the cumulative separations (``offsets``) turns it into an isotonic regression, solved by
    pool-adjacent-violators.
    """
    means: list[float] = []
    weights: list[int] = []
    for target, off in zip(want, offsets):
        m, w = target - off, 1
        while means and means[-1] > m:
            m2, w2 = means.pop(), weights.pop()
            m, w = (m * w + m2 * w2) / (w + w2), w + w2
        means.append(m)
        weights.append(w)
    out: list[float] = []
    for m, w in zip(means, weights):
        out += [m] * w
    return [value + off for value, off in zip(out, offsets)]
