"""The IPython extension: ``%load_ext notebook_orch`` registers ``%%asset`` and ``%nbo``.

Both are thin faces: ``%%asset`` hands the cell to ``AssetRuntime`` (the engine papermill runs use too), and
``%nbo SUBCOMMAND`` runs the same code as the ``nbo`` command line. Bad magic arguments raise IPython's plain
``UsageError``; the package's own errors render briefly; neither is printed-and-swallowed, so papermill and
nbclient see every failure.
"""

from __future__ import annotations

import atexit
import shlex
import weakref
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from notebook_orch.core.partitions import Unpartitioned, partition_date
from notebook_orch.core.specs import HELP
from notebook_orch.errors import DeclarationError, NotebookOrchError, PartitionError, RunFailed
from notebook_orch.kernel.runtime import RUN_CONTEXT, AssetRuntime
from notebook_orch.secrets import redact


def _asset_doc() -> str:
    return "Declare and materialize an asset. The cell body must assign NAME.\n\n" + HELP


@magics_class
class NotebookOrchMagics(Magics):
    def __init__(self, shell: Any, runtime: AssetRuntime | None = None) -> None:
        super().__init__(shell)
        self.runtime = runtime or AssetRuntime()
        shell._nbo_runtime = self.runtime
        self.runtime.notify_wait = self._notify_wait
        self._wait_line: Any = None  # the output line an %%asset cell waiting for a pool slot keeps up to date
        # The graphs and heatmaps %nbo made in this kernel: a click on a heatmap cell opens the graphs' panels.
        self._graphs: weakref.WeakSet[Any] = weakref.WeakSet()
        self._heatmaps: weakref.WeakSet[Any] = weakref.WeakSet()

    def _notify_wait(self, text: str | None) -> None:
        """One line in the cell's output, updated in place: "waiting for pool X (n ahead ...)", then "got it"."""
        from IPython.display import display

        if not text:
            return
        if self._wait_line is None:
            self._wait_line = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self._wait_line.update({"text/plain": text}, raw=True)

    # no_var_expand: the kernel must see the declaration byte for byte as discovery reads it from the file; IPython
    # would otherwise expand ``{...}`` and ``$name`` in the line (``--check "x == {'a', 'b'}"`` checked a tuple).
    @cell_magic
    @no_var_expand
    def asset(self, line: str, cell: str) -> None:
        shell = self.shell

        def run_body() -> None:
            # The %%asset line stays as line 1 (a comment), so line numbers are the cell's own, as JupyterLab
            # counts them; the file name is what a person can find: the prompt's In[N], or in a run the cell.
            source = f"# %%asset {line}\n" + shell.transform_cell(cell)
            filename = self._code_name(line, source)
            exec(shell.compile(source, filename, "exec"), shell.user_global_ns, shell.user_ns)  # noqa: S102

        self._wait_line = None
        try:
            result = self.runtime.execute_cell(line, cell, shell.user_ns, run_body)
        except DeclarationError as exc:
            if exc.problem.asset is not None:
                # A line that parses but declares what the project cannot run (kernel/declared.py): shown as the
                # declaration problem it is, in one line (the package's own short rendering).
                raise
            raise UsageError(str(exc)) from None  # a line that does not parse: bad magic arguments
        except PartitionError as exc:  # no partition chosen, or a key the asset does not have: nothing ran
            raise UsageError(str(exc)) from None
        except RunFailed as exc:
            if getattr(exc, "user_code", False) and exc.__cause__ is not None:
                _show_user_traceback(shell, exc)
            raise
        print(result.summary())

    asset.__doc__ = _asset_doc()

    def _code_name(self, line: str, source: str) -> str:
        """Where tracebacks say the code is: ``Cell In[N]`` (this prompt's number) interactively; in a run, the
        notebook and cell it came from (the run's own In[N] means nothing outside its output notebook)."""
        import linecache
        from collections.abc import Mapping

        from notebook_orch.kernel.runtime import RUN_CONTEXT

        shell = self.shell
        if isinstance(shell.user_ns.get(RUN_CONTEXT), Mapping):
            words = line.split()
            try:
                where = self.runtime.graph().spec(words[0]).location if words else None
            except Exception:  # noqa: BLE001 - the runtime reports a bad name itself; the name is only cosmetic
                where = None
            if where:
                # Like IPython's own cache: no file behind it, so linecache keeps it (mtime None) for tracebacks.
                linecache.cache[where] = (len(source), None, source.splitlines(True), where)
                return where
        return shell.compile.cache(source, shell.execution_count)

    @line_magic
    @no_var_expand  # '$' and '{...}' in a selection, key or parameter reach nbo as typed, as in a terminal
    def nbo(self, line: str) -> Any:
        """Mirror of the ``nbo`` command line: %nbo partition KEY | graph [SELECTION] | partitions [SELECTION] |
        status | stale | lineage | runs | materialize SELECTION [--partition K | --from A --to B] [--downstream] ...
        (see `nbo --help`)."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%nbo: cannot split {line!r} ({exc}); check the quotes.") from None
        if not argv:
            raise UsageError("%nbo needs a subcommand: partition, graph, partitions, status, stale, lineage, runs, "
                             "materialize.")
        if argv[0] == "partition":
            self._set_partition(argv[1:])
            return
        if argv[0] == "graph":
            return self._graph(argv[1:])
        if argv[0] == "partitions":
            return self._partitions(argv[1:])
        if argv[0] in ("materialize", "backfill"):
            _refuse_inside_a_run(argv[0], self.shell.user_ns)
        from notebook_orch.faces.cli import main

        root = str(self.runtime.project().config.root)
        progress = None
        if argv[0] in ("materialize", "backfill") and "--json" not in argv and "--dry-run" not in argv:
            if "--wait" not in argv and "-h" not in argv and "--help" not in argv:
                return self._submit_in_background(argv, root)
            progress = _ProgressOnStart()
        if argv[0] in ("stale", "status"):
            self._warn_about_unsaved_cells(argv[0])
        from notebook_orch.faces.cli import BadArguments

        try:
            if argv[0] == "lineage" and _show_lineage(argv, root):
                return
            code = main(["-C", root, *argv], progress=progress, raise_errors=True)
        except BadArguments as exc:
            raise UsageError(f"%nbo {argv[0]}: {exc}") from None
        except DeclarationError:
            from notebook_orch.core.graph import selected_names

            named = selected_names(" ".join(a for a in argv[1:] if not a.startswith("-")))
            here = [n for n in named if self.runtime.declared_only_here(n)]
            if not here:
                raise
            raise UsageError(
                f"%nbo {argv[0]}: {here[0]!r} is declared only in this kernel (a new cell, or a notebook that is not "
                f"saved yet); %nbo {argv[0]} reads the saved notebooks: save the notebook, then run it again."
            ) from None
        except SystemExit as exc:  # argparse: --help (code 0) or bad arguments (code 2)
            if exc.code in (0, None):
                return
            raise UsageError(f"%nbo {line}: invalid arguments (see above).") from None
        if code != 0:
            # What went wrong is printed above, once; the cell still fails, so papermill and nbclient see it.
            raise CommandFailed(_FAILED.get(argv[0], f"%nbo {argv[0]} did not succeed (see above)."))

    def _warn_about_unsaved_cells(self, command: str) -> None:
        """``nbo status``/``stale`` read the saved notebooks; say so when this kernel ran cells that differ."""
        for name, location in sorted(self.runtime.unsaved.items()):
            print(f"warning: {name} last ran here from its cell as edited in this kernel, which differs from the "
                  f"saved {location}; %nbo {command} reads the saved notebook: save it to compare with what ran.")

    def _graph(self, args: list[str]) -> Any:
        """``%nbo graph [SELECTION]``: the live lineage graph widget (returned, so the cell displays it)."""
        if any(a.startswith("-") for a in args):
            raise UsageError("%nbo graph takes an optional SELECTION (e.g. '+report' or 'a,b'), no options.")
        from notebook_orch.widgets import LineageGraph

        try:
            graph = LineageGraph(self.runtime.project(), " ".join(args) or None)
        except DeclarationError as exc:
            raise UsageError(str(exc)) from None
        self._graphs.add(graph)
        for heat in list(self._heatmaps):
            heat.link(graph)
        return graph

    def _partitions(self, args: list[str]) -> Any:
        """``%nbo partitions [SELECTION]``: the partition heatmap widget, assets x partitions by status."""
        if any(a.startswith("-") for a in args):
            raise UsageError("%nbo partitions takes an optional SELECTION (e.g. '+report' or 'a,b'), no options.")
        from notebook_orch.widgets import PartitionHeatmap

        try:
            heat = PartitionHeatmap(self.runtime.project(), " ".join(args) or None)
        except DeclarationError as exc:
            raise UsageError(str(exc)) from None
        self._heatmaps.add(heat)
        for graph in list(self._graphs):
            heat.link(graph)
        return heat

    def _submit_in_background(self, argv: list[str], root: str) -> Any:
        """``%nbo materialize|backfill`` without ``--wait``: plan here (bad input fails the cell at once), run in
        the background, return a live progress view at once — the kernel stays usable."""
        from notebook_orch.faces.cli import build_parser
        from notebook_orch.faces.cli_runs import submit_options
        from notebook_orch.faces.progress import RunProgressView

        try:
            args = build_parser().parse_args(["-C", root, *argv])
        except SystemExit as exc:
            if exc.code in (0, None):
                return None
            raise UsageError(f"%nbo {' '.join(argv)}: invalid arguments (see above).") from None
        try:
            options = submit_options(args)
        except ValueError as exc:
            raise UsageError(f"%nbo {argv[0]}: {exc}") from None
        self.runtime.graph()  # notebooks edited since the last look are read again
        handle = self.runtime.project().submit(args.selection, **options)
        if not handle.plan.runs:
            handle.wait()
            skipped = len(handle.plan.skipped)
            print("nothing to do: every selected partition is fresh" + (
                f" or being materialized by another run ({skipped} skipped)" if skipped else ""))
            return None
        _LIVE_HANDLES.add(handle)
        view = RunProgressView(handle, title=argv[0])
        view._ipython_display_()
        return view

    def _set_partition(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("%nbo partition takes one KEY, e.g. %nbo partition 2013-01-05")
        key = args[0]
        from notebook_orch.core.partitions import check_key_is_safe
        from notebook_orch.errors import PartitionError

        try:
            check_key_is_safe(key)
        except PartitionError as exc:
            raise UsageError(str(exc)) from None
        graph = self.runtime.graph()
        fits, date = [], None
        now = _now()
        # The kernel's own declarations count too: a new partitioned cell must be able to pick its first key.
        specs = {**{s.name: s for s in graph.specs}, **{s.name: s for s in self.runtime.kernel_declarations()}}
        for spec in specs.values():
            if isinstance(spec.partitions, Unpartitioned):
                continue
            try:
                spec.partitions.index_of(key, now=now)
            except PartitionError:
                continue
            fits.append(spec.name)
            date = date or partition_date(spec.partitions, key)
        if not fits:
            partitioned = [f"{s.name} ({s.partitions.describe()})" for s in specs.values()
                           if not isinstance(s.partitions, Unpartitioned)]
            raise UsageError(
                f"Partition key {key!r} is not a partition of any asset in the project; "
                + ("the partitioned assets are " + ", ".join(partitioned[:10])
                   + (f" and {len(partitioned) - 10} more" if len(partitioned) > 10 else "") + "."
                   if partitioned else "no asset is partitioned.")
            )
        self.runtime.active_partition = key
        # Helper cells run before the asset cell see the partition too, and never an earlier one's date.
        self.shell.user_ns["partition_key"] = key
        if date is None:
            self.shell.user_ns.pop("partition_date", None)
        else:
            self.shell.user_ns["partition_date"] = date
        print(f"active partition: {key} (assets with this partition: {', '.join(fits)})")


def _show_lineage(argv: list[str], root: str) -> bool:
    """``%nbo lineage`` (or ``--format html|svg``) draws the graph: the SVG for a notebook, the text for a terminal
    (IPython shows the richest part of the bundle it can). Returns False to let the CLI print instead: ``--json``,
    an explicit text format, or an error (which the CLI reports as ``nbo lineage`` does)."""
    from notebook_orch.faces.cli import build_parser

    args = build_parser().parse_args(["-C", root, *argv])
    explicit = any(a == "--format" or a.startswith("--format=") for a in argv)
    if args.json or (explicit and args.format not in ("html", "svg")):
        return False
    from IPython.display import display

    from notebook_orch.errors import NotebookOrchError
    from notebook_orch.faces.lineage import notebook_html, render
    from notebook_orch.project import Project

    try:
        with Project(root) as project:
            graph = project.graph
            report = None if args.no_status else project.status()
    except NotebookOrchError:
        return False
    display({"text/html": notebook_html(graph, report), "text/plain": render(graph, "text", report)}, raw=True)
    return True


def _refuse_inside_a_run(command: str, namespace: Any) -> None:
    """A run executes what its assets need; a run that starts runs would nest them (one partition once started 31).

    Runs skip ``%nbo`` cells, so this holds only for a cell forced to run (tagged ``nbo-setup``, or in a helper).
    """
    context = namespace.get(RUN_CONTEXT)
    if not isinstance(context, Mapping):
        return
    where = f"run {context.get('run_id')} of {context.get('notebook')} [{context.get('partition_key')}]"
    raise NotebookOrchError(
        f"%nbo {command} is refused inside a run ({where}): a run executes only what its assets need, and runs "
        f"started from inside a run would start runs again in each of them. Start it from an interactive kernel or "
        f"a terminal (nbo {command} ...); remove the nbo-setup tag from this cell, or move the %nbo line out of "
        "the cell that asset cells rely on."
    )
class CommandFailed(NotebookOrchError):
    """``%nbo`` reported a failure above (failed runs, project problems): the cell fails with one short line."""


_FAILED = {
    "materialize": "%nbo materialize: not every run succeeded; each failure is listed above.",
    "backfill": "%nbo backfill: not every run succeeded; each failure is listed above.",
    "validate": "%nbo validate: the project has problems; they are listed above.",
}


class _ProgressOnStart:
    """The notebook progress bar, shown only once runs start: a bad selection or partition fails first, with no
    empty bar above the error."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, total: int) -> None:
        from notebook_orch.faces.progress import WidgetProgress

        self._bar = WidgetProgress()
        self._bar.start(total)

    def advance(self, outcome: Any) -> None:
        if self._bar is not None:
            self._bar.advance(outcome)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.finish()


