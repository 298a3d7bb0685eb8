"""``nbo`` (also ``notebook-orch``): a thin face over ``Project``.

Exit codes: 0 success, 1 the project or a run has problems (validation failed, a run failed), 2 bad usage or an
error before anything ran. ``--json`` prints machine-readable output for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any

from notebook_orch.core.specs import MAX_LIMIT, bounded_int
from notebook_orch.errors import NotebookOrchError, ProjectInvalid


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    return obj


def _console():
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbo", description="notebook_orch: assets declared in notebooks.")
    parser.add_argument("-C", "--project", default=None, metavar="DIR", help="project folder (default: here)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    add("validate", "check every notebook's declarations and the graph; list every problem")
    p = add("status", "per asset: partitions fresh / stale / missing / failed / running, last materialization")
    p.add_argument("assets", nargs="?", default="*", help="selection: name, +name, name+, * (default)")
    p = add("stale", "each stale partition with the reasons it is stale")
    p.add_argument("assets", nargs="?", default="*", help="selection: name, +name, name+, * (default)")
    p = add("lineage", "the asset graph")
    p.add_argument("--format", default="text", choices=["text", "mermaid", "dot", "json", "svg", "html"])
    p.add_argument("--no-status", action="store_true", help="do not read the store")
    p = add("runs", "recent runs, newest first")
    p.add_argument("--limit", type=bounded_int(1, MAX_LIMIT), default=20, metavar="N", help="at most N runs")
    p.add_argument("--status", choices=["RUNNING", "SUCCESS", "FAILED", "CANCELED"])
    p.add_argument("--asset")
    add("reap", "mark runs whose heartbeat stopped as FAILED and withdraw what they published (a write)")
    from notebook_orch.faces.cli_runs import add_run_commands  # materialize, backfill

    add_run_commands(sub, add)
    return parser


def main(argv: Sequence[str] | None = None, *, progress: Any = None) -> int:
    """Run ``nbo``; ``progress`` (e.g. a notebook widget) replaces the terminal progress bar of runs."""
    args = build_parser().parse_args(argv)
    from notebook_orch.project import Project

    try:
        project = Project(args.project)
        with project:
            handler = _HANDLERS.get(args.command)
            if handler is None:
                from notebook_orch.faces.cli_runs import run_command

                return run_command(project, args, progress=progress)
            return handler(project, args)
    except ProjectInvalid as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "problems": [str(p) for p in exc.problems]}, indent=2))
        else:
            print(str(exc), file=sys.stderr)
        return 1
    except NotebookOrchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `nbo lineage | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_validate(project: Any, args: argparse.Namespace) -> int:
    problems = project.problems()
    found = project._discovery
    if args.json:
        print(json.dumps({"ok": not problems, "problems": [str(p) for p in problems],
                          "assets": len(found.specs), "notebooks": len(found.notebooks)}, indent=2))
    elif problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
    else:
        print(f"OK: {len(found.specs)} assets in {len(found.notebooks)} notebooks")
    return 1 if problems else 0


def cmd_status(project: Any, args: argparse.Namespace) -> int:
    names = project.graph.select(args.assets)  # a mistyped name fails before the store is read
    report = project.status()
    rows = []
    for name in names:
        spec = project.graph.spec(name)
        last = report.last_materialized(name)
        rows.append({
            "asset": name,
            "notebook": spec.notebook,
            "partitions": spec.partitions.describe(),
            **{k.lower(): v for k, v in report.counts(name).items()},
            "last_partition": last[0] if last else None,
            "last_materialized": last[1] if last else None,
        })
    if args.json:
        print(json.dumps(_jsonable({"assets": rows, "totals": report.totals()}), indent=2))
        return 0
    from rich.table import Table

    table = Table(title="Asset status", title_justify="left")
    for col, style in [("asset", "bold"), ("notebook", "dim"), ("partitions", ""), ("fresh", "green"),
                       ("stale", "yellow"), ("missing", "bright_black"), ("failed", "red"), ("running", "blue"),
                       ("last materialized", "")]:
        table.add_column(col, style=style, justify="right" if col in ("fresh", "stale", "missing", "failed",
                                                                     "running") else "left")
    for r in rows:
        last = f"{r['last_partition']} at {r['last_materialized']:%Y-%m-%d %H:%M}" if r["last_materialized"] else "-"
        table.add_row(r["asset"], r["notebook"] or "", r["partitions"], *(str(r[k]) for k in (
            "fresh", "stale", "missing", "failed", "running")), last)
    console = _console()
    console.print(table)
    totals = report.totals()
    console.print("totals: " + ", ".join(f"{k.lower()} {v}" for k, v in totals.items()))
    return 0


def cmd_stale(project: Any, args: argparse.Namespace) -> int:
    names = project.graph.select(args.assets)
    stale = project.stale(assets=names)
    if args.json:
        print(json.dumps(_jsonable(stale), indent=2))
        return 0
    console = _console()
    if not stale:
        console.print("Nothing is stale.")
        return 0
    for item in stale:
        console.print(f"[bold]{item.asset}[/bold][{item.partition}]", highlight=False)
        for cause in item.causes:
            console.print(f"    - {cause.message}", highlight=False, markup=False)
        if item.root_causes:
            console.print("      root cause: " + "; ".join(str(r) for r in item.root_causes), highlight=False,
                          markup=False)
    console.print(f"{len(stale)} stale partition(s)")
    return 0


def cmd_lineage(project: Any, args: argparse.Namespace) -> int:
    fmt = "json" if args.json else args.format
    print(project.lineage(fmt, with_status=not args.no_status))
    return 0


def cmd_runs(project: Any, args: argparse.Namespace) -> int:
    runs = project.runs(limit=args.limit, status=args.status, asset=args.asset)
    dead = {r.run_id for r in project.presumed_dead()}
    if args.json:
        print(json.dumps([{**_jsonable(r), "presumed_dead": r.run_id in dead} for r in runs], indent=2))
        return 0
    from rich.table import Table

    table = Table(title="Runs (newest first)", title_justify="left")
    for col in ("run", "status", "kind", "notebook", "partitions", "assets", "started", "took", "error"):
        table.add_column(col)
    colour = {"SUCCESS": "green", "FAILED": "red", "RUNNING": "blue", "CANCELED": "yellow"}
    for r in runs:
        took = f"{(r.ended_at - r.started_at).total_seconds():.2f}s" if r.ended_at else "-"
        parts = ",".join(r.partition_keys[:3]) + (f" +{len(r.partition_keys) - 3}" if len(r.partition_keys) > 3
                                                  else "")
        shown = f"[{colour[r.status]}]{r.status}[/]" + (" [red](no heartbeat: presumed dead; nbo reap)[/]"
                                                         if r.run_id in dead else "")
        table.add_row(r.run_id, shown, r.kind, r.notebook or "", parts,
                      ",".join(r.assets), f"{r.started_at:%Y-%m-%d %H:%M:%S}", took, (r.error or "")[:60])
    _console().print(table)
    return 0


def cmd_reap(project: Any, args: argparse.Namespace) -> int:
    reaped = project.reap()
    if args.json:
        print(json.dumps(_jsonable(reaped), indent=2))
    else:
        for r in reaped:
            print(f"reaped run {r.run_id} ({r.notebook}, {', '.join(r.assets)}): no heartbeat; now FAILED")
        print(f"{len(reaped)} run(s) reaped")
    return 0


_HANDLERS = {
    "reap": cmd_reap,
    "validate": cmd_validate,
    "status": cmd_status,
    "stale": cmd_stale,
    "lineage": cmd_lineage,
    "runs": cmd_runs,
}


if __name__ == "__main__":
    raise SystemExit(main())
