"""``nbo materialize`` and ``nbo backfill``: thin faces over ``Project.plan`` / ``Project.materialize``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def add_run_commands(sub: Any, add: Any) -> None:
    from notebook_orch.core.specs import MAX_RETRIES, MAX_WORKERS, bounded_int, bounded_seconds

    for name, help_text in [
        ("materialize", "run a selection of assets for some partitions (all partitions by default)"),
        ("backfill", "materialize what is missing, failed or stale in a partition range (reruns do only the rest)"),
    ]:
        p = add(name, help_text)
        p.add_argument("selection", help="name, +name (with upstream), name+ (with downstream), * (all); comma list")
        p.add_argument("--partition", action="append", default=[], metavar="K", help="a partition key; repeatable")
        p.add_argument("--from", dest="start", metavar="A", help="first partition key of a range")
        p.add_argument("--to", dest="end", metavar="B", help="last partition key of a range (inclusive)")
        p.add_argument("--downstream", action="store_true", help="also every downstream partition that reads them")
        if name == "materialize":
            p.add_argument("--only-stale", action="store_true", help="skip partitions that are fresh")
        p.add_argument("--dry-run", action="store_true", help="print exactly which runs would start, run nothing")
        p.add_argument("--workers", type=bounded_int(1, MAX_WORKERS), default=2, metavar="N",
                       help="runs at once (default 2)")
        p.add_argument("--retries", type=bounded_int(0, MAX_RETRIES), default=None, metavar="N",
                       help="retries of a failed run (default: the assets' --retries)")
        p.add_argument("--mode", choices=["warm", "fresh"], default="warm",
                       help="warm: reuse one kernel per worker (fast); fresh: a new kernel per run (plain papermill)")
        p.add_argument("--timeout", type=bounded_seconds(), default=None, metavar="SECONDS",
                       help="stop a cell that runs longer than this")
        p.add_argument("--executor", default=None, metavar="NAME",
                       help="where runs execute: local (default, or the project's executor setting), inprocess, "
                            "dask, or one a plug-in registers")
        p.add_argument("--address", default=None, metavar="URL",
                       help="the Dask scheduler for --executor dask, e.g. tcp://HOST:8786 (default: the project's "
                            "dask_address)")
        p.add_argument("--param", action="append", default=[], metavar="K=V",
                       help="a notebook parameter injected into every run (over the parameters cell); repeatable")
        p.add_argument("--wait", action="store_true",
                       help="in a notebook, block until every run ended (the command line always waits)")


def submit_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Project.submit`` keyword arguments from parsed ``materialize``/``backfill`` arguments; ``UsageError``-like
    problems raise ``ValueError`` with the message to show."""
    from notebook_orch.core.planning import PartitionSelection

    selection = None
    if args.partition or args.start or args.end:
        if args.partition and (args.start or args.end):
            raise ValueError("give --partition or --from/--to, not both")
        selection = PartitionSelection(keys=tuple(args.partition), start=args.start, end=args.end)
    backfill = args.command == "backfill"
    parameters = {}
    for pair in args.param:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--param {pair!r} is not K=V, e.g. --param region=eu")
        parameters[key.strip()] = value
    return dict(parameters=parameters or None, partitions=selection, downstream=args.downstream,
                only_stale=backfill or args.only_stale,
                workers=args.workers, retries=args.retries, mode=args.mode, kind="backfill" if backfill else "manual",
                execution_timeout_s=args.timeout, executor=args.executor,
                executor_options={"address": args.address} if args.address else None)