def _show_user_traceback(shell: Any, error: RunFailed) -> None:
    """Let ``error`` render as the traceback of the user's own code (their frames only) plus its short line.

    The package's errors render as one line, but when the cell's code raised, the user needs to see where.
    """
    cause = error.__cause__
    assert cause is not None
    tb = cause.__traceback__
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next  # the frames of this package that called the cell
    try:
        if isinstance(cause, SyntaxError):  # the cell did not compile: show the line, not the compiler's frames
            stb = shell.SyntaxTB.structured_traceback(type(cause), cause, None)
        else:
            stb = shell.InteractiveTB.structured_traceback(type(cause), cause, tb)
    except Exception:  # noqa: BLE001 - a formatter failure must not replace the user's error
        return
    # The cause's message may quote a secret (f"login failed for {token}"); output notebooks keep what is shown.
    lines = [*(redact(s) for s in stb), "", f"{type(error).__name__}: {error}"]
    error._render_traceback_ = lambda: lines  # type: ignore[method-assign]


def _is_ours(filename: str) -> bool:
    from pathlib import Path

    return Path(filename).resolve().is_relative_to(Path(__file__).resolve().parents[1])  # the package


def _now() -> Any:
    from notebook_orch.project import utcnow

    return utcnow()


# Runs this kernel started and that may still be going: cancelled when the kernel shuts down or restarts, so no
# run it started is left RUNNING (a SIGKILLed kernel's runs are reaped after the heartbeat timeout instead).
_LIVE_HANDLES: weakref.WeakSet[Any] = weakref.WeakSet()


