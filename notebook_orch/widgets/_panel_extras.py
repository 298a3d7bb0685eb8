"""What the side panel reads for the one clicked asset, beyond the view-model: the cell's id (for a link that opens
the notebook at that cell), a preview of the last value's first rows, the asset's schedules, its automation (paused
or not) and its SLA.

Read on click for one asset only (never for the whole graph), each part cheap: the Parquet preview reads the first
record batch, not the file; a JSON value is read only when small; a pickle is never opened (unpickling runs code).
Each returns plain data, or None when there is nothing to show; a read that fails says why instead of raising, so
one unreadable file never blanks the panel.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 8
JSON_PREVIEW_BYTES = 256 * 1024
_CELL_IDS: dict[tuple[str, int], list[str | None]] = {}  # (path, mtime_ns) -> cell ids: a notebook is read once


def cell_id(notebook: Path, index: int) -> str | None:
    """The nbformat id of cell ``index`` (0-based) of ``notebook``; None for notebooks older than nbformat 4.5."""
    try:
        key = (str(notebook), notebook.stat().st_mtime_ns)
        if key not in _CELL_IDS:
            cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
            _CELL_IDS[key] = [c.get("id") for c in cells]
        ids = _CELL_IDS[key]
    except (OSError, ValueError):
        return None
    return ids[index] if 0 <= index < len(ids) else None


def cell_href(notebook: Path, cell: str | None, *, here: Path | None = None) -> str:
    """``notebook`` relative to ``here`` (the kernel's folder: JupyterLab starts a kernel in its notebook's folder
    and resolves an output's relative links from there), with ``#cell-id=`` when the cell has an id."""
    import os

    rel = Path(os.path.relpath(notebook.resolve(), (here or Path.cwd()).resolve())).as_posix()
    return rel + (f"#cell-id={cell}" if cell else "")


def _cell_text(value: Any, limit: int = 40) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def value_preview(path: str | None, *, rows: int = PREVIEW_ROWS) -> dict[str, Any] | None:
    """``{"kind": "table", "columns", "rows", "total_rows", "more_columns"}``, ``{"kind": "text", "text"}`` or
    ``{"kind": "none", "why"}`` for the value file at ``path``."""
    if not path:
        return None
    file = Path(path)
    if not file.exists():
        return {"kind": "none", "why": f"the value file is gone ({file.name})"}
    try:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(file)
            names = [n for n in pf.schema_arrow.names if not n.startswith("__index_level_")]
            shown = names[:PREVIEW_COLUMNS]
            batch = next(pf.iter_batches(batch_size=rows, columns=shown), None)
            data = batch.to_pylist() if batch is not None else []
            return {"kind": "table", "columns": shown, "total_rows": pf.metadata.num_rows,
                    "more_columns": len(names) - len(shown),
                    "rows": [[_cell_text(r.get(c)) for c in shown] for r in data[:rows]]}
        if file.suffix == ".json":
            if file.stat().st_size > JSON_PREVIEW_BYTES:
                return {"kind": "none", "why": f"a JSON value of {file.stat().st_size:,} bytes (not previewed)"}
            text = json.dumps(json.loads(file.read_text(encoding="utf-8")), default=str)
            return {"kind": "text", "text": text if len(text) <= 300 else text[:299] + "…"}
        return {"kind": "none", "why": f"a {file.suffix.lstrip('.') or 'binary'} value is not opened for a preview"}
    except Exception as exc:  # noqa: BLE001 - the panel shows why, and the rest of it
        return {"kind": "none", "why": f"could not read {file.name}: {exc}"}


def schedules_for(store: Any, graph: Any, asset: str, *, now: datetime) -> list[dict[str, Any]]:
    """The stored schedules whose selection includes ``asset`` and the one its ``--schedule`` declares (not yet
    stored when no daemon has run): name, cron, target rule, paused, next tick, last tick's status."""
    from notebook_orch.core.schedule import next_tick

    found: dict[str, Any] = {}
    try:
        stored = store.scheduling.list_schedules()
    except Exception:  # noqa: BLE001 - an older store without the scheduling tables
        stored = []
    for rec in stored:
        try:
            if asset in graph.select(rec.selection):
                found[rec.name] = rec
        except Exception:  # noqa: BLE001 - a schedule whose selection no longer resolves is not this asset's
            continue
    spec = graph.spec(asset)
    if spec.schedule and asset not in found:
        from notebook_orch.scheduler.declared import declared_schedules

        declared = declared_schedules(graph, now=now)
        if asset in declared:
            found[asset] = declared[asset]
    out = []
    for name, rec in sorted(found.items()):
        try:
            upcoming = next_tick(rec.cron, rec.timezone, now).strftime("%Y-%m-%d %H:%M %Z")
        except Exception:  # noqa: BLE001
            upcoming = None
        last = None
        try:
            ticks = store.scheduling.ticks(name, limit=1)
            if ticks:
                last = {"at": ticks[0].tick_at.strftime("%Y-%m-%d %H:%M"), "status": ticks[0].status,
                        "partition": ticks[0].partition}
        except Exception:  # noqa: BLE001
            last = None
        out.append({"name": name, "cron": rec.cron, "target": rec.partition_rule, "timezone": rec.timezone,
                    "paused": rec.paused, "origin": rec.origin, "next": None if rec.paused else upcoming,
                    "last": last})
    return out


def automation_for(store: Any, graph: Any, asset: str) -> dict[str, Any] | None:
    """The asset's automation (``--auto`` / ``--trigger``) and whether ``nbo auto pause`` holds it; None if it has
    none."""
    spec = graph.spec(asset)
    if not spec.auto and not spec.trigger:
        return None
    out: dict[str, Any] = {"trigger": spec.trigger, "paused_since": None}
    try:
        pause = store.scheduling.auto_pauses().get(asset)
    except Exception:  # noqa: BLE001 - a store without the pause table: not paused
        pause = None
    if pause is not None and pause.paused:
        out["paused_since"] = pause.changed_at.strftime("%Y-%m-%d %H:%M")
    return out


def sla_for(store: Any, graph: Any, asset: str) -> dict[str, Any] | None:
    """The asset's ``--sla`` and its record so far: verdicts met and missed, the latest missed partition."""
    spec = graph.spec(asset)
    if spec.sla is None:
        return None
    out: dict[str, Any] = {"text": str(spec.sla), "met": 0, "missed": 0, "last_missed": None}
    try:
        met, missed = store.sla.miss_counts().get(asset, (0, 0))
        out["met"], out["missed"] = met, missed
        if missed:
            last = store.sla.verdicts(asset=asset, verdict="MISSED", limit=1)
            if last:
                v = last[0]
                out["last_missed"] = {"partition": v.partition, "deadline": v.deadline.strftime("%Y-%m-%d %H:%M"),
                                      "reason": v.reason}
    except Exception:  # noqa: BLE001 - a store without the SLA tables: the declaration alone
        pass
    return out
