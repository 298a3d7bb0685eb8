"""``LineageGraph(project)``: the lineage graph of every asset, live, with a side panel to act on one.

A thin adapter: the pure view-model (``core.viewmodel``) says what to draw, ``_cytoscape.CytoscapeGraph`` draws it,
``_panel.AssetPanel`` shows one asset, and every action is a ``Project.submit`` call. A daemon thread follows the
store's event log and patches only the nodes whose status changed, so the kernel stays free.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as w

from notebook_orch.core import viewmodel as vm
from notebook_orch.core.status import Status
from notebook_orch.store.records import PARTITION_STATE_EVENTS
from notebook_orch.widgets import _actions, _follow, _panel_extras
from notebook_orch.widgets._cytoscape import CytoscapeGraph
from notebook_orch.widgets._live import LiveRuns, read_live_runs
from notebook_orch.widgets._panel import AssetPanel
from notebook_orch.widgets._paths import lab_link, running_servers
from notebook_orch.widgets._sizes import GROUPS_LIMIT, IPYCYTOSCAPE_LIMIT


class LineageGraph(w.HBox):
    """The project's lineage graph, coloured by status and kept live; click an asset for details and actions.

    >>> LineageGraph(Project("path/to/project"))            # every asset
    >>> LineageGraph(project, "+daily_report")              # a selection, as on the command line
    """

    def __init__(self, project: Any = None, selection: str | None = None, *, live: bool = True,
                 interval_s: float = 0.25, height: str | None = None, groups: bool | None = None,
                 adapter: str | None = None) -> None:
        if project is None:
            from notebook_orch.project import Project

            project = Project()
        t0, self.started_at = time.perf_counter(), time.time()  # wall clock: benchmarks line it up with the page
        self.project = project
        self.selection = selection
        self._lock = threading.RLock()
        self.timings: dict[str, float] = {}  # seconds of the last panel build etc., for benchmarks and tests
        self.graph = project.graph
        self._stamp = _notebooks_stamp(project.config.notebooks)
        self._stamp_checked = time.monotonic()
        self._needs_discover = False
        self.timings["graph_s"] = time.perf_counter() - t0
        report = project.status()
        self._live: LiveRuns = read_live_runs(project)  # runs waiting for a pool slot or presumed dead
        self._live_checked = time.monotonic()
        self.timings["status_s"] = time.perf_counter() - t0 - self.timings["graph_s"]
        view = self._view(self.graph, report)
        # Notebook boxes help a person read a few dozen assets; past that they are clutter and cost draw time.
        boxes = len(view["nodes"]) <= GROUPS_LIMIT if groups is None else groups
        self.adapter = choose_adapter(len(view["nodes"]), adapter)
        if self.adapter == "ipycytoscape":
            from notebook_orch.widgets._ipycytoscape import IpyCytoscapeGraph

            self.canvas: Any = IpyCytoscapeGraph(view, height=height or _height(view), groups=boxes)
        else:
            self.canvas = CytoscapeGraph(view, height=height or _height(view), groups=boxes)
        self.canvas.layout = w.Layout(flex="1 1 auto", min_width="400px")
        self.panel = AssetPanel(self)
        self.handle: Any = None
        self._servers: list[dict[str, Any]] | None = None
        self._handle_note = ""
        super().__init__([self.canvas, self.panel.box], layout=w.Layout(width="100%"))
        self.canvas.on_click(self.show)
        self.canvas.on_ready(self._resend_all)
        self._follower = _follow.make_follower(project.store, after=self.report.event_id)
        self._loop = _follow.LiveLoop(self.refresh, interval_s=interval_s, wait=self._wait_for_events)
        if live:
            self._loop.start()
        self.timings["build_s"] = time.perf_counter() - t0

    def _view(self, graph: Any, report: Any) -> dict[str, Any]:
        """Take ``graph`` and ``report`` as the widget's own and return the whole view-model for them."""
        broken = getattr(graph, "invalid", {})  # assets left out of the graph: shown as INVALID, never hidden
        chosen = (graph.select(self.selection, include_invalid=True) if self.selection
                  else [*graph.order, *sorted(broken)])
        names = [n for n in chosen if n not in broken]
        view = vm.graph_view(graph, report, names=names, invalid=[broken[n] for n in chosen if n in broken],
                             states=self._live.states)
        with self._lock:
            self.graph, self.report = graph, report
            self._names, self._shown = names, set(names)
            self._last = {n["id"]: {k: n[k] for k in ("status", "classes", "counts", "counts_text", "bar")}
                          for n in view["nodes"]}
        return view

    def reload(self) -> None:
        """Read the notebooks again (a declaration or a cell changed) and redraw the whole graph."""
        graph, report = _follow.read_fresh(self.project)
        self._needs_discover = True  # the buttons' Project must see the new declarations before it plans
        self.canvas.graph = self._view(graph, report)
        asset = self.panel.asset
        if asset is not None and (asset in self._shown or asset in getattr(graph, "invalid", {})):
            self.panel.show(self.panel_view(asset), linker=self._link, keep_inputs=True)

    # -- reading ---------------------------------------------------------------------------------------------
    def panel_view(self, asset: str) -> dict[str, Any]:
        """The panel's content for ``asset`` (the view-model plus the store records it names)."""
        bad = getattr(self.graph, "invalid", {}).get(asset)
        if bad is not None:
            return vm.invalid_panel_view(bad)
        store = self.project.store
        with self._lock:
            last = self.report.last_materialized(asset)
        mat = store.latest_materialization(asset, last[0]) if last else None
        mat_run = store.get_run(mat.run_id) if mat is not None else None
        runs = store.list_runs(limit=1, asset=asset)
        with self._lock:
            graph = self.graph
            live = self._live
            view = vm.panel_view(graph, self.report, asset, materialization=mat,
                                 materialization_run=mat_run, last_run=runs[0] if runs else None,
                                 states=live.states.get(asset), live_runs=live.panel_runs(asset))
        # Read for this one asset only, on click: the cell's id for the link, the value's first rows, schedules, SLA.
        root = Path(self.project.config.root)
        spec = graph.spec(asset)
        if spec.notebook and spec.cell_index is not None:
            view["cell_id"] = _panel_extras.cell_id(root / spec.notebook, spec.cell_index)
            view["cell_href"] = _panel_extras.cell_href(root / spec.notebook, view["cell_id"])
        if mat is not None and mat.storage_path:
            value = Path(mat.storage_path)
            view["preview"] = _panel_extras.value_preview(str(value if value.is_absolute() else root / value))
        view["schedules"] = _panel_extras.schedules_for(store, graph, asset, now=datetime.now(timezone.utc))
        view["sla_record"] = _panel_extras.sla_for(store, graph, asset)
        view["automation"] = _panel_extras.automation_for(store, graph, asset)
        return view

    def show(self, asset: str, *, select: bool = False) -> None:
        """Open the panel on ``asset`` (what a click on its node does)."""
        t0 = time.perf_counter()
        view = self.panel_view(asset)
        self.panel.show(view, linker=self._link)
        self.timings["panel_s"] = time.perf_counter() - t0
        if select:
            self.canvas.select(asset)
        else:
            self.canvas.shown(asset)
        self.update_dry_run()

    def select_partition(self, asset: str, partition: str) -> None:
        """Open the panel on ``asset`` with ``partition`` in its Partition field, so Materialize runs that one
        partition (what a click on a heatmap cell does: ``%nbo partitions`` calls this on the graph it is given)."""
        self.show(asset, select=True)
        if self.panel.view is not None and self.panel.view["partitioned"]:
            self.panel.partition.value = partition

    def _link(self, path: str) -> str | None:
        if self._servers is None:
            self._servers = running_servers()
        return lab_link(self.project.config.root, path, self._servers)

    # -- acting ----------------------------------------------------------------------------------------------
    def request(self, action: str) -> tuple[str, dict[str, Any]]:
        """The ``Project.submit`` arguments a button stands for, from the panel's current inputs."""
        from notebook_orch.core.planning import PartitionSelection

        asset = self.panel.asset
        if asset is None:
            raise ValueError("No asset is selected; click a node first.")
        graph = self.graph
        key = self.panel.partition.value.strip()
        if action in ("materialize", "downstream"):
            if key:
                return asset, {"partitions": PartitionSelection(keys=(key,)), "downstream": action == "downstream"}
            not_fresh = self.panel.view is not None and self.panel.view["status"] != Status.FRESH
            return asset, {"downstream": action == "downstream", "only_stale": not_fresh}
        if action == "stale_upstream":
            ups = graph.sorted(graph.ancestors([asset]))
            if not ups:
                raise ValueError(f"Asset {asset!r} has no upstream assets.")
            return ",".join(ups), {"only_stale": True}
        if action == "backfill":
            start, end = self.panel.start.value.strip() or None, self.panel.end.value.strip() or None
            return asset, {"partitions": PartitionSelection(start=start, end=end),
                           "only_stale": self.panel.only_stale.value}
        raise ValueError(f"Unknown action {action!r}.")

    def act(self, action: str) -> Any:
        """Press a button: submit the run in the background and report in the panel. Returns the handle."""
        try:
            if self._needs_discover:
                self.project.discover()
                self._needs_discover = False
            selection, options = self.request(action)
            handle = _actions.submit(self.project, selection, kind="manual", **options)
        except Exception as exc:  # noqa: BLE001 - shown to the person who pressed the button
            self.panel.say(f"<span style='color:#c62828'>{escape(str(exc))}</span>")
            return None
        self.handle = handle
        plan = getattr(handle, "plan", None)
        n = len(plan.runs) if plan is not None else "?"
        parts = len(plan.targets) if plan is not None else "?"
        self._handle_note = f"{action.replace('_', ' ')} {escape(selection)}: {n} run(s), {parts} partition(s)"
        self.panel.cancel.disabled = False
        self.panel.say(f"Started {self._handle_note}.")
        return handle

    def cancel(self) -> None:
        if self.handle is None:
            return
        try:
            self.handle.cancel()
        except Exception as exc:  # noqa: BLE001
            self.panel.say(f"<span style='color:#c62828'>{escape(str(exc))}</span>")
            return
        self.panel.say(f"Canceling {self._handle_note}…")

    def update_dry_run(self) -> None:
        """Say how many runs the Backfill button would start, before it starts them."""
        if self.panel.asset is None or not self.panel.view or not self.panel.view["partitioned"]:
            self.panel.dry_run.value = ""
            return
        from notebook_orch.core.planning import plan_materialization

        try:
            selection, options = self.request("backfill")
            graph = self.graph
            with self._lock:  # the widget's live report: Project.plan would resolve every status again (~1 s)
                plan = plan_materialization(graph, self.report, selection=graph.select(selection), **options)
            text = (f"Would start {len(plan.runs)} run(s) for {len(plan.targets)} partition(s)"
                    + (f", skipping {len(plan.skipped)}" if plan.skipped else "") + ".")
        except Exception as exc:  # noqa: BLE001 - a bad key is shown next to the fields
            # The first problem and how many more (all of them on hover): a wall of red text above the buttons
            # pushed them out of sight on a deep graph.
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            short = " ".join(lines[:2]) + (f" (and {len(lines) - 2} more)" if len(lines) > 2 else "")
            text = f"<span style='color:#c62828' title='{escape(str(exc))}'>{escape(short)}</span>"
        self.panel.dry_run.value = f"<div style='font:12px sans-serif;color:#455a64'>{text}</div>"

    # -- live ------------------------------------------------------------------------------------------------
    def refresh(self) -> dict[str, dict[str, Any]]:
        """Fold new store events into the report and patch the nodes that changed (the live thread calls this)."""
        if time.monotonic() - self._stamp_checked > 1.0:
            self._stamp_checked = time.monotonic()
            stamp = _notebooks_stamp(self.project.config.notebooks)
            if stamp != self._stamp:
                self._stamp = stamp
                self.reload()
        events = self._follower.poll()
        self._report_handle()
        # A run that waits, starts or goes silent changes no partition state: the live states are read again on
        # any event, and every couple of seconds without one (a heartbeat that stops appends nothing).
        recheck = time.monotonic() - self._live_checked > LIVE_RECHECK_S
        if not events and not recheck:
            return {}
        touched = {(e.asset, e.partition) for e in events
                   if e.kind in PARTITION_STATE_EVENTS and e.asset and e.partition}
        snap = self.project.store.snapshot(keys=sorted(touched)) if events else None
        live = read_live_runs(self.project, running=snap.running if snap is not None else None)
        self._live_checked = time.monotonic()
        with self._lock:
            changed = (self.report.apply(snap.assets, running=snap.running, event_id=events[-1].id)
                       if snap is not None else set())
            before, self._live = self._live.states, live
            moved = {a for a in before.keys() | live.states.keys() if before.get(a) != live.states.get(a)}
            names = ({a for a, _ in changed} | moved) & self._shown
            patches = vm.changed_nodes(self._last, self.graph, self.report, self.graph.sorted(names), live.states)
            self._last.update(patches)
        self.canvas.patch(patches)
        ups = {u["name"] for u in (self.panel.view or {}).get("upstream", [])}
        if self.panel.asset is not None and (self.panel.asset in names or ups & names or
                                             self.panel.asset in live.states):
            self.panel.show(self.panel_view(self.panel.asset), linker=self._link, keep_inputs=True)
        return patches

    def _wait_for_events(self, timeout: float) -> None:
        _follow.wait_for_events(self.project.store, self._follower, timeout)

    def _report_handle(self) -> None:
        handle = self.handle
        if handle is None:
            return
        if not handle.done():
            snap = handle.progress()
            if snap is not None:
                eta = f", about {snap.eta_s:.0f} s left" if snap.eta_s is not None else ""
                self.panel.say(f"Running {self._handle_note}: {snap.done}/{snap.total} done, {snap.failed} failed"
                               f"{eta}.")
            return
        self.handle = None
        self.panel.cancel.disabled = True
        try:
            result = handle.wait(0)
        except Exception as exc:  # noqa: BLE001
            self.panel.say(f"<span style='color:#c62828'>Failed: {escape(str(exc))}</span>")
            return
        bad = [o for o in getattr(result, "outcomes", ()) if o.status not in ("SUCCESS", "SKIPPED")]
        summary = escape(result.summary()) if hasattr(result, "summary") else "done"
        if bad:
            lines = "".join(
                f"<li>{escape(o.notebook)} [{escape(o.partition)}] {o.status.lower()}"
                + (f" in cell {o.error_cell + 1}" if o.error_cell is not None else "")
                + (f": {escape(o.error)}" if o.error else "")
                + (f" — {self._link_html(o.output_path, 'output notebook')}" if o.output_path else "") + "</li>"
                for o in bad[:5])
            self.panel.say(f"<span style='color:#c62828'>{summary}</span><ul style='margin:2px 0'>{lines}</ul>")
        else:
            self.panel.say(f"Done: {self._handle_note} — {summary} (at {time.strftime('%H:%M:%S')}).")

    def _link_html(self, path: str, text: str) -> str:
        href = self._link(path)
        return (f"<a href='{escape(href)}' target='_blank' style='color:#1565c0'>{escape(text)}</a>" if href
                else f"{escape(text)} {escape(path)}")

    def _resend_all(self) -> None:
        with self._lock:
            self.canvas.patch(dict(self._last))

    def stop(self) -> None:
        """Stop following the event log (closing the widget does this too)."""
        loop = getattr(self, "_loop", None)  # absent when __init__ raised (ipywidgets' __del__ still closes)
        if loop is not None:
            loop.stop()

    def close(self) -> None:
        self.stop()
        super().close()