def _cancel_live_runs() -> None:
    handles = [h for h in list(_LIVE_HANDLES) if not h.done()]
    for handle in handles:
        handle.cancel()
    for handle in handles:
        try:
            handle.wait(timeout=3)
        except BaseException:  # noqa: BLE001 - shutting down anyway: settle below what the handle did not
            pass
        try:
            handle.settle_abandoned()
        except Exception:  # noqa: BLE001 - the heartbeat timeout reaps what could not be settled
            pass


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(NotebookOrchMagics(ipython))
    atexit.unregister(_cancel_live_runs)
    atexit.register(_cancel_live_runs)
    _cancel_on_kernel_shutdown(getattr(ipython, "kernel", None))
    if _date_parameter not in ipython.events.callbacks["pre_run_cell"]:
        ipython.events.register("pre_run_cell", _date_parameter)


def _cancel_on_kernel_shutdown(kernel: Any) -> None:
    """Cancel our runs when the kernel is asked to shut down or restart — before ipykernel terminates its child
    processes (our workers) and long before atexit, which a kernel killed after its grace period never reaches."""
    if kernel is None or getattr(kernel.do_shutdown, "_nbo_wrapped", False):
        return
    original = kernel.do_shutdown

    def do_shutdown(restart: bool) -> Any:
        _cancel_live_runs()
        return original(restart)

    do_shutdown._nbo_wrapped = True  # type: ignore[attr-defined]
    kernel.do_shutdown = do_shutdown


def unload_ipython_extension(ipython: Any) -> None:
    runtime = getattr(ipython, "_nbo_runtime", None)
    if runtime is not None:
        runtime.close()
    if _date_parameter in ipython.events.callbacks["pre_run_cell"]:
        ipython.events.unregister("pre_run_cell", _date_parameter)


def _date_parameter(*_: Any) -> None:
    """papermill injects ``partition_date`` as an ISO string; every cell of a run sees a ``datetime.date``, as the
    asset cells always do."""
    from datetime import date

    from IPython import get_ipython

    shell = get_ipython()
    value = shell.user_ns.get("partition_date") if shell is not None else None
    if isinstance(value, str) and "nbo_run" in shell.user_ns:
        try:
            shell.user_ns["partition_date"] = date.fromisoformat(value)
        except ValueError:
            pass
