"""notebook_orch's papermill engine: a run executes only the cells its assets need, in a fresh or a warm kernel.

papermill hands an engine the parameterized notebook. Given the run's context (``nbo_run``: run id, notebook,
assets), this engine asks ``core.cell_selection.plan_cells`` which code cells the run executes — the selected asset
cells, the helper cells their code versions count (discovery's answer for this very notebook), the extension's
``%load_ext``, the parameters cells and cells tagged ``nbo-setup`` — and executes those in order. Every other code
cell is not sent to the kernel: its outputs say ``skipped by notebook_orch: not needed by run ID (assets ...)``, its
metadata holds ``notebook_orch.skipped`` with the reason, and papermill's status for it is ``skipped``.

One engine for both kernel modes (engine argument ``nbo_kernel``): ``fresh`` starts a kernel for the notebook and
shuts it down after, as plain papermill does; ``warm`` reuses this worker's kernel (``warm_engine``). Without a run
context (``papermill --engine notebook_orch``), every cell runs, as with papermill's own engine.

Registered under papermill's ``papermill.engine`` entry point as ``notebook_orch``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_output
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine, NotebookExecutionManager
from papermill.utils import merge_kwargs, remove_args

from notebook_orch.core.cell_selection import CellPlan, NotebookCell, plan_cells

ENGINE_NAME = "notebook_orch"
FRESH_KERNEL, WARM_KERNEL = "fresh", "warm"
SKIPPED_STATUS = "skipped"  # papermill's per-cell status: pending, running, completed, failed — and ours
_INJECTED = "injected-parameters"
logger = logging.getLogger("papermill")

__all__ = ["ENGINE_NAME", "NotebookOrchEngine", "SelectiveNotebookClient", "ThrottledSaves", "plan_for_run",
           "register"]


def plan_for_run(nb: Any, run: Mapping[str, Any]) -> CellPlan:
    """The cells of the parameterized notebook ``nb`` that the run ``run`` (its ``nbo_run`` context) executes.

    Discovery reads the notebook as saved, so it is shown the cells without papermill's injected parameters; its
    cell indexes are mapped back onto ``nb``.
    """
    cells = [NotebookCell(c.cell_type, _text(c.get("source", "")), tuple(c.get("metadata", {}).get("tags", ())))
             for c in nb.cells]
    saved = tuple(i for i, c in enumerate(cells) if _INJECTED not in c.tags)
    asset_cells, helpers = _asset_cells(str(run.get("notebook", "")),
                                        tuple((cells[i].cell_type, cells[i].source) for i in saved), saved)
    return plan_cells(cells, assets=tuple(run.get("assets", ())), asset_cells=dict(asset_cells),
                      helpers={name: list(indexes) for name, indexes in helpers})


@lru_cache(maxsize=64)
def _asset_cells(notebook: str, saved_cells: tuple[tuple[str, str], ...], positions: tuple[int, ...]
                 ) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, tuple[int, ...]], ...]]:
    """Discovery's asset cells and helper cells of a notebook, as indexes of the parameterized notebook. Every
    partition of a backfill runs the same notebook: it is parsed once per worker (keyed by the cells' text)."""
    from notebook_orch.discovery import assets_in_cells

    found = assets_in_cells(list(saved_cells), notebook=notebook)
    asset_cells: dict[str, int] = {}
    for spec in found.specs:
        if spec.cell_index is not None:
            asset_cells.setdefault(spec.name, positions[spec.cell_index])
    helpers = tuple((name, tuple(positions[i] for i in indexes)) for name, indexes in found.helpers.items())
    return tuple(asset_cells.items()), helpers


class SelectiveNotebookClient(PapermillNotebookClient):
    """papermill's client, executing only the code cells of ``cell_plan`` (all of them when it is None)."""

    def __init__(self, nb_man: Any, km: Any = None, *, cell_plan: CellPlan | None = None,
                 run: Mapping[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(nb_man, km=km, **kw)
        self.language_info_cached = False  # set by warm_engine for its long-lived client
        self.cell_plan = cell_plan
        self.run_context = dict(run or {})

    def execute(self, **kwargs: Any) -> Any:
        # papermill's execute, except that a warm kernel's language_info (constant for the kernel's life) is asked
        # for once per kernel rather than once per run: a round trip less per warm run.
        self.reset_execution_trackers()
        with self.setup_kernel(**kwargs):
            self.log.info(f"Executing notebook with kernel: {self.kernel_name}")
            self.papermill_execute_cells()
            info = getattr(self.kc, "nbo_language_info", None) if self.language_info_cached else None
            if info is None:
                info = self.wait_for_reply(self.kc.kernel_info())["content"]["language_info"]
                if self.language_info_cached:
                    self.kc.nbo_language_info = info
            self.nb.metadata["language_info"] = info
            self.set_widgets_metadata()
        return self.nb

    def create_kernel_manager(self) -> Any:
        """A fresh kernel on IPC sockets (engine/kernels.py: kernels started in parallel race for TCP ports)."""
        from notebook_orch.engine.kernels import new_kernel_manager

        if not self.kernel_name:
            self.kernel_name = self.nb.metadata.get("kernelspec", {}).get("name") or "python3"
        self.km = new_kernel_manager(self.kernel_name, config=self.config)
        return self.km

    def papermill_execute_cells(self) -> None:
        # papermill's loop, except that a skipped cell is marked instead of executed, and a cell that does not
        # execute (skipped, markdown, raw) is not saved twice: each cell_start/cell_complete rewrites the notebook.
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            if self.cell_plan is not None and not self.cell_plan.runs(index):
                self.mark_skipped(cell)
                continue
            try:
                self.nb_man.cell_start(cell, index)
                self.execute_cell(cell, index)
            except CellExecutionError as ex:
                self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=ex)
                break
            finally:
                self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)

    def mark_skipped(self, cell: Any) -> None:
        assets = ", ".join(self.run_context.get("assets", ())) or "none"
        run_id = self.run_context.get("run_id", "?")
        cell.outputs = [new_output(
            "stream", name="stdout", text=f"skipped by notebook_orch: not needed by run {run_id} (assets {assets})\n")]
        cell.execution_count = None
        cell.metadata["notebook_orch"] = {"skipped": True, "reason": f"not needed by run (assets {assets})"}
        cell.metadata.setdefault("papermill", {})["status"] = SKIPPED_STATUS


class NotebookOrchEngine(Engine):
    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None, progress_bar: bool = True,
                         log_output: bool = False, autosave_cell_every: int = 30, **kwargs: Any) -> Any:
        """papermill's ``Engine.execute_notebook``, writing the output notebook once instead of three times.

        papermill writes the output when the notebook starts, when it completes, and once more after the engine
        returns (``execute_notebook``'s final write, or ``raise_for_execution_errors`` with the error banner). Here
        the writes within the run are deferred (``ThrottledSaves``: a long run still shows progress every few
        seconds), so a quick run is written once, by papermill at the end. When the engine raises (a dead kernel, a
        timeout) papermill writes nothing more: the notebook is written here, after ``notebook_complete``.
        """
        nb_man = NotebookExecutionManager(nb, output_path=output_path, progress_bar=progress_bar,
                                          log_output=log_output, autosave_cell_every=autosave_cell_every)
        saves = ThrottledSaves(nb_man)  # before notebook_start: its save is deferred too
        finished = False
        try:
            nb_man.notebook_start()
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finished = True
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
            if not finished:
                saves.flush()
            saves.restore()
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        run = kwargs.pop("nbo_run", None)
        mode = kwargs.pop("nbo_kernel", FRESH_KERNEL)
        if mode not in (FRESH_KERNEL, WARM_KERNEL):
            raise ValueError(f"nbo_kernel must be {FRESH_KERNEL!r} or {WARM_KERNEL!r}, not {mode!r}")
        plan = plan_for_run(nb_man.nb, run) if isinstance(run, Mapping) else None
        kwargs = remove_args(["input_path", "timeout", "startup_timeout", "kernel_name", "cwd"], **kwargs)
        final_kwargs = merge_kwargs(
            kwargs,
            timeout=execution_timeout,
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )

        def client(km: Any = None) -> SelectiveNotebookClient:
            return SelectiveNotebookClient(nb_man, km=km, cell_plan=plan, run=run, **final_kwargs)

        if mode == WARM_KERNEL:
            from notebook_orch.engine.warm_engine import execute_in_warm_kernel

            return execute_in_warm_kernel(client, kernel_name, start_timeout=start_timeout)
        return client().execute()


