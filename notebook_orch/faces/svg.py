"""Draw a lineage picture as one self-contained SVG (no script, no stylesheet, no URL it would fetch).

Input is plain data (see ``SvgNode``/``SvgEdge``); positions come from ``core.layout.layered_layout``. Styling is
written as presentation attributes rather than CSS classes so the same SVG looks the same in a notebook output
(where a ``<style>`` would leak into the whole page), in a browser tab, and as an ``<img>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from notebook_orch.core.layout import EdgeRoute, LayeredLayout, layered_layout
from notebook_orch.core.status import Status
from notebook_orch.core.viewmodel import COLOURS  # the widget's colours: one palette for every picture

# COLOURS (saturated) are for borders, bars and swatches; pale tints go behind text so it stays readable.
TINTS = {
    Status.FRESH: "#e8f5e9",
    Status.STALE: "#fff8e1",
    Status.MISSING: "#f5f5f5",
    Status.FAILED: "#ffebee",
    Status.RUNNING: "#e3f2fd",
    Status.INVALID: "#f3e5f5",
}
NEUTRAL, NEUTRAL_TINT = "#546e7a", "#eceff1"  # no status read (--no-status)
EDGE_COLOUR = "#78909c"
FONT = "font-family=\"-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif\""
NAME_PX, SMALL_PX = 13, 11
NODE_H, MIN_W, MAX_W = 56.0, 120.0, 280.0
LEGEND_LINE = 15.0


@dataclass(frozen=True)
class SvgNode:
    id: str
    label: str
    status: str | None  # None: drawn neutral
    detail: str = ""  # the second line, e.g. ``fresh 31 · missing 334``
    bar: Sequence[Sequence] = ()  # [[status, from, to], ...] fractions of the width
    title: str = ""  # the tooltip


@dataclass(frozen=True)
class SvgEdge:
    source: str
    target: str
    label: str = ""
    title: str = ""


@dataclass(frozen=True)
class SvgLegend:
    counts: dict[str, int] = field(default_factory=dict)  # status -> how many partitions (or assets)
    meanings: dict[str, str] = field(default_factory=dict)
    rule: str = ""  # how a node's colour is chosen, in words
    unit: str = "partitions"
    units: dict[str, str] = field(default_factory=dict)  # a status counted in something else (INVALID: assets)


def text_width(text: str, px: float, *, bold: bool = False) -> float:
    """A cheap estimate of rendered text width in a sans-serif font (no font metrics in a pure function)."""
    return len(text) * px * (0.62 if bold else 0.56)


def fit(text: str, px: float, width: float, *, bold: bool = False) -> str:
    """``text`` shortened with an ellipsis to fit ``width``."""
    if text_width(text, px, bold=bold) <= width:
        return text
    keep = max(1, int(width / (px * (0.62 if bold else 0.56))) - 1)
    return text[:keep] + "…"


def node_size(node: SvgNode) -> tuple[float, float]:
    want = max(text_width(node.label, NAME_PX, bold=True), text_width(node.detail, SMALL_PX)) + 24
    return min(MAX_W, max(MIN_W, want)), NODE_H


def render_svg(nodes: Sequence[SvgNode], edges: Sequence[SvgEdge], *, legend: SvgLegend | None = None,
               title: str = "lineage") -> str:
    sizes = {n.id: node_size(n) for n in nodes}
    layout = layered_layout([n.id for n in nodes], [(e.source, e.target) for e in edges], sizes=sizes)
    return draw(layout, nodes, edges, legend=legend, title=title)


def draw(layout: LayeredLayout, nodes: Sequence[SvgNode], edges: Sequence[SvgEdge], *,
         legend: SvgLegend | None = None, title: str = "lineage") -> str:
    rule_lines: list[str] = []
    legend_w = 0.0
    if legend is not None:
        # The rule wraps to the drawing's width (at least a readable column), so a small graph stays narrow.
        rule_lines = wrap(legend.rule, SMALL_PX, max(layout.width - 32, 420.0))
        legend_w = _legend_width(legend, rule_lines)
    top = 40 + LEGEND_LINE * len(rule_lines) if legend is not None else 0.0
    width, height = max(layout.width, legend_w), layout.height + top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nbo-lineage" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" {FONT} role="img">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="nbo-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE_COLOUR}"/></marker></defs>',
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
    ]
    if legend is not None:
        out.append(_legend(legend, rule_lines))
    out.append(f'<g transform="translate(0,{top:.0f})">')
    routes = {(r.source, r.target): r for r in layout.edges}
    out.append('<g class="edges">')
    labels = []
    for e in edges:
        route = routes.get((e.source, e.target))
        if route is None:  # a self-loop or a duplicate: not drawn
            continue
        tip = f"<title>{escape(e.title or f'{e.source} → {e.target}')}</title>"
        out.append(f'<g class="edge" data-source="{escape(e.source)}" data-target="{escape(e.target)}">{tip}'
                   f'<path d="{_path(route)}" fill="none" stroke="{EDGE_COLOUR}" stroke-width="1.4"'
                   + (' stroke-dasharray="5 3"' if route.reversed else "")
                   + ' marker-end="url(#nbo-arrow)"/></g>')
        if e.label:
            x, y = _label_point(route)
            labels.append(
                f'<text class="edge-label" x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="{SMALL_PX}" '
                f'fill="#37474f" stroke="#ffffff" stroke-width="4" paint-order="stroke">{escape(e.label)}{tip}</text>'
            )
    out.append("</g>")
    out.append('<g class="edge-labels">' + "".join(labels) + "</g>")
    out.append('<g class="nodes">')
    for n in nodes:
        out.append(_node(n, layout))
    out.append("</g></g></svg>")
    return "\n".join(out)


def _node(n: SvgNode, layout: LayeredLayout) -> str:
    box = layout.nodes[n.id]
    x, y, w, h = box.x, box.y, box.width, box.height
    colour = COLOURS.get(n.status or "", NEUTRAL)
    tint = TINTS.get(n.status or "", NEUTRAL_TINT)
    status = (n.status or "none").lower()
    parts = [
        f'<g class="node status-{status}" data-asset="{escape(n.id)}" data-status="{escape(n.status or "")}">',
        f"<title>{escape(n.title or n.label)}</title>",
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="7" fill="{tint}" stroke="{colour}" '
        'stroke-width="2"/>',
        f'<rect x="{x:.1f}" y="{y:.1f}" width="6" height="{h:.1f}" rx="3" fill="{colour}"/>',
        f'<text x="{x + 14:.1f}" y="{y + 20:.1f}" font-size="{NAME_PX}" font-weight="600" fill="#212121">'
        f"{escape(fit(n.label, NAME_PX, w - 22, bold=True))}</text>",
    ]
    if n.detail:
        parts.append(f'<text x="{x + 14:.1f}" y="{y + 36:.1f}" font-size="{SMALL_PX}" fill="#455a64">'
                     f"{escape(fit(n.detail, SMALL_PX, w - 22))}</text>")
    if n.bar:
        bx, bw, by = x + 14, w - 24, y + h - 11
        parts.append(f'<rect class="bar" x="{bx:.1f}" y="{by:.1f}" width="{bw:.1f}" height="5" fill="#e0e0e0"/>')
        for seg_status, a, b in n.bar:
            parts.append(f'<rect class="bar-{str(seg_status).lower()}" x="{bx + a * bw:.2f}" y="{by:.1f}" '
                         f'width="{max((b - a) * bw, 0.6):.2f}" height="5" fill="{COLOURS.get(seg_status, NEUTRAL)}"/>')
    parts.append("</g>")
    return "".join(parts)


def _path(route: EdgeRoute) -> str:
    """Horizontal tangents at every point: S-curves between ranks, straight runs through dummy slots."""
    (x0, y0), *rest = route.points
    d = [f"M{x0:.1f},{y0:.1f}"]
    px, py = x0, y0
    for qx, qy in rest:
        if abs(qy - py) < 0.5:
            d.append(f"L{qx:.1f},{qy:.1f}")
        else:
            dx = (qx - px) / 2
            d.append(f"C{px + dx:.1f},{py:.1f} {qx - dx:.1f},{qy:.1f} {qx:.1f},{qy:.1f}")
        px, py = qx, qy
    return " ".join(d)


def _label_point(route: EdgeRoute) -> tuple[float, float]:
    pts = route.points
    if len(pts) >= 4:  # on a straight run through a dummy slot: the label sits on a horizontal line
        k = 1 + 2 * ((len(pts) - 2) // 4)
        (ax, ay), (bx, _) = pts[k], pts[k + 1]
        return (ax + bx) / 2, ay
    (ax, ay), (bx, by) = pts[0], pts[-1]
    return (ax + bx) / 2, (ay + by) / 2


def _legend_width(legend: SvgLegend, rule_lines: list[str]) -> float:
    row = sum(_swatch_width(s, legend) for s in Status)
    return max([row, *(text_width(line, SMALL_PX) for line in rule_lines)]) + 32


def wrap(text: str, px: float, width: float) -> list[str]:
    """Greedy word wrap of ``text`` to lines of at most ``width`` (estimated), one word per line at least."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(lines[-1] + " " + word, px) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _swatch_width(status: str, legend: SvgLegend) -> float:
    return 26 + text_width(_swatch_text(status, legend), SMALL_PX) + 18