ADAPTERS = ("ipycytoscape", "anywidget")
LIVE_RECHECK_S = 2.0  # how often, without events, waiting/presumed-dead runs are read again


def choose_adapter(n_assets: int, wanted: str | None = None) -> str:
    """``ipycytoscape`` up to ``IPYCYTOSCAPE_LIMIT`` assets (one widget per node and edge: ~4 comms an asset),
    ``anywidget`` (the whole graph as one JSON trait) above; ``wanted`` forces one."""
    if wanted is not None:
        if wanted not in ADAPTERS:
            raise ValueError(f"Unknown graph adapter {wanted!r}; choose one of {', '.join(ADAPTERS)} (or None to "
                             f"choose by size).")
        return wanted
    return "ipycytoscape" if n_assets <= IPYCYTOSCAPE_LIMIT else "anywidget"


def _height(view: dict[str, Any]) -> str:
    """Tall enough for the widest layer at a readable zoom, within what fits on a laptop screen."""
    per_layer: dict[float, int] = {}
    for node in view["nodes"]:
        per_layer[node["x"]] = per_layer.get(node["x"], 0) + 1
    widest = max(per_layer.values(), default=1)
    return f"{min(640, max(280, 140 + 80 * widest))}px"


def _notebooks_stamp(folder: Any) -> tuple:
    """Each notebook's path and modification time: a few stat calls tell whether a declaration may have changed."""
    if not folder.is_dir():
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*.ipynb")
                        if ".ipynb_checkpoints" not in p.parts))
