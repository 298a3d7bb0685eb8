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
from notebook_orch.core.status import RunStatus, Status
from notebook_orch.errors import NotebookOrchError, ProjectInvalid
from notebook_orch.faces.lineage import summary_status

INVALID = Status.INVALID  # an asset whose declaration is broken, or that depends on one (see core.graph.InvalidAsset)


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
    p.add_argument("--status", choices=[s.value for s in RunStatus])
    p.add_argument("--asset")
    add("reap", "mark runs whose heartbeat stopped as FAILED and withdraw what they published (a write)")
    from notebook_orch.faces.cli_runs import add_run_commands  # materialize, backfill

    add_run_commands(sub, add)
    from notebook_orch.faces.cli_schedule import add_schedule_commands  # schedule, scheduler, auto

    add_schedule_commands(sub, add)
    return parser


def main(argv: Sequence[str] | None = None, *, progress: Any = None) -> int:
    """Run ``nbo``; ``progress`` (e.g. a notebook widget) replaces the terminal progress bar of runs."""
    args = build_parser().parse_args(argv)
    from notebook_orch.project import Project

    try:
        project = Project(args.project)
        with project:
            handler = _HANDLERS.get(args.command) or getattr(args, "handler", None)
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
    # Assets left out only because they read an invalid one: not problems of their own, but named so none is a
    # surprise in `nbo status`.
    downstream = sorted(n for n, bad in project.graph.invalid.items() if bad.invalid_deps)
    if args.json:
        print(json.dumps({"ok": not problems, "problems": [str(p) for p in problems],
                          "assets": len(found.specs), "notebooks": len(found.notebooks),
                          "invalid_assets": {n: [str(p) for p in ps] for n, ps in project.invalid_assets().items()}},
                         indent=2))
    elif problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        if downstream:
            print(f"Also left out, as they depend on an invalid asset: {', '.join(downstream)}.", file=sys.stderr)
    else:
        print(f"OK: {len(found.specs)} assets in {len(found.notebooks)} notebooks")
    return 1 if problems else 0


def cmd_status(project: Any, args: argparse.Namespace) -> int:
    graph = project.graph
    # a mistyped name fails before the store is read; invalid assets are shown, not refused
    chosen = graph.select(args.assets, include_invalid=True)
    names = [n for n in chosen if n in graph]
    invalid = [graph.invalid[n] for n in chosen if n in graph.invalid]
    report = project.status()
    rows = []
    for name in names:
        spec = graph.spec(name)
        last = report.last_materialized(name)
        counts = report.counts(name)
        rows.append({
            "asset": name,
            "notebook": spec.notebook,
            "partitions": spec.partitions.describe(),
            "status": summary_status(counts),
            **{k.lower(): v for k, v in counts.items()},
            "last_partition": last[0] if last else None,
            "last_materialized": last[1] if last else None,
        })
    statuses = [k.lower() for k in report.totals()]
    rows.extend(_invalid_row(bad, statuses, now=report.now) for bad in invalid)
    if args.json:
        print(json.dumps(_jsonable({"assets": rows, "totals": report.totals(), "invalid_assets": len(invalid),
                                    "other_problems": [str(p) for p in graph.other_problems]}), indent=2))
        return 0
    from rich.table import Table

    table = Table(title="Asset status", title_justify="left")
    for col, style in [("asset", "bold"), ("notebook", "dim"), ("partitions", ""), ("fresh", "green"),
                       ("stale", "yellow"), ("missing", "bright_black"), ("failed", "red"), ("running", "blue"),
                       ("last materialized", "")]:
        table.add_column(col, style=style, justify="right" if col in ("fresh", "stale", "missing", "failed",
                                                                     "running") else "left")
    for r in rows:
        if r["status"] == INVALID:
            table.add_row(r["asset"], r["notebook"] or "", r["partitions"] or "?", *["-"] * 5, "[red]INVALID[/]")
            continue
        last = f"{r['last_partition']} at {r['last_materialized']:%Y-%m-%d %H:%M}" if r["last_materialized"] else "-"
        table.add_row(r["asset"], r["notebook"] or "", r["partitions"], *(str(r[k]) for k in (
            "fresh", "stale", "missing", "failed", "running")), last)
    console = _console()
    console.print(table)
    totals = report.totals()
    console.print("totals: " + ", ".join(f"{k.lower()} {v}" for k, v in totals.items()))
    _print_invalid(console, invalid, graph.other_problems)
    return 0


def _invalid_row(bad: Any, statuses: Sequence[str], *, now: Any) -> dict[str, Any]:
    """A status row for an asset left out of the graph: status INVALID and its problems; every partition it declares
    counts as invalid (one when its line did not parse)."""
    spec = bad.spec
    n = len(spec.partitions.keys(now=now)) if spec is not None else 1
    return {
        "asset": bad.name,
        "notebook": bad.notebook,
        "cell": bad.cell_index,
        "partitions": spec.partitions.describe() if spec is not None else None,
        "status": INVALID,
        **dict.fromkeys(statuses, 0),
        "invalid": n,
        "problems": [str(p) for p in bad.problems],
        "invalid_deps": list(bad.invalid_deps),
        "last_partition": None,
        "last_materialized": None,
    }


def _print_invalid(console: Any, invalid: Sequence[Any], other: Sequence[Any]) -> None:
    """Below a table: each invalid asset with its problem (one line each), so nothing broken is hidden."""
    if invalid:
        console.print(f"[red]{len(invalid)} invalid asset(s)[/], left out until fixed (nbo validate lists every "
                      "problem):", highlight=False)
    for bad in invalid:
        console.print(f"  {bad.name}: INVALID - {bad.describe(located=True)}", highlight=False, markup=False)
    if other:
        console.print(f"{len(other)} other problem(s) in the notebooks (e.g. a file that cannot be read); nbo "
                      "validate lists them.", highlight=False, markup=False)


def cmd_stale(project: Any, args: argparse.Namespace) -> int:
    graph = project.graph
    chosen = graph.select(args.assets, include_invalid=True)
    invalid = [graph.invalid[n] for n in chosen if n in graph.invalid]
    stale = project.stale(assets=[n for n in chosen if n in graph])
    if args.json:
        print(json.dumps(_jsonable([*stale, *({
            "asset": bad.name, "partition": None, "status": INVALID,
            "causes": [{"kind": "invalid", "message": str(p)} for p in bad.problems], "root_causes": [],
        } for bad in invalid)]), indent=2))
        return 0
    console = _console()
    if not stale and not invalid:
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
    _print_invalid(console, invalid, ())
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
    colour = {RunStatus.SUCCESS: "green", RunStatus.FAILED: "red", RunStatus.RUNNING: "blue",
              RunStatus.CANCELED: "yellow"}
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
