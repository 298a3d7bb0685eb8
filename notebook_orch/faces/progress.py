"""Progress displays over a ``RunHandle``: a rich bar on a terminal, an ipywidgets panel in a notebook."""

from __future__ import annotations

from typing import Any

from notebook_orch.engine.executor import RunOutcome


class RichProgress:
    """A progress bar on a terminal; one line per finished run elsewhere."""

    def __init__(self, *, live: bool) -> None:
        self._live = live
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: int) -> None:
        if self._live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("materializing"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"))
            self._progress.start()
            self._task = self._progress.add_task("", total=total)

    def advance(self, outcome: RunOutcome) -> None:
        # A failure's message is printed once, in the command's closing list; here it is only named.
        line = _outcome_line(outcome, with_error=False)
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=line[:80])
        else:
            print(line, flush=True)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class WidgetProgress:
    """An ipywidgets progress bar for ``%nbo materialize`` in a notebook."""

    def __init__(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self._bar = widgets.IntProgress(value=0, min=0, max=1, description="materialize")
        self._label = widgets.Label("")
        display(widgets.HBox([self._bar, self._label]))

    def start(self, total: int) -> None:
        self._bar.max = max(total, 1)

    def advance(self, outcome: RunOutcome) -> None:
        self._bar.value += 1
        self._label.value = _outcome_line(outcome, with_error=False)  # the closing list prints each failure once

    def finish(self) -> None:
        self._bar.bar_style = "success" if self._bar.value == self._bar.max else ""


class RunProgressView:
    """A run handle in a notebook: bar, n/N, elapsed, ETA, failures (one line each) and a Cancel button.

    Updated from the handle's thread as runs end and by a one-second ticker for the clock, so it keeps moving while
    the person runs other cells. ``h = %nbo materialize ...`` gives this object: ``h.handle``, ``h.wait()``,
    ``h.cancel()``.
    """

    def __init__(self, handle: Any, *, title: str = "materialize") -> None:
        import ipywidgets as widgets

        self.handle = handle
        self._shown = False
        total = len(handle.plan.runs)
        self._bar = widgets.IntProgress(value=0, min=0, max=max(total, 1), description=title,
                                        layout=widgets.Layout(width="320px"))
        self._label = widgets.Label("")
        self._cancel = widgets.Button(description="Cancel", button_style="warning", icon="stop",
                                      layout=widgets.Layout(width="90px"))
        self._cancel.on_click(lambda _: self.cancel())
        self._failures = widgets.HTML("")
        self._failure_lines: list[str] = []
        self.widget = widgets.VBox([widgets.HBox([self._bar, self._label, self._cancel]), self._failures])
        self._refresh()
        handle.on_outcome(self._on_outcome)
        handle.on_finish(lambda report: self._refresh(finished=True))
        import threading

        self._ticker = threading.Thread(target=self._tick, name="nbo-progress-clock", daemon=True)
        self._ticker.start()

    def _ipython_display_(self) -> None:
        # Shown once, where the magic ran: `view = %nbo materialize ...` must show it too, and an unassigned
        # `%nbo materialize ...` must not show it twice (the magic's display, then the cell's result).
        if self._shown:
            return
        self._shown = True
        from IPython.display import display

        display(self.widget)

    def wait(self, timeout: float | None = None) -> Any:
        return self.handle.wait(timeout)

    def cancel(self) -> None:
        self._cancel.disabled = True
        self._cancel.description = "Canceling"
        self.handle.cancel()

    def _on_outcome(self, outcome: RunOutcome) -> None:
        if outcome.status not in ("SUCCESS", "CANCELED"):
            import html

            self._failure_lines.append(html.escape(_outcome_line(outcome)))
            shown = self._failure_lines[-20:]
            more = len(self._failure_lines) - len(shown)
            self._failures.value = ("<div style='font-family: monospace; white-space: pre-wrap'>"
                                    + (f"... {more} earlier failure(s); see nbo runs<br>" if more else "")
                                    + "<br>".join(shown) + "</div>")
        self._refresh()

    def _tick(self) -> None:
        import time

        while not self.handle.done():
            time.sleep(1.0)
            self._refresh()

    def _refresh(self, *, finished: bool = False) -> None:
        p = self.handle.progress()
        self._bar.value = p.done
        parts = [f"{p.done}/{p.total}", f"{_clock(p.elapsed_s)} elapsed"]
        if p.eta_s is not None and not finished:
            parts.append(f"ETA {_clock(p.eta_s)}")
        waiting = 0 if finished else self.handle.waiting() if hasattr(self.handle, "waiting") else 0
        if waiting:
            parts.append(f"{waiting} waiting for a pool slot")
        if p.failed:
            parts.append(f"{p.failed} failed")
        if p.canceled:
            parts.append(f"{p.canceled} canceled")
        if finished or self.handle.done():
            parts.insert(0, "canceled" if p.canceled else "done")
            self._bar.bar_style = "danger" if p.failed else ("warning" if p.canceled else "success")
            self._cancel.layout.display = "none"
        self._label.value = " · ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _outcome_line(o: RunOutcome, *, with_error: bool = True) -> str:
    text = f"{o.status:<7} {o.notebook} [{o.partition}] {','.join(o.assets)}"
    if o.run_id:
        text += f" run {o.run_id}"
    if o.attempts > 1:
        text += f" after {o.attempts} attempts"
    if o.error and with_error:
        text += f": {o.error}"
    return text
