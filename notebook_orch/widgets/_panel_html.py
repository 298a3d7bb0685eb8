"""The side panel's text as HTML, from ``viewmodel.panel_view`` (pure: data in, markup out)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from notebook_orch.core.status import RunStatus
from notebook_orch.core.viewstates import COLOURS, LABELS, TEXT_COLOURS

Linker = Callable[[str], "str | None"]  # a project-relative path -> an href that opens it in JupyterLab, or None


def badge(status: str) -> str:
    colour = COLOURS.get(status, "#455a64")
    fg = TEXT_COLOURS.get(status, "#fff")
    return (f"<span class='nbo-badge nbo-{status.lower()}' style='background:{colour};color:{fg};"
            f"padding:1px 6px;border-radius:3px;font-size:11px'>{LABELS.get(status, status.lower())}</span>")


def _link(path: str | None, text: str, linker: Linker | None) -> str:
    if not path:
        return escape(text)
    href = linker(path) if linker else None
    return (f"<a href='{escape(href)}' target='_blank' style='color:#1565c0;text-decoration:underline'>"
            f"{escape(text)}</a>" if href else escape(text))


def heatmap(ranges: list[dict[str, Any]], total: int) -> str:
    """One strip: each run of equal status is one block as wide as its share (hover names the range)."""
    if total <= 1:
        return ""
    blocks = "".join(
        f"<div title='{escape(r['first'])}" + (f"..{escape(r['last'])}" if r["count"] > 1 else "")
        + f": {LABELS.get(r['status'], r['status'].lower())} ({r['count']})' style='flex:{r['count']} 0 0;background:"
        f"{COLOURS.get(r['status'], '#000')}'></div>"
        for r in ranges
    )
    return (f"<div class='nbo-heatmap' style='display:flex;height:14px;border:1px solid #b0bec5;margin:4px 0'>"
            f"{blocks}</div>")


def panel_html(panel: dict[str, Any], *, linker: Linker | None = None) -> str:
    out = [f"<div class='nbo-panel' style='font:13px sans-serif;line-height:1.4'>"
           f"<h3 style='margin:0 0 4px 0'>{escape(panel['asset'])} {badge(panel['status'])}</h3>"]
    if panel["partitioned"]:
        out.append(f"<div>{escape(panel['counts_text'])} <span style='color:#607d8b'>"
                   f"({escape(panel['partitions'])}, {panel['keys_total']} partitions)</span></div>")
        out.append(heatmap(panel["ranges"], panel["keys_total"]))
    out.extend(live_runs_html(panel.get("live_runs") or []))
    if panel.get("description"):
        out.append(f"<div style='color:#455a64'>{escape(panel['description'])}</div>")
    if panel["notebook"] and not panel.get("cell_href"):  # with a cell_href the panel shows cell_link_html apart
        where = f"{panel['notebook']}, cell {panel['cell']}"
        out.append(f"<div>Defined in {_cell_link(panel['notebook'], panel.get('cell_id'), where, linker)}</div>")
    if panel.get("problems"):
        items = "".join(f"<li>{escape(p)}</li>" for p in panel["problems"])
        out.append(f"<div style='margin-top:6px;color:#6a1b9a'><b>Not in the graph until fixed</b>"
                   f"<ul style='margin:2px 0;padding-left:18px'>{items}</ul></div>")
    if panel["reasons"]:
        out.append("<div style='margin-top:6px'><b>Why stale</b><ul style='margin:2px 0;padding-left:18px'>")
        for r in panel["reasons"]:
            where = f": {escape(r['partitions'])}" if panel["partitioned"] else ""
            out.append(f"<li>{escape(r['text'])}{where}</li>")
        out.append("</ul></div>")
    if panel["root_causes"]:
        roots = "; ".join(escape(r["text"]) for r in panel["root_causes"])
        out.append(f"<div><b>Root cause</b>: {roots}</div>")
    run = panel.get("last_run")
    if run and run["status"] == RunStatus.FAILED:
        cell = f" in cell {run['error_cell']}" if run.get("error_cell") else ""
        nb = _link(run["output_notebook"], "output notebook", linker) if run["output_notebook"] else ""
        out.append(f"<div style='color:#c62828;margin-top:6px'><b>Last run failed</b>{cell}: "
                   f"{escape(run['error'] or 'no error recorded')} {nb}</div>")
    mat = panel.get("last_materialization")
    if mat:
        out.append("<div style='margin-top:6px'><b>Last materialization</b>")
        facts = [f"partition {escape(mat['partition'])}" if panel["partitioned"] else None,
                 escape(mat["at"]),
                 f"{mat['rows']:,} rows" if mat["rows"] is not None else None,
                 f"{mat['duration_s']} s" if mat["duration_s"] is not None else None,
                 f"run {escape(mat['run_id'])}"]
        out.append("<div>" + " · ".join(f for f in facts if f) + "</div>")
        if mat["output_notebook"]:
            out.append(f"<div>{_link(mat['output_notebook'], 'output notebook of that run', linker)}</div>")
        if mat["columns"]:
            rows = "".join(
                f"<tr><td>{escape(c['name'])}</td><td>{escape(c['type'])}</td><td style='text-align:right'>"
                + ("" if c["null_rate"] is None else f"{c['null_rate']:.1%}") + "</td></tr>"
                for c in mat["columns"][:30]
            )
            more = f"<div>and {len(mat['columns']) - 30} more columns</div>" if len(mat["columns"]) > 30 else ""
            out.append("<table class='nbo-columns' style='font-size:12px;border-collapse:collapse;margin:4px 0'>"
                       "<style>.nbo-columns td,.nbo-columns th{padding:1px 10px 1px 0}</style>"
                       "<tr><th align=left>column</th><th align=left>type</th><th align=right>nulls</th></tr>"
                       f"{rows}</table>{more}")
        for c in mat["checks"]:
            mark = "&#10003;" if c["passed"] else "&#10007;"
            detail = f" — {escape(c['detail'])}" if c.get("detail") else ""
            out.append(f"<div>{mark} check <code>{escape(c['expr'])}</code>{detail}</div>")
        out.append("</div>")
    elif not panel["reasons"] and not panel.get("problems"):
        out.append("<div style='margin-top:6px;color:#607d8b'>Never materialized.</div>")
    if panel.get("preview"):
        out.append(preview_html(panel["preview"]))
    if panel.get("schedules") or panel.get("sla_record") or panel.get("automation"):
        out.append(schedules_html(panel.get("schedules") or [], panel.get("sla_record"), panel.get("automation")))
    elif panel.get("schedule") or panel.get("sla"):
        bits = [f"schedule <code>{escape(panel['schedule'])}</code>" if panel.get("schedule") else "",
                f"SLA {escape(panel['sla'])}" if panel.get("sla") else ""]
        out.append("<div>" + " · ".join(b for b in bits if b) + "</div>")
    out.append("</div>")
    return "".join(out)


def live_runs_html(runs: list[dict[str, Any]]) -> list[str]:
    """One line per run of this asset that waits for a pool slot (which pools, how many ahead, since when) or is
    presumed dead (silent since when)."""
    return [f"<div class='nbo-live nbo-live-{r['state'].lower()}' style='margin-top:4px'>{badge(r['state'])} "
            f"{escape(r['text'])}</div>" for r in runs]


def legend_html(view: dict[str, Any], totals: dict[str, int], *, hint: str | None = None) -> str:
    """The legend above the graph (the anywidget page builds the same one in JavaScript): each status with its
    colour and how many partitions have it; hover says what the status means."""
    items = []
    for item in view["legend"]:
        n = totals.get(item["status"])
        items.append(f"<span class='nbo-legend-item' data-status='{escape(item['status'])}' "
                     f"title='{escape(item['meaning'])}'><span style='display:inline-block;width:12px;height:12px;"
                     f"border-radius:2px;vertical-align:-2px;background:{item['colour']};margin-right:4px'></span>"
                     f"{escape(item['label'])}" + (f" <b>{n:,}</b>" if n else "") + "</span>")
    hint = hint or "click an asset for details and actions · click a notebook box to collapse it"
    return ("<div class='nbo-legend' style='display:flex;flex-wrap:wrap;gap:10px;align-items:center;"
            "font:12px sans-serif;padding:4px 2px;color:#263238'><span style='color:#607d8b'>partitions:</span>"
            + "".join(items)
            + f"<span style='color:#607d8b;margin-left:auto'>{escape(hint)}</span></div>")


def _cell_link(notebook: str, cell_id: str | None, text: str, linker: Linker | None) -> str:
    """A link that opens ``notebook`` in JupyterLab scrolled to the cell (JupyterLab 4's ``#cell-id=`` fragment)."""
    href = linker(notebook) if linker else None
    if not href:
        return escape(text)
    if cell_id:
        href += f"#cell-id={cell_id}"
    return (f"<a class='nbo-cell-link' href='{escape(href)}' target='_blank' "
            f"style='color:#1565c0;text-decoration:underline'>{escape(text)}</a>")


def preview_html(preview: dict[str, Any]) -> str:
    """The last value's first rows (or why there is no preview)."""
    head = "<div style='margin-top:6px'><b>Preview</b>"
    if preview["kind"] == "table":
        cols = "".join(f"<th align=left>{escape(c)}</th>" for c in preview["columns"])
        rows = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in preview["rows"])
        shown = len(preview["rows"])
        more = [f"first {shown} of {preview['total_rows']:,} rows" if preview["total_rows"] > shown else
                f"{shown} rows"]
        if preview["more_columns"]:
            more.append(f"{preview['more_columns']} more columns")
        return (f"{head} <span style='color:#607d8b'>({', '.join(more)})</span>"
                "<div style='overflow-x:auto'><table class='nbo-preview' style='font-size:12px;border-collapse:"
                "collapse;margin:2px 0'><style>.nbo-preview td,.nbo-preview th{padding:1px 8px 1px 0;"
                "border-bottom:1px solid #eceff1;white-space:nowrap}</style>"
                f"<tr>{cols}</tr>{rows}</table></div></div>")
    if preview["kind"] == "text":
        return (f"{head}<pre style='font-size:12px;white-space:pre-wrap;margin:2px 0'>{escape(preview['text'])}"
                "</pre></div>")
    return f"{head}: <span style='color:#607d8b'>{escape(preview['why'])}</span></div>"