def run_command(project: Any, args: argparse.Namespace, *, progress: Any = None) -> int:
    from notebook_orch.engine.runner import PlanInterrupted
    from notebook_orch.faces.cli import BadArguments
    from notebook_orch.faces.progress import RichProgress

    try:
        options = submit_options(args)
    except ValueError as exc:  # exit code 2 with "error: ..." on the command line, a UsageError in a notebook
        raise BadArguments(str(exc)) from None
    if args.dry_run:
        plan = project.plan(args.selection, partitions=options["partitions"], downstream=args.downstream,
                            only_stale=options["only_stale"])
        if args.json:
            print(json.dumps({"runs": [{"notebook": r.notebook, "partition": r.partition, "assets": list(r.assets),
                                        "after": list(r.after)} for r in plan.runs],
                              "skipped": [list(s) for s in plan.skipped],
                              "pulled_in": [p.to_json() for p in plan.pulled_in],
                              "left_out": [{"asset": a, "problem": why} for a, why in plan.left_out]}, indent=2))
        else:
            print(plan.describe())
        return 0
    # The plan is made once, inside materialize: a second plan made here could disagree with the one that runs
    # (another command may start in between), and its skips are what the report says was left to other runs.
    if progress is None and not args.json:
        progress = RichProgress(live=sys.stdout.isatty())
    try:
        with _sigterm_as_interrupt():
            report = project.materialize(args.selection, progress=progress, **options)
    except PlanInterrupted as exc:
        print(f"interrupted: {exc.report.summary()}", file=sys.stderr)
        for o in exc.report.outcomes:
            if o.status == "CANCELED":
                print(f"  CANCELED {o.notebook} [{o.partition}] run {o.run_id}", file=sys.stderr)
        return 130
    elsewhere = _holders(project, report)
    if args.json:
        from notebook_orch.faces.cli import _jsonable

        print(json.dumps(_jsonable({
            "ok": report.ok, "duration_s": report.duration_s, "outcomes": list(report.outcomes),
            "running_elsewhere": [{"asset": a, "partition": p, "run_id": r} for (a, p), r in elsewhere.items()],
            "left_out": [{"asset": a, "problem": why} for a, why in report.left_out],
        }), indent=2))
    else:
        from notebook_orch.core.planning import left_out_lines

        print(report.summary())
        for o in report.outcomes:
            if o.status != "SUCCESS":
                print("  " + failure_line(o))
        for line in left_out_lines(report.left_out):
            print("  " + line)
        for (asset, partition), holder in elsewhere.items():
            by = f"run {holder}" if holder else "another run"
            print(f"  NOT RUN {asset}[{partition}]: {by} was already materializing it when this command planned; "
                  "wait for it to finish (nbo runs) and materialize again if it failed.")
    return 0 if report.ok else 1


def failure_line(o: Any) -> str:
    """One line per failed run: where (cell counted from 1, as JupyterLab shows it), why, and its output notebook."""
    from notebook_orch.errors import cell_number

    where = f" (cell {cell_number(o.error_cell)})" if o.error_cell is not None else ""
    run = f" run {o.run_id}" if o.run_id else ""
    out = f"; output notebook {o.output_path}" if o.output_path else ""
    return f"{o.status} {o.notebook} [{o.partition}]{where}{run}: {o.error}{out}"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """In the ``nbo`` process, SIGTERM (a supervisor stopping it) cancels the runs in flight like Ctrl-C does.

    Left alone inside IPython (``%nbo materialize``): a kernel's signals are its own business.
    """
    if threading.current_thread() is not threading.main_thread() or "ipykernel" in sys.modules:
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _holders(project: Any, report: Any) -> dict[tuple[str, str], str | None]:
    """Which run holds (or held) each partition the plan left to another run; None when it cannot be told."""
    wanted = report.running_elsewhere
    if not wanted:
        return {}
    holders: dict[tuple[str, str], str | None] = dict.fromkeys(wanted)
    running = project.store.running()
    ours = {r for o in report.outcomes for r in o.run_ids}
    for asset, partition in wanted:
        holder = running.get((asset, partition))
        if holder is None:  # finished since the plan was made: the newest other run of that partition
            holder = next((r.run_id for r in project.store.list_runs(limit=50, asset=asset)
                           if partition in r.partition_keys and r.run_id not in ours), None)
        holders[(asset, partition)] = holder
    return holders