def _swatch_text(status: str, legend: SvgLegend) -> str:
    n = legend.counts.get(status)
    unit = legend.units.get(status)
    return status.lower() + (f" {n}" if n else "") + (f" {unit}" if n and unit else "")


def _legend(legend: SvgLegend, rule_lines: list[str]) -> str:
    out = ['<g class="legend">']
    x = 16.0
    # The report's statuses: an export is a read of the staleness report, which draws live runs as RUNNING.
    for status in Status:
        colour = COLOURS[status]
        tip = legend.meanings.get(status, "")
        n = legend.counts.get(status, 0)
        if n:
            tip += f" ({n} {legend.units.get(status, legend.unit)})"
        out.append(f'<g class="legend-item" data-status="{status}"><title>{escape(tip)}</title>'
                   f'<rect x="{x:.1f}" y="12" width="18" height="14" rx="3" fill="{TINTS[status]}" stroke="{colour}" '
                   f'stroke-width="2"/><text x="{x + 24:.1f}" y="23" font-size="{SMALL_PX}" fill="#263238">'
                   f"{escape(_swatch_text(status, legend))}</text></g>")
        x += _swatch_width(status, legend)
    if rule_lines:
        spans = "".join(f'<tspan x="16" dy="{0 if i == 0 else LEGEND_LINE:.0f}">{escape(line)}</tspan>'
                        for i, line in enumerate(rule_lines))
        out.append(f'<text class="legend-rule" x="16" y="46" font-size="{SMALL_PX}" fill="#546e7a">{spans}</text>')
    out.append("</g>")
    return "".join(out)