def schedules_html(schedules: list[dict[str, Any]], sla: dict[str, Any] | None,
                   automation: dict[str, Any] | None = None) -> str:
    """Which schedules run this asset (cron, target, next and last tick), its automation and its SLA's record."""
    out = ["<div class='nbo-schedules' style='margin-top:6px'><b>Schedules and SLA</b>"
           "<ul style='margin:2px 0;padding-left:18px'>"]
    if automation:
        what = (f"--trigger <code>{escape(automation['trigger'])}</code>" if automation.get("trigger")
                else "--auto (runs when its inputs are ready)")
        state = (f"<b>paused</b> since {escape(automation['paused_since'])} UTC (nbo auto resume to turn it back on)"
                 if automation.get("paused_since") else "active")
        out.append(f"<li class='nbo-automation'>automation {what}: {state}</li>")
    for s in schedules:
        when = "paused" if s["paused"] else (f"next {escape(s['next'])}" if s.get("next") else "")
        last = s.get("last")
        last_text = (f"; last tick {escape(last['at'])} {escape(last['status'].lower())}"
                     + (f" [{escape(last['partition'])}]" if last.get("partition") else "")) if last else ""
        origin = " (declared on the asset)" if s["origin"] == "asset" else ""
        out.append(f"<li>{escape(s['name'])}{origin}: <code>{escape(s['cron'])}</code> {escape(s['timezone'])}, "
                   f"partition {escape(s['target'])}; {when}{last_text}</li>")
    if sla:
        record = (f"met {sla['met']}, missed {sla['missed']}" if sla["met"] or sla["missed"]
                  else "no deadline judged yet")
        last = sla.get("last_missed")
        missed = (f"; last missed {escape(last['partition'])} (due {escape(last['deadline'])} UTC, "
                  f"{escape(last['reason'].lower())})") if last else ""
        out.append(f"<li>SLA <code>{escape(sla['text'])}</code>: {record}{missed}</li>")
    out.append("</ul></div>")
    return "".join(out)


def cell_link_html(panel: dict[str, Any]) -> str:
    """``Defined in <notebook, cell N>`` as a link relative to the kernel's folder with a ``#cell-id=`` fragment.

    Shown as an output (not widget HTML) so JupyterLab's own link handling opens the notebook in the same window
    and scrolls to the cell; a ``/lab/tree/...#cell-id=`` address loses its fragment on the way (the tree route
    opens the file the server names, without the fragment).
    """
    where = f"{panel['notebook']}, cell {panel['cell']}"
    return (f"<div class='nbo-where' style='font:13px sans-serif'>Defined in <a class='nbo-cell-link' "
            f"href='{escape(panel['cell_href'])}' style='color:#1565c0;text-decoration:underline'>{escape(where)}"
            "</a></div>")
