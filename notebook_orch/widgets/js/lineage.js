// The lineage graph's front end (anywidget): cytoscape.js with positions computed in the kernel ("preset"
// layout), so a graph of thousands of nodes never runs a layout on the page's main thread.
// Rebuild the bundle with scripts/build_widget_js.sh after editing this file.
import cytoscape from "cytoscape";

// Status colours come from the kernel (core/viewstates.py COLOURS and TEXT_COLOURS, in the graph trait): one answer
// for the graph, the heatmap and the legend. Set from the graph on each draw.
let COLOURS = {};
let TEXT = {};

function useColours(graph) {
  COLOURS = graph.colours || {};
  TEXT = graph.text_colours || {};
}

function barImage(bar) {
  // The partition bar as a tiny SVG: one rect per run of equal status (the kernel already merged runs).
  if (!bar || bar.length === 0) return "none";
  const rects = bar.map(([status, a, b]) =>
    `<rect x="${(a * 100).toFixed(2)}" y="0" width="${((b - a) * 100).toFixed(2)}" height="10" ` +
    `fill="${COLOURS[status] || "#000"}"/>`).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="100" height="10" viewBox="0 0 100 10" ` +
    `preserveAspectRatio="none"><rect width="100" height="10" fill="#fff"/>${rects}</svg>`;
  return "data:image/svg+xml;utf8," + encodeURIComponent(svg);
}

// Past this many nodes the partition bars are not drawn: at a zoom that shows the whole graph they are under a
// pixel tall, and decoding one image per node cost seconds at 1,000 nodes.
const BAR_LIMIT = 300;

function nodeData(n, bars) {
  const bar = bars && n.bar && n.bar.length > 0;
  return {
    id: n.id, name: n.label, status: n.status,
    text: n.counts_text && n.counts_text !== n.status.toLowerCase() ? `${n.label}\n${n.counts_text}` : n.label,
    bar: bar ? barImage(n.bar) : "none", hasBar: bar ? 1 : 0, counts: n.counts || {},
    fg: TEXT[n.status] || "#fff", ...(n.group ? { parent: n.group } : {}),
  };
}

function elements(graph, groups, bars) {
  const els = [];
  if (groups) {
    for (const g of graph.groups) {
      els.push({ group: "nodes", data: { id: g.id, name: g.label, text: g.label, members: g.members },
                 classes: "notebook" });
    }
  }
  for (const n of graph.nodes) {
    const data = nodeData(n, bars);
    if (!groups) delete data.parent;
    els.push({ group: "nodes", data, classes: n.classes, position: { x: n.x, y: n.y } });
  }
  for (const e of graph.edges) {
    els.push({ group: "edges", data: { id: e.id, source: e.source, target: e.target, label: e.label },
               classes: e.classes });
  }
  return els;
}

function style(large) {
  const s = [
    { selector: "node", style: {
      "shape": "round-rectangle", "width": 200, "height": 52, "label": "data(text)",
      "text-wrap": "wrap", "text-max-width": 190, "text-valign": "center", "text-halign": "center",
      "font-size": 12, "font-family": "sans-serif", "color": "data(fg)", "border-width": 1,
      "border-color": "#37474f", "background-color": "#9e9e9e",
      "min-zoomed-font-size": large ? 7 : 0 } },
    { selector: "node[hasBar = 1]", style: {
      "background-image": "data(bar)", "background-width": "100%", "background-height": 6,
      "background-position-y": "100%", "background-clip": "node", "background-image-containment": "inside" } },
    { selector: "node.notebook", style: {
      "shape": "round-rectangle", "background-color": "#eceff1", "background-opacity": 0.6,
      "border-color": "#90a4ae", "border-style": "dashed", "label": "data(text)", "color": "#455a64",
      "text-valign": "top", "text-halign": "center", "font-size": 13, "padding": 18 } },
    { selector: "node.notebook.collapsed", style: {
      "width": 200, "height": 52, "border-style": "solid", "text-valign": "center", "background-opacity": 1 } },
    // Past LARGE nodes edges are haystacks (one straight segment centre to centre, the cheapest edge cytoscape
    // draws) without arrows: layers run left to right, so an edge always points right.
    { selector: "edge", style: large ? {
      "width": 1, "line-color": "#b0bec5", "curve-style": "haystack", "haystack-radius": 0 } : {
      "width": 1.5, "line-color": "#90a4ae", "target-arrow-color": "#90a4ae", "target-arrow-shape": "triangle",
      "curve-style": "bezier", "arrow-scale": 0.9 } },
    { selector: "edge.mapped", style: {
      "label": "data(label)", "font-size": 10, "color": "#37474f", "text-background-color": "#fff",
      "text-background-opacity": 0.9, "text-background-padding": 2, "line-style": "dashed" } },
    { selector: "edge.meta", style: {
      "label": "data(label)", "font-size": 10, "color": "#37474f", "text-background-color": "#fff",
      "text-background-opacity": 0.9, "text-background-padding": 2, "width": 2.5 } },
    { selector: "edge.invalid", style: { "line-color": "#6a1b9a", "target-arrow-color": "#6a1b9a",
      "line-style": "dotted" } },
    { selector: "node:selected", style: { "border-width": 4, "border-color": "#000" } },
    { selector: ".faded", style: { "opacity": 0.25 } },
    { selector: "edge.path", style: { "line-color": "#000", "target-arrow-color": "#000", "width": 3 } },
    { selector: "node.path", style: { "border-width": 3, "border-color": "#000" } },
  ];
  for (const [status, colour] of Object.entries(COLOURS)) {
    s.push({ selector: `node.status-${status.toLowerCase()}`, style: { "background-color": colour } });
  }
  return s;
}

function totalsOf(cy) {
  const totals = {};
  cy.nodes(":childless").forEach((n) => {
    for (const [s, c] of Object.entries(n.data("counts") || {})) totals[s] = (totals[s] || 0) + c;
  });
  return totals;
}

function legend(graph, totals) {
  const div = document.createElement("div");
  div.className = "nbo-legend";
  div.style.cssText = "display:flex;flex-wrap:wrap;gap:10px;align-items:center;font:12px sans-serif;" +
    "padding:4px 2px;color:#263238";
  totals = totals || graph.totals || {};
  const what = document.createElement("span");  // the counts are partitions, not assets
  what.style.cssText = "color:#607d8b";
  what.textContent = "partitions:";
  div.appendChild(what);
  for (const item of graph.legend) {
    const span = document.createElement("span");
    span.title = item.meaning;
    span.dataset.status = item.status;
    const n = totals[item.status];
    span.innerHTML = `<span style="display:inline-block;width:12px;height:12px;border-radius:2px;` +
      `vertical-align:-2px;background:${item.colour};margin-right:4px"></span>${item.label}` +
      (n ? ` <b>${n}</b>` : "");
    div.appendChild(span);
  }
  const hint = document.createElement("span");
  hint.style.cssText = "color:#607d8b;margin-left:auto";
  hint.textContent = "click an asset for details and actions · click a notebook box to collapse it";
  div.appendChild(hint);
  return div;
}