class ThrottledSaves:
    """papermill rewrites the whole output notebook at the start, at every cell's start and end, and at the end (11
    writes for a 4-cell run, each a validated, indented JSON dump). Here a save within ``every_s`` of the last write
    is deferred: later ones go through at most every ``every_s`` while cells go on, and ``flush`` writes what was
    deferred. The engine installs it before papermill's ``notebook_start``, so the clock starts then and the first
    save is deferred too: a quick run writes nothing until papermill's final write. A dead kernel or a timeout is
    flushed by the engine. So the finished file is the same; only a run killed within ``every_s`` of its
    start leaves no output notebook, and a silent cell shows as started a little later."""

    def __init__(self, nb_man: Any, *, every_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._nb_man = nb_man
        self._save = nb_man.save
        self._every_s = every_s
        self._last = self._clock()
        self._pending = False
        nb_man.save = self.save

    def save(self, **kwargs: Any) -> None:
        if kwargs.get("nb") is not None:
            self._nb_man.nb = kwargs["nb"]
        now = self._clock()
        if now - self._last < self._every_s:
            self._pending = True
            return
        self._write(now)

    def flush(self) -> None:
        if self._pending:
            self._write(self._clock())

    def restore(self) -> None:
        self._nb_man.save = self._save

    def _write(self, now: float) -> None:
        self._save()
        self._last, self._pending = now, False


def register() -> None:
    """Make sure papermill knows the engine even when entry points were read before we were installed."""
    from papermill.engines import papermill_engines

    papermill_engines.register(ENGINE_NAME, NotebookOrchEngine)  # idempotent


def _text(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source)
