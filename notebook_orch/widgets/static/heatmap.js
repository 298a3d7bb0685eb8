// The partition heatmap's front end (anywidget, plain ES module: no dependency, no build step).
// Rows are assets, x is time (days) for time-partitioned assets and position for static ones. Statuses arrive as
// run-length ranges [code, start, stop) and are drawn on one canvas, one rectangle per run: 50 x 365 cells cost
// what a few hundred rectangles cost, and a live patch redraws only its row.

const DAY = 86400000;
const HOUR = 3600000;
// Drawn first to last, so the worst status of a pixel shows when runs are thinner than a pixel.
const PAINT_ORDER = ["FRESH", "MISSING", "STALE", "FAILED", "WAITING", "RUNNING", "PRESUMED_DEAD", "INVALID"];

function pad(n, w = 2) { return String(n).padStart(w, "0"); }

// -- partition arithmetic (core.partitions, in UTC) --------------------------------------------------------
function windowStart(row, i) {
  if (row.grain === "monthly") {
    const d = new Date(row.start_ms);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + i, 1);
  }
  const step = row.grain === "hourly" ? HOUR : row.grain === "weekly" ? 7 * DAY : DAY;
  return row.start_ms + i * step;
}

function indexAt(row, t) {
  if (row.grain === "monthly") {
    const a = new Date(row.start_ms), b = new Date(t);
    return (b.getUTCFullYear() - a.getUTCFullYear()) * 12 + b.getUTCMonth() - a.getUTCMonth();
  }
  const step = row.grain === "hourly" ? HOUR : row.grain === "weekly" ? 7 * DAY : DAY;
  return Math.floor((t - row.start_ms) / step);
}

function keyOf(row, i) {
  if (row.kind === "invalid") return "(declaration)";
  if (row.kind === "index") return row.keys ? row.keys[i] : `#${i + 1} of ${row.n}`;
  const d = new Date(windowStart(row, i));
  const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
  if (row.grain === "monthly") return day;
  if (row.grain === "hourly") return `${day}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}`;
  return `${day}-${pad(d.getUTCDate())}`;
}

function expand(row) {
  const codes = new Int8Array(row.n);
  for (const [c, a, b] of row.ranges) codes.fill(c, a, b);
  return codes;
}

function runsOf(codes) {
  const out = [];
  let a = 0;
  for (let i = 1; i <= codes.length; i++) {
    if (i === codes.length || codes[i] !== codes[a]) { out.push([codes[a], a, i]); a = i; }
  }
  return out;
}