function render({ model, el }) {
  const t0 = performance.now();
  const startedAt = Date.now();
  const wrap = document.createElement("div");
  wrap.className = "nbo-lineage";
  const box = document.createElement("div");
  box.className = "nbo-lineage-canvas";
  box.style.cssText = `width:100%;height:${model.get("height")};border:1px solid #cfd8dc;border-radius:4px`;
  let graph = model.get("graph");
  useColours(graph);
  let leg = legend(graph);
  wrap.appendChild(leg);
  wrap.appendChild(box);
  el.appendChild(wrap);
  // A press on the graph must not reach the notebook: JupyterLab would make the cell active and scroll it into
  // view between mousedown and mouseup, so the tap lands on another node (seen in the browser tests).
  for (const kind of ["mousedown", "pointerdown", "touchstart"]) {
    box.addEventListener(kind, (e) => e.stopPropagation());
  }

  const large = () => graph.nodes.length > 300;
  let barsOn = true;
  const cy = cytoscape({
    container: box, elements: [], style: style(large()), layout: { name: "preset" },
    wheelSensitivity: 0.3, minZoom: 0.02, maxZoom: 3,
    textureOnViewport: true, hideEdgesOnViewport: large(), pixelRatio: 1,
  });
  el._cy = cy;
  el.classList.add("nbo-lineage-host");

  function load() {
    barsOn = graph.nodes.length <= BAR_LIMIT;
    cy.startBatch();
    cy.elements().remove();
    cy.add(elements(graph, model.get("groups"), barsOn));
    cy.endBatch();
    for (const id of [...shut]) if (cy.getElementById(id).empty()) shut.delete(id);
    if (shut.size) applyCollapsed();  // a redraw (the notebooks changed) keeps what was collapsed
    if (large()) fitPositions(); else cy.fit(undefined, 20);
    box.dataset.nodes = String(graph.nodes.length);
    box.dataset.renderMs = String(Math.round(performance.now() - t0));
    box.dataset.renderStartAt = String(startedAt);
    box.dataset.drawnAt = String(Date.now());
    cy.one("render", () => { box.dataset.paintedAt = String(Date.now()); });  // the first frame on the canvas
    box.dataset.ready = "1";
  }

  function fitPositions() {
    // cy.fit() measures every element with its label (thousands of text measurements); the kernel's positions
    // and the fixed node size give the same frame at once.
    let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
    for (const n of graph.nodes) {
      x1 = Math.min(x1, n.x); x2 = Math.max(x2, n.x); y1 = Math.min(y1, n.y); y2 = Math.max(y2, n.y);
    }
    if (!isFinite(x1)) return;
    x1 -= 100; x2 += 100; y1 -= 26; y2 += 26;  // half a node (200 x 52)
    const w = cy.width() - 40, h = cy.height() - 40;
    const zoom = Math.max(cy.minZoom(), Math.min(cy.maxZoom(), w / (x2 - x1), h / (y2 - y1)));
    cy.viewport({ zoom, pan: { x: 20 + (w - zoom * (x2 - x1)) / 2 - zoom * x1,
                               y: 20 + (h - zoom * (y2 - y1)) / 2 - zoom * y1 } });
  }

  function highlight(node) {
    // Only the elements whose class changes are touched: fading every other element restyled ~4,000 elements
    // on a 1,000-node graph and held the page for seconds.
    cy.startBatch();
    cy.$(".path").removeClass("path");
    if (!large()) cy.$(".faded").removeClass("faded");
    if (node) {
      const path = node.predecessors().union(node.successors()).union(node);
      path.addClass("path");
      if (!large()) cy.elements().not(path).not("node.notebook").addClass("faded");
    }
    cy.endBatch();
  }

  // Collapsed notebooks: the box becomes one node and every edge between one of its assets and the outside is
  // drawn once between the box and that outside end (core/viewgroups.py computes the same edges for ipycytoscape).
  const shut = new Set();
  function metaEdges() {
    const groupOf = {};
    for (const n of graph.nodes) if (n.group) groupOf[n.id] = n.group;
    const end = (id) => (shut.has(groupOf[id]) ? groupOf[id] : id);
    const merged = new Map();
    for (const e of graph.edges) {
      const s = end(e.source), t = end(e.target);
      if (s === t || (s === e.source && t === e.target)) continue;
      const key = `${s}\u0000${t}`;
      merged.set(key, { s, t, n: (merged.has(key) ? merged.get(key).n : 0) + 1 });
    }
    return [...merged.values()].map(({ s, t, n }) => ({ group: "edges", classes: "meta",
      data: { id: `meta:${s}->${t}`, source: s, target: t, label: n > 1 ? `${n} edges` : "" } }));
  }

  function applyCollapsed() {
    cy.startBatch();
    cy.edges(".meta").remove();
    cy.nodes("node.notebook").forEach((group) => {
      const closed = shut.has(group.id());
      const kids = group.children();
      kids.style("display", closed ? "none" : "element");
      if (closed) {
        group.addClass("collapsed");
        group.data("text", `${group.data("name")}\n${kids.length} assets (collapsed)`);
      } else {
        group.removeClass("collapsed");
        group.data("text", group.data("name"));
      }
    });
    cy.add(metaEdges());
    cy.endBatch();
    box.dataset.collapsed = JSON.stringify([...shut]);
  }

  function toggleGroup(group) {
    if (shut.has(group.id())) shut.delete(group.id()); else shut.add(group.id());
    applyCollapsed();
  }

  let pending = null;
  function highlightTimed(node) {
    pending = null;
    const h0 = performance.now();
    highlight(node);
    box.dataset.highlightMs = String(Math.round(performance.now() - h0));
  }

  cy.on("tap", "node", (evt) => {
    const node = evt.target;
    if (node.hasClass("notebook")) { toggleGroup(node); return; }
    box.dataset.tapAt = String(Date.now());
    model.send({ type: "click", node: node.id(), sent_at: Date.now() });
    // The panel is what people wait for: on a big graph restyling the path and redrawing took 0.1-0.3 s of the
    // page's only thread, so it waits until the kernel says the panel is shown (or half a second at most).
    clearTimeout(pending);
    if (large()) { pending = setTimeout(() => highlightTimed(node), 500); } else { highlightTimed(node); }
  });
  cy.on("tap", (evt) => { if (evt.target === cy) highlight(null); });

  model.on("msg:custom", (msg) => {
    if (msg.type === "patch") {
      cy.batch(() => {
        for (const [id, p] of Object.entries(msg.nodes)) {
          const node = cy.getElementById(id);
          if (node.empty()) continue;
          node.classes(p.classes);
          const bar = barsOn && p.bar && p.bar.length > 0;
          node.data({ status: p.status, fg: TEXT[p.status] || "#fff", bar: bar ? barImage(p.bar) : "none",
                      hasBar: bar ? 1 : 0, counts: p.counts || {},
                      text: p.counts_text && p.counts_text !== p.status.toLowerCase()
                        ? `${node.data("name")}\n${p.counts_text}` : node.data("name") });
        }
      });
      const fresh = legend(graph, totalsOf(cy));  // the totals follow the patches
      wrap.replaceChild(fresh, leg);
      leg = fresh;
      box.dataset.patches = String(Number(box.dataset.patches || 0) + 1);
      box.dataset.lastPatch = JSON.stringify({ seq: msg.seq, sent_at: msg.sent_at, applied_at: Date.now() });
    } else if (msg.type === "shown") {
      if (pending !== null) {
        clearTimeout(pending);
        const node = cy.getElementById(msg.node);
        // after the browser has painted the panel
        pending = setTimeout(() => highlightTimed(node.empty() ? null : node), 50);
      }
    } else if (msg.type === "select") {
      const node = cy.getElementById(msg.node);
      if (!node.empty()) { cy.$(":selected").unselect(); node.select(); highlight(node); }
    }
  });
  model.on("change:graph", () => {
    graph = model.get("graph");
    useColours(graph);
    const fresh = legend(graph);
    wrap.replaceChild(fresh, leg);
    leg = fresh;
    cy.style(style(large()));
    load();
  });
  model.on("change:groups", load);

  // The canvas may be sized only after JupyterLab attaches the output; draw once it has a size.
  let loaded = false;
  const observer = new ResizeObserver(() => {
    if (box.clientWidth === 0) return;
    cy.resize();
    if (!loaded) { loaded = true; load(); model.send({ type: "ready" }); }
  });
  observer.observe(box);
  return () => { observer.disconnect(); cy.destroy(); };
}

export default { render };
