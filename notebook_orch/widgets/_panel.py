"""The side panel (ipywidgets): what the clicked asset is, why it is stale, what happened last, and the buttons.

Each button builds one ``Project.submit`` call (see ``_actions``); the run goes to the background and the panel
shows its progress, then its outcome (failures with their error and output notebook).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from notebook_orch.core.status import Status
from notebook_orch.widgets._panel_html import cell_link_html, panel_html

if TYPE_CHECKING:
    from notebook_orch.widgets.lineage_graph import LineageGraph


NEIGHBOURS = 16  # upstream and downstream buttons at most: the first 8 of each side


def _button(text: str, tooltip: str, style: str = "") -> w.Button:
    return w.Button(description=text, tooltip=tooltip, button_style=style, layout=w.Layout(width="auto"))


class AssetPanel:
    def __init__(self, owner: LineageGraph) -> None:
        self.owner = owner
        self.asset: str | None = None
        self.view: dict[str, Any] | None = None
        self.info = w.HTML("<div style='color:#607d8b;font:13px sans-serif'>Click an asset in the graph to see why "
                           "it has its colour, what its last run produced, and to materialize it.</div>")
        self.partition = w.Text(description="Partition", placeholder="empty: every partition not fresh",
                                layout=w.Layout(width="98%"))
        self.materialize = _button("Materialize", "Run this asset for the partition above (empty: every partition "
                                   "that is not fresh)", "primary")
        self.downstream = _button("Materialize with downstream", "This asset and everything that reads it")
        self.stale_upstream = _button("Materialize stale upstream", "Upstream assets' partitions that are not fresh")
        self.start = w.Text(description="From", layout=w.Layout(width="49%"))
        self.end = w.Text(description="To", layout=w.Layout(width="49%"))
        self.only_stale = w.Checkbox(True, description="only missing, failed or stale", indent=False)
        self.dry_run = w.HTML()
        self.backfill = _button("Backfill range", "Materialize every partition from From to To")
        self.cancel = _button("Cancel", "Cancel the run this panel started", "danger")
        self.cancel.disabled = True
        self.progress = w.HTML()
        # A fixed pool of neighbour buttons, relabelled on each click: creating buttons per click opened ~3 widget
        # comms each and kept a 1,000-node page busy after every click.
        self._neighbour_names: list[str | None] = [None] * NEIGHBOURS
        self._neighbour_buttons = [_button("", "") for _ in range(NEIGHBOURS)]
        for i, b in enumerate(self._neighbour_buttons):
            b.layout.display = "none"
            b.on_click(lambda _, i=i: self._open_neighbour(i))
        # The neighbours past the buttons: a "+N more" button per side opens a list of the rest (one widget however
        # many there are); picking one opens it like a button would.
        self._more = {side: _button("", f"Show the other {word} assets")
                      for side, word in (("↑", "upstream"), ("↓", "downstream"))}
        self._rest = {side: w.Select(options=[], rows=8, layout=w.Layout(width="98%", display="none"))
                      for side in self._more}
        for side, b in self._more.items():
            b.layout.display = "none"
            b.on_click(lambda _, side=side: self._toggle_rest(side))
            self._rest[side].observe(lambda change, side=side: self._open_rest(side, change), names="value")
        self.neighbours = w.HBox([*self._neighbour_buttons, *self._more.values()],
                                 layout=w.Layout(flex_flow="row wrap"))
        self.rest = w.VBox(list(self._rest.values()))
        self.range_box = w.VBox([
            w.HTML("<b style='font:13px sans-serif'>Backfill a range</b>"),
            w.HBox([self.start, self.end]), self.only_stale, self.dry_run, self.backfill,
        ])
        self.actions = w.VBox([
            self.partition,
            w.HBox([self.materialize, self.downstream], layout=w.Layout(flex_flow="row wrap")),
            self.stale_upstream,
            self.range_box,
            w.HBox([self.cancel]),
            self.progress,
        ])
        self.actions.layout.display = "none"
        self.where = w.Output(layout=w.Layout(padding="0 0 0 0"))  # the cell link, rendered by JupyterLab itself
        self.box = w.VBox([self.info, self.where, self.neighbours, self.rest, self.actions],
                          layout=w.Layout(width="400px", min_width="320px", padding="0 0 0 8px", overflow="auto"))
        self.materialize.on_click(lambda _: self.owner.act("materialize"))
        self.downstream.on_click(lambda _: self.owner.act("downstream"))
        self.stale_upstream.on_click(lambda _: self.owner.act("stale_upstream"))
        self.backfill.on_click(lambda _: self.owner.act("backfill"))
        self.cancel.on_click(lambda _: self.owner.cancel())
        for field in (self.start, self.end, self.only_stale):
            field.observe(lambda _: self.owner.update_dry_run(), names="value")

    def show(self, view: dict[str, Any], *, linker: Any = None, keep_inputs: bool = False) -> None:
        first_time = self.asset != view["asset"]
        self.asset, self.view = view["asset"], view
        self.info.value = panel_html(view, linker=linker)
        link = cell_link_html(view) if view.get("cell_href") else ""
        self.where.outputs = ({"output_type": "display_data", "metadata": {},
                               "data": {"text/html": link, "text/plain": view.get("notebook") or ""}},) if link else ()
        # An invalid asset cannot run until its declaration is fixed: the panel says what to fix instead.
        self.actions.layout.display = "none" if view["status"] == Status.INVALID else "flex"
        # Partition fields and the backfill range mean nothing for an unpartitioned asset: hide them.
        shown = "flex" if view["partitioned"] else "none"
        self.partition.layout.display = self.range_box.layout.display = shown
        if first_time and not keep_inputs:
            ranges = view["ranges"]
            self.partition.value = ""
            self.start.value = ranges[0]["first"] if view["partitioned"] and ranges else ""
            self.end.value = ranges[-1]["last"] if view["partitioned"] and ranges else ""
            items = [("↑", item) for item in view["upstream"][:NEIGHBOURS // 2]]
            shown_up = len(items)
            items += [("↓", item) for item in view["downstream"][:NEIGHBOURS - len(items)]]
            self._set_rest("↑", view["upstream"][shown_up:])
            self._set_rest("↓", view["downstream"][len(items) - shown_up:])
            for i, b in enumerate(self._neighbour_buttons):
                if i < len(items):
                    side, item = items[i]
                    self._neighbour_names[i] = item["name"]
                    b.description = f"{side} {item['name']}"
                    b.tooltip = f"{item['status'].lower()}; click to show it"
                    b.layout.display = "inline-flex"
                elif self._neighbour_names[i] is not None:
                    self._neighbour_names[i] = None
                    b.layout.display = "none"

    def _set_rest(self, side: str, rest: list[dict[str, Any]]) -> None:
        more, listing = self._more[side], self._rest[side]
        listing.layout.display = "none"
        listing.value = None
        listing.options = [(f"{side} {item['name']} ({item['status'].lower()})", item["name"]) for item in rest]
        more.description = f"+{len(rest)} more {side}"
        more.layout.display = "inline-flex" if rest else "none"

    def _toggle_rest(self, side: str) -> None:
        listing = self._rest[side]
        listing.layout.display = "none" if listing.layout.display == "flex" else "flex"

    def _open_rest(self, side: str, change: dict[str, Any]) -> None:
        if change.get("new"):
            self.owner.show(change["new"], select=True)

    def more_neighbours(self, side: str) -> list[str]:
        """The names the "+N more" list of ``side`` ("↑" or "↓") holds (for tests and scripts)."""
        return [name for _, name in self._rest[side].options]

    def _open_neighbour(self, i: int) -> None:
        name = self._neighbour_names[i]
        if name is not None:
            self.owner.show(name, select=True)

    def say(self, html: str) -> None:
        self.progress.value = f"<div style='font:13px sans-serif'>{html}</div>"
