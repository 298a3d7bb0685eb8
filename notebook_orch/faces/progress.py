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
        line = _outcome_line(outcome)
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=line[:80])
            if outcome.status != "SUCCESS":
                self._progress.console.print(line, markup=False, highlight=False)
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
        self._label.value = _outcome_line(outcome)
        if outcome.status != "SUCCESS":
            print(_outcome_line(outcome))

    def finish(self) -> None:
        self._bar.bar_style = "success" if self._bar.value == self._bar.max else ""


def _outcome_line(o: RunOutcome) -> str:
    text = f"{o.status:<7} {o.notebook} [{o.partition}] {','.join(o.assets)}"
    if o.run_id:
        text += f" run {o.run_id}"
    if o.attempts > 1:
        text += f" after {o.attempts} attempts"
    if o.error:
        text += f": {o.error}"
    return text
