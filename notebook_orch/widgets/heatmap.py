"""``PartitionHeatmap(project, selection)``: assets x partitions coloured by status, live, on one canvas.

A thin adapter over the pure view-model (``core.heatmap``): the whole picture is one JSON trait of run-length
ranges and counts (never a list of every key); the page draws it on a canvas (one rectangle per run, not one DOM
node per cell). A daemon thread follows the store's event log and sends only the cells that changed. A click on
a cell selects that (asset, partition): the ``selected`` trait changes and ``on_select`` callbacks run, which is
how the lineage graph's panel (or any code) follows the heatmap::

    heat = PartitionHeatmap(project, "+daily_report")
    heat.on_select(lambda asset, partition: print(asset, partition))
    heat.link(graph)          # a click opens the graph's panel on that asset with the partition filled in
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from notebook_orch.core import heatmap as hm
from notebook_orch.core.partitions import UNPARTITIONED_KEY
from notebook_orch.core.viewstates import view_codes
from notebook_orch.store.records import PARTITION_STATE_EVENTS
from notebook_orch.widgets import _follow
from notebook_orch.widgets._live import read_live_runs

_ESM = Path(__file__).parent / "static" / "heatmap.js"

SelectCallback = Callable[[str, str], None]
LIVE_RECHECK_S = 2.0  # how often, without events, waiting/presumed-dead runs are read again


class PartitionHeatmap(anywidget.AnyWidget):
    """The partition heatmap of every asset (or of ``selection``, as on the command line), kept live.

    >>> PartitionHeatmap(Project("path/to/project"))
    >>> PartitionHeatmap(project, "+daily_report").on_select(lambda asset, key: ...)
    """

    _esm = _ESM
    view = traitlets.Dict().tag(sync=True)
    # {"asset", "partition", "index", "status", "detail"} of the selected cell; {} when none is.
    selected = traitlets.Dict().tag(sync=True)

    def __init__(self, project: Any = None, selection: str | None = None, *, live: bool = True,
                 interval_s: float = 0.25) -> None:
        if project is None:
            from notebook_orch.project import Project

            project = Project()
        t0 = time.perf_counter()
        self.project = project
        self.selection = selection
        self._lock = threading.RLock()
        self._callbacks: list[SelectCallback] = []
        self._seq = 0
        self._dirty: set[str] = set()  # rows patched since ``view`` was set: resent when a page (re)draws
        self.timings: dict[str, float] = {}
        self._stamp = _notebooks_stamp(project.config.notebooks)
        self._stamp_checked = time.monotonic()
        # asset -> partition -> WAITING / PRESUMED_DEAD: live runs the report shows as running (viewstates)
        self._states: dict[str, dict[str, str]] = read_live_runs(project).states
        self._live_checked = time.monotonic()
        view = self._build(project.graph, project.status())
        super().__init__(view=view)
        self.on_msg(self._on_front_end)
        self._follower = _follow.make_follower(project.store, after=self.report.event_id)
        self._loop = _follow.LiveLoop(self.refresh, interval_s=interval_s, wait=self._wait_for_events)
        if live:
            self._loop.start()
        self.timings["build_s"] = time.perf_counter() - t0

    def _build(self, graph: Any, report: Any) -> dict[str, Any]:
        """Take ``graph`` and ``report`` as the widget's own and return the view-model for them."""
        broken = getattr(graph, "invalid", {})  # broken declarations are shown as INVALID rows, never hidden
        chosen = (graph.select(self.selection, include_invalid=True) if self.selection
                  else [*graph.order, *sorted(broken)])
        names = [n for n in chosen if n not in broken]
        states = self._states
        view = hm.heatmap_view(graph, report, names=names, invalid=[broken[n] for n in chosen if n in broken],
                               states=states)
        with self._lock:
            self.graph, self.report = graph, report
            self._codes = {n: view_codes(report, n, states.get(n)).copy() for n in names}
            self._dirty = set()
        return view

    # -- selecting -------------------------------------------------------------------------------------------
    def on_select(self, callback: SelectCallback) -> SelectCallback:
        """Call ``callback(asset, partition)`` each time a cell is selected (a click, or ``select``). Returns it,
        so it can decorate a function."""
        self._callbacks.append(callback)
        return callback

    def select(self, asset: str, partition: str) -> dict[str, Any]:
        """Select ``asset[partition]`` (what a click on its cell does): sets ``selected`` and runs the callbacks.

        A name or key that is not in the heatmap raises a ``ValueError`` naming it, and selects nothing.
        """
        with self._lock:
            if asset not in self._codes:
                raise ValueError(f"Asset {asset!r} is not in this heatmap; it shows "
                                 f"{', '.join(list(self._codes)[:8])}{' ...' if len(self._codes) > 8 else ''}.")
            status = self.report.status(asset, partition)  # raises the precise error for a bad key
            index = self.report.keys(asset).index(partition)
            state = self._states.get(asset, {}).get(partition)
            detail = hm.partition_detail(self.report.explain(asset, partition), state)
            if state and status == "RUNNING":
                status = state
        self.selected = {"asset": asset, "partition": partition, "index": index, "status": str(status),
                         "detail": detail}
        for callback in list(self._callbacks):
            callback(asset, partition)
        return self.selected

    def link(self, graph: Any) -> None:
        """Make a click on a cell open ``graph``'s panel (a ``LineageGraph``) on that asset, partition filled in.

        ``%nbo partitions`` and ``%nbo graph`` link every heatmap and graph they made in one kernel. A graph that
        was closed is left alone; the graph is held weakly.
        """
        ref = weakref.ref(graph)

        def follow(asset: str, partition: str) -> None:
            graph = ref()
            if graph is None or getattr(graph, "comm", None) is None:  # gone or closed
                return
            graph.show(asset, select=True)
            field = getattr(getattr(graph, "panel", None), "partition", None)
            if field is not None and partition != UNPARTITIONED_KEY:  # the panel hides the field then
                field.value = partition

        self.on_select(follow)

    def _on_front_end(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "select":
            asset, index = content.get("asset"), content.get("index")
            with self._lock:
                keys = self.report.keys(asset) if asset in self._codes else ()
            if isinstance(index, int) and 0 <= index < len(keys):
                self.select(asset, keys[index])  # the kernel's key, not the page's arithmetic
                self.timings["click_sent_at_ms"] = float(content.get("sent_at") or 0)
        elif kind == "ready":
            self._resend_dirty()

    # -- live ------------------------------------------------------------------------------------------------
    def refresh(self) -> list[dict[str, Any]]:
        """Fold new store events into the report and send the cells that changed (the live thread calls this)."""
        if time.monotonic() - self._stamp_checked > 1.0:
            self._stamp_checked = time.monotonic()
            stamp = _notebooks_stamp(self.project.config.notebooks)
            if stamp != self._stamp or self._windows_ended():
                self._stamp = stamp
                self.reload()
        events = self._follower.poll()
        # Waiting, starting or going silent changes no partition state: read the live states on any event and
        # every couple of seconds without one.
        if not events and time.monotonic() - self._live_checked <= LIVE_RECHECK_S:
            return []
        touched = {(e.asset, e.partition) for e in events
                   if e.kind in PARTITION_STATE_EVENTS and e.asset and e.partition}
        snap = self.project.store.snapshot(keys=sorted(touched)) if events else None
        states = read_live_runs(self.project, running=snap.running if snap is not None else None).states
        self._live_checked = time.monotonic()
        patches = []
        with self._lock:
            changed = (self.report.apply(snap.assets, running=snap.running, event_id=events[-1].id)
                       if snap is not None else set())
            before, self._states = self._states, states
            moved = {a for a in before.keys() | states.keys() if before.get(a) != states.get(a)}
            for name in self.graph.sorted(({a for a, _ in changed} | moved) & self._codes.keys()):
                patch = hm.row_patch(self.graph, self.report, name, self._codes[name], states.get(name))
                if patch is not None:
                    patches.append(patch)
                    self._codes[name] = view_codes(self.report, name, states.get(name)).copy()
                    self._dirty.add(name)
        self._send_rows(patches)
        return patches

    def _windows_ended(self) -> bool:
        """An open-ended time-partitioned asset has a new partition now (its window ended: e.g. at midnight)."""
        from notebook_orch.project import utcnow

        now = utcnow()
        with self._lock:
            for name, codes in self._codes.items():
                pdef = self.graph.spec(name).partitions
                if getattr(pdef, "end", 0) is None and pdef.count(now=now) != len(codes):
                    return True
        return False

    def reload(self) -> None:
        """Read the notebooks again (a declaration or a cell changed) and redraw the whole heatmap."""
        graph, report = _follow.read_fresh(self.project)
        self.view = self._build(graph, report)

    def _send_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self._seq += 1
        self.send({"type": "patch", "seq": self._seq, "sent_at": time.time() * 1000, "rows": rows})

    def _resend_dirty(self) -> None:
        with self._lock:
            rows = [{"asset": n, "full": hm.row_view(self.graph, self.report, n, self._states.get(n))}
                    for n in self.graph.sorted(self._dirty)]
        self._send_rows(rows)

    def _wait_for_events(self, timeout: float) -> None:
        _follow.wait_for_events(self.project.store, self._follower, timeout)

    def stop(self) -> None:
        """Stop following the event log (closing the widget does this too)."""
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.stop()

    def close(self) -> None:
        self.stop()
        super().close()


def _notebooks_stamp(folder: Any) -> tuple:
    """Each notebook's path and modification time: a few stat calls tell whether a declaration may have changed."""
    if not folder.is_dir():
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*.ipynb")
                        if ".ipynb_checkpoints" not in p.parts))