function el(tag, css, text) {
  const e = document.createElement(tag);
  if (css) e.style.cssText = css;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el: host }) {
  const t0 = performance.now();
  const wrap = el("div", "font:12px sans-serif;color:#263238;background:#fff;position:relative");
  wrap.className = "nbo-partitions";
  const legendBar = el("div", "display:flex;flex-wrap:wrap;gap:10px;align-items:center;padding:4px 2px");
  legendBar.className = "nbo-partitions-legend";
  const scroller = el("div", "max-height:640px;overflow-y:auto;border:1px solid #cfd8dc;border-radius:4px;" +
    "background:#fff");
  const head = el("canvas", "display:block;position:sticky;top:0;z-index:1;background:#fff");
  head.className = "nbo-partitions-axis";
  const body = el("canvas", "display:block;cursor:crosshair");
  body.className = "nbo-partitions-canvas";
  const info = el("div", "min-height:18px;padding:4px 2px;color:#37474f");
  info.className = "nbo-partitions-selected";
  // Placed inside the widget, not position:fixed: JupyterLab's output area is a containing block for fixed
  // elements (the tip landed off screen in the first screenshots).
  const tip = el("div", "position:absolute;display:none;pointer-events:none;z-index:1000;background:#263238;" +
    "color:#fff;padding:4px 7px;border-radius:3px;font:12px sans-serif;white-space:pre;" +
    "box-shadow:0 1px 4px rgba(0,0,0,.3)");
  tip.className = "nbo-partitions-tip";
  scroller.append(head, body);
  wrap.append(legendBar, scroller, info, tip);
  host.appendChild(wrap);
  // A press on the canvas must not reach the notebook: JupyterLab would activate the cell and may scroll it.
  for (const kind of ["mousedown", "pointerdown"]) scroller.addEventListener(kind, (e) => e.stopPropagation());

  let view, rows, geo;  // geo: where things are drawn, in CSS pixels
  let zoom = null;  // {d0, d1}: the days shown on the time axis when zoomed in (days from the axis start)
  const codes = new Map();  // asset -> Int8Array of status codes, patched live

  function load() {
    view = model.get("view") || { rows: [], statuses: [], colours: [], legend: [] };
    rows = view.rows;
    codes.clear();
    for (const r of rows) codes.set(r.asset, expand(r));
    if (zoom && (!view.axis || zoom.d1 > view.axis.days)) zoom = null;
    drawLegend();
    layout();
    draw();
  }

  function colourOf(code) { return view.colours[code] || "#000"; }

  function drawLegend() {
    legendBar.replaceChildren();
    const totals = {};
    for (const r of rows) for (const [s, n] of Object.entries(r.counts || {})) totals[s] = (totals[s] || 0) + n;
    for (const item of view.legend) {
      const span = el("span");
      span.title = item.meaning;
      span.dataset.status = item.status;
      span.append(el("span", `display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;` +
        `margin-right:4px;background:${item.colour}`), item.label);
      if (totals[item.status]) span.append(" ", el("b", "", String(totals[item.status])));
      legendBar.appendChild(span);
    }
    const hint = el("span", "color:#607d8b;margin-left:auto", rows.length === 0
      ? "no assets to show: declare one with %%asset in a notebook, or widen the selection"
      : "hover a cell for its partition · click it to select" + (view.axis ? " · drag across days to zoom" : ""));
    legendBar.appendChild(hint);
    if (zoom) {
      const all = el("button", "font:12px sans-serif;padding:1px 8px;cursor:pointer", "show all days");
      all.className = "nbo-partitions-unzoom";
      all.addEventListener("click", () => setZoom(null));
      legendBar.appendChild(all);
    }
  }

  function layout() {
    const width = Math.max(320, scroller.clientWidth || 800);
    const ctx = body.getContext("2d");
    ctx.font = "12px sans-serif";
    const labelW = Math.min(220, Math.max(60, ...rows.map((r) => ctx.measureText(r.asset).width))) + 12;
    // The counts column is as wide as its longest text, within a third of the width (none on a narrow output).
    const countsW = width >= 700
      ? Math.min(width / 3, Math.max(0, ...rows.map((r) => ctx.measureText(r.counts_text || "").width)) + 16) : 0;
    const x0 = labelW, plotW = Math.max(100, width - labelW - countsW - 8);
    const n = rows.length;
    const rowH = n <= 80 ? 16 : n <= 300 ? 10 : 5;
    const timed = rows.filter((r) => r.kind === "time");
    const other = rows.filter((r) => r.kind !== "time");
    const maxN = Math.max(1, ...other.filter((r) => r.kind === "index").map((r) => r.n));
    const gapH = timed.length && other.length ? 20 : 0;  // a caption between the time rows and the others
    const axis = view.axis;
    geo = {
      width, x0, plotW, countsW, rowH, gapH, headH: axis ? 30 : 6,
      d0: zoom ? zoom.d0 : 0,
      pxPerDay: axis ? plotW / (zoom ? zoom.d1 - zoom.d0 : axis.days) : 0,
      cellW: Math.max(1, Math.min(28, plotW / maxN)),
      top: new Map(), timedCount: timed.length,
    };
    let y = 0;
    for (const r of timed) { geo.top.set(r.asset, y); y += rowH; }
    y += gapH;
    for (const r of other) { geo.top.set(r.asset, y); y += rowH; }
    geo.height = y + 4;
    size(head, width, geo.headH);
    size(body, width, geo.height);
  }

  function size(canvas, w, h) {
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    canvas.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
  }

  // x (CSS px) of the start of partition i of a row, and of its end.
  function xOf(row, i) {
    if (row.kind === "time") {
      return geo.x0 + ((windowStart(row, i) - view.axis.start_ms) / DAY - geo.d0) * geo.pxPerDay;
    }
    if (row.kind === "invalid") return geo.x0 + (i ? geo.plotW : 0);
    return geo.x0 + i * geo.cellW;
  }

  function drawAxis() {
    const ctx = head.getContext("2d");
    ctx.clearRect(0, 0, geo.width, geo.headH);
    if (!view.axis) return;
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "top";
    let lastEnd = -Infinity;
    for (const t of ticks()) {
      const x = geo.x0 + (t.x - geo.d0) * geo.pxPerDay;
      if (x < geo.x0 - 0.5 || x > geo.x0 + geo.plotW) continue;
      ctx.fillStyle = t.major ? "#455a64" : "#90a4ae";
      ctx.fillRect(Math.round(x), t.major ? 14 : 20, 1, t.major ? 16 : 10);
      ctx.font = t.major ? "bold 11px sans-serif" : "11px sans-serif";
      const w = ctx.measureText(t.label).width;
      if (x + 2 > lastEnd + 4 && x + 2 + w <= geo.width) {
        ctx.fillStyle = "#37474f";
        ctx.fillText(t.label, x + 2, 2);
        lastEnd = x + 2 + w;
      }
    }
    ctx.fillStyle = "#cfd8dc";
    ctx.fillRect(geo.x0, geo.headH - 1, geo.plotW, 1);
  }

  // The kernel's ticks (months, or days on a short axis); zoomed in to a few weeks, a tick per day.
  function ticks() {
    if (geo.pxPerDay < 8 || view.axis.days <= 42) return view.axis.ticks;
    const out = [];
    const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const last = Math.min(view.axis.days, geo.d0 + geo.plotW / geo.pxPerDay);
    for (let d = Math.ceil(geo.d0); d < last; d++) {
      const t = new Date(view.axis.start_ms + d * DAY);
      const first = d === Math.ceil(geo.d0) || t.getUTCDate() === 1;
      out.push({ x: d, major: first, label: first ? `${MONTHS[t.getUTCMonth()]} ${t.getUTCDate()}`
        + (t.getUTCMonth() === 0 || d === Math.ceil(geo.d0) ? ` ${t.getUTCFullYear()}` : "")
        : String(t.getUTCDate()) });
    }
    return out;
  }

  function drawRow(row) {
    const ctx = body.getContext("2d");
    const y = geo.top.get(row.asset), h = geo.rowH;
    ctx.clearRect(0, y, geo.width, h);
    if (h >= 9) {
      ctx.font = `${Math.min(12, h - 3)}px sans-serif`;
      ctx.textBaseline = "middle";
      ctx.fillStyle = "#263238";
      ctx.fillText(fit(ctx, row.asset, geo.x0 - 10), 4, y + h / 2);
      if (geo.countsW) {
        ctx.fillStyle = "#607d8b";
        ctx.fillText(fit(ctx, row.counts_text, geo.countsW - 8), geo.x0 + geo.plotW + 8, y + h / 2);
      }
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(geo.x0, y, geo.plotW, h);
    ctx.clip();  // zoomed in, runs reach past the plot area
    const runs = runsOf(codes.get(row.asset));
    const cellPx = xOf(row, 1) - xOf(row, 0);
    const gap = h >= 9 ? 1 : 0;
    // Any status the kernel sends that this list does not know is painted last, never left blank.
    for (const status of [...PAINT_ORDER, ...view.statuses.filter((s) => !PAINT_ORDER.includes(s))]) {
      const code = view.statuses.indexOf(status);
      ctx.fillStyle = colourOf(code);
      for (const [c, a, b] of runs) {
        if (c !== code) continue;
        const xa = xOf(row, a), xb = xOf(row, b);
        // A run thinner than a pixel still shows, unless it is the background (fresh or missing).
        const w = Math.max(xb - xa, status === "FRESH" || status === "MISSING" ? 0 : 1);
        ctx.fillRect(xa, y + gap, w, h - 2 * gap);
      }
    }
    if (cellPx >= 5 && row.kind !== "invalid") {  // wide cells: a hairline between partitions to count them by
      ctx.fillStyle = "rgba(255,255,255,0.6)";
      for (let i = 1; i < row.n; i++) ctx.fillRect(Math.round(xOf(row, i)), y + gap, 1, h - 2 * gap);
    }
    const sel = model.get("selected") || {};
    if (sel.asset === row.asset && sel.index !== undefined) {
      const xa = xOf(row, sel.index), xb = xOf(row, sel.index + 1);
      // Inside the row's band: a redraw of this row alone must wipe it when the selection moves.
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 2;
      ctx.strokeRect(xa - 1, y + 1, Math.max(xb - xa, 2) + 2, h - 2);
    }
    ctx.restore();
  }

  function fit(ctx, text, w) {
    if (ctx.measureText(text).width <= w) return text;
    let s = text;
    while (s.length > 1 && ctx.measureText(s + "…").width > w) s = s.slice(0, -1);
    return s + "…";
  }

  function draw() {
    const start = performance.now();
    drawAxis();
    const ctx = body.getContext("2d");
    ctx.clearRect(0, 0, geo.width, geo.height);
    for (const r of rows) drawRow(r);
    if (geo.gapH) {
      ctx.font = "11px sans-serif";
      ctx.textBaseline = "middle";
      ctx.fillStyle = "#607d8b";
      ctx.fillText("static and unpartitioned assets: one cell per partition",
        geo.x0, geo.timedCount * geo.rowH + geo.gapH / 2);
    }
    showSelected();
    body.dataset.rows = String(rows.length);
    body.dataset.drawMs = String(Math.round(performance.now() - start));
    body.dataset.renderMs = String(Math.round(performance.now() - t0));
    body.dataset.ready = "1";
  }

  function showSelected() {
    const sel = model.get("selected") || {};
    info.replaceChildren();
    if (!sel.asset) {
      info.textContent = "";
      return;
    }
    const code = view.statuses.indexOf(sel.status);
    info.append(el("span", `display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;` +
      `background:${colourOf(code)}`), "Selected ",
      sel.detail || `${sel.asset}[${sel.partition}] is ${sel.status.toLowerCase()}`);
    info.dataset.asset = sel.asset;
    info.dataset.partition = sel.partition;
  }

  // -- pointer: which cell is under (x, y) in CSS px of the body canvas --------------------------------------
  function cellAt(x, y) {
    let row = null;
    for (const r of rows) {
      const top = geo.top.get(r.asset);
      if (y >= top && y < top + geo.rowH) { row = r; break; }
    }
    if (!row || x < geo.x0 || x >= geo.x0 + geo.plotW) return row ? { row, index: -1 } : null;
    let index;
    if (row.kind === "time") {
      index = indexAt(row, view.axis.start_ms + (geo.d0 + (x - geo.x0) / geo.pxPerDay) * DAY);
    }
    else if (row.kind === "invalid") index = 0;
    else index = Math.floor((x - geo.x0) / geo.cellW);
    return { row, index: index >= 0 && index < row.n ? index : -1 };
  }

  function where(e) {
    const r = body.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  body.addEventListener("mousemove", (e) => {
    const hit = cellAt(...where(e));
    if (!hit) { tip.style.display = "none"; return; }
    const { row, index } = hit;
    let text;
    if (index < 0) {
      text = `${row.asset}  (${row.partitions || "unpartitioned"})\n${row.counts_text}`;
    } else {
      const code = codes.get(row.asset)[index];
      const label = (view.labels && view.labels[code]) || view.statuses[code].toLowerCase();
      text = row.kind === "invalid" ? `${row.asset} · invalid\n${row.problem || ""}`
        : `${row.asset} · ${keyOf(row, index)} · ${label}`;
    }
    tip.textContent = text;
    tip.style.display = "block";
    const box = wrap.getBoundingClientRect();
    // Right of the pointer, or left of it near the right edge, so it never spills out of the output.
    const left = e.clientX - box.left + 14;
    tip.style.left = `${Math.max(0, left + tip.offsetWidth > box.width ? left - tip.offsetWidth - 28 : left)}px`;
    tip.style.top = `${e.clientY - box.top + 16}px`;
  });
  body.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  // Press and release on one spot selects a cell; a drag across the time rows zooms to the days it spans.
  const band = el("div", "position:absolute;display:none;pointer-events:none;background:rgba(21,101,192,.15);" +
    "border:1px solid #1565c0");
  band.className = "nbo-partitions-band";
  wrap.appendChild(band);
  let press = null;
  body.addEventListener("mousedown", (e) => {
    if (e.button === 0) press = { x: e.clientX, y: e.clientY };
  });
  body.addEventListener("mousemove", (e) => {
    if (!press || !view.axis || Math.abs(e.clientX - press.x) < 6) { band.style.display = "none"; return; }
    const box = wrap.getBoundingClientRect(), canvas = body.getBoundingClientRect();
    band.style.display = "block";
    band.style.left = `${Math.min(press.x, e.clientX) - box.left}px`;
    band.style.width = `${Math.abs(e.clientX - press.x)}px`;
    band.style.top = `${canvas.top - box.top}px`;
    band.style.height = `${geo.timedCount * geo.rowH}px`;
  });
  function onUp(e) {
    if (!press) return;
    const start = press;
    press = null;
    band.style.display = "none";
    const r = body.getBoundingClientRect();
    if (Math.abs(e.clientX - start.x) >= 6) {
      if (!view.axis) return;
      const day = (cx) => geo.d0 + (Math.min(Math.max(cx - r.left, geo.x0), geo.x0 + geo.plotW) - geo.x0) / geo.pxPerDay;
      const a = Math.floor(day(Math.min(start.x, e.clientX))), b = Math.ceil(day(Math.max(start.x, e.clientX)));
      setZoom({ d0: Math.max(0, a), d1: Math.min(view.axis.days, Math.max(b, a + 2)) });
      return;
    }
    if (e.target !== body) return;
    const hit = cellAt(e.clientX - r.left, e.clientY - r.top);
    if (!hit || hit.index < 0 || hit.row.kind === "invalid") return;
    model.send({ type: "select", asset: hit.row.asset, index: hit.index, key: keyOf(hit.row, hit.index),
                 sent_at: Date.now() });
  }
  window.addEventListener("mouseup", onUp);  // a drag may end outside the canvas
  body.addEventListener("dblclick", () => setZoom(null));

  function setZoom(z) {
    zoom = z && view.axis && (z.d0 > 0 || z.d1 < view.axis.days) ? z : null;
    body.dataset.zoom = zoom ? `${zoom.d0}..${zoom.d1}` : "";
    drawLegend();
    layout();
    draw();
  }

  model.on("msg:custom", (msg) => {
    if (msg.type !== "patch") return;
    for (const p of msg.rows) {
      const i = rows.findIndex((r) => r.asset === p.asset);
      if (i < 0) continue;
      if (p.full) {
        rows[i] = p.full;
        codes.set(p.asset, expand(p.full));
      } else {
        const c = codes.get(p.asset);
        for (const [code, a, b] of p.ranges) c.fill(code, a, b);
        Object.assign(rows[i], { counts: p.counts, counts_text: p.counts_text, status: p.status });
      }
    }
    if (msg.rows.some((p) => p.full)) { layout(); draw(); }
    else for (const p of msg.rows) { const r = rows.find((x) => x.asset === p.asset); if (r) drawRow(r); }
    drawLegend();
    body.dataset.patches = String(Number(body.dataset.patches || 0) + 1);
    body.dataset.lastPatch = JSON.stringify({ seq: msg.seq, sent_at: msg.sent_at, applied_at: Date.now() });
  });
  model.on("change:view", load);
  let previous = model.get("selected") || {};
  model.on("change:selected", () => {
    const now = model.get("selected") || {};
    for (const name of new Set([previous.asset, now.asset])) {
      const r = rows.find((x) => x.asset === name);
      if (r) drawRow(r);
    }
    previous = now;
    showSelected();
  });

  // Test and benchmark hook: where a partition's cell is drawn, in CSS px of the body canvas.
  body._nboHeatmap = {
    cellBox(asset, index) {
      const r = rows.find((x) => x.asset === asset);
      if (!r) return null;
      const xa = xOf(r, index), xb = xOf(r, index + 1);
      return { x: xa, y: geo.top.get(asset), w: xb - xa, h: geo.rowH };
    },
  };

  // Draw once JupyterLab has given the output a width, and again when that width changes.
  let loaded = false, lastWidth = 0;
  const observer = new ResizeObserver(() => {
    const w = scroller.clientWidth;
    if (w === 0 || w === lastWidth) return;
    lastWidth = w;
    if (!loaded) { loaded = true; load(); model.send({ type: "ready" }); }
    else { layout(); draw(); }
  });
  observer.observe(scroller);
  return () => { observer.disconnect(); window.removeEventListener("mouseup", onUp); };
}

export default { render };
