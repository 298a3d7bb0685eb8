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
from datetime import date, datetime, timezone
from typing import Any

from notebook_orch.core.specs import MAX_LIMIT, bounded_int
from notebook_orch.core.status import RunStatus, Status
from notebook_orch.errors import NotebookOrchError, ProjectInvalid
from notebook_orch.faces.lineage import summary_status

INVALID = Status.INVALID  # an asset whose declaration is broken, or that depends on one (see core.graph.InvalidAsset)


_PLAIN = frozenset({str, int, float, bool})
# Commands that read a snapshot, print and exit (see main).
_ONE_SHOT_READS = frozenset({"status", "stale", "lineage"})


class BadArguments(NotebookOrchError):
    """Arguments that parse but do not fit together (exit code 2; IPython's UsageError in a notebook)."""


def _jsonable(obj: Any) -> Any:
    if obj is None or type(obj) in _PLAIN:  # most values: checked first (a status table has thousands)
        return obj
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
    """A rich console as wide as where the text lands: the terminal, a notebook's output area, or a pipe."""
    import os

    from rich.console import Console

    if sys.stdout.isatty():
        return Console(soft_wrap=False)
    if _in_notebook():
        # Rich's own notebook width (115 columns, JUPYTER_COLUMNS to change) fits JupyterLab's output area.
        return Console(soft_wrap=False, width=int(os.environ.get("JUPYTER_COLUMNS") or 115))
    return Console(soft_wrap=False, width=int(os.environ.get("COLUMNS") or 120))


def _in_notebook() -> bool:
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and type(shell).__name__ != "TerminalInteractiveShell"


def short_ids(run_ids: Sequence[str], *, minimum: int = 8) -> dict[str, str]:
    """Prefixes of one length (at least ``minimum`` characters) that tell the run ids shown apart.

    Run ids are time-ordered, so runs started together share a long prefix; a fixed cut would make them look
    alike. ``--json`` prints the whole ids."""
    ordered = sorted(set(run_ids))
    n = minimum
    for a, b in zip(ordered, ordered[1:]):  # sorted: only neighbours can share the longest prefix
        common = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        n = max(n, common + 1)
    return {rid: rid[:n] for rid in ordered}


def _one_line(text: str | None, limit: int = 160) -> str:
    """An error's first line, shortened: the table points at it; ``--json`` and the run's notebook keep it all."""
    if not text:
        return ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    more = len(text.strip().splitlines()) > 1
    if len(first) > limit:
        return first[: limit - 1] + "…"
    return first + (" …" if more else "")


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
    from notebook_orch.faces.cli_doctor import add_doctor_command  # doctor

    add_doctor_command(add)
    from notebook_orch.faces.cli_sla import add_sla_commands  # sla, impact, metrics

    add_sla_commands(sub, add)
    return parser


def main(argv: Sequence[str] | None = None, *, progress: Any = None, raise_errors: bool = False) -> int:
    """Run ``nbo``; ``progress`` (e.g. a notebook widget) replaces the terminal progress bar of runs.

    ``raise_errors`` (``%nbo`` in a notebook): the package's errors propagate, to be shown once as the cell's
    error, instead of being printed here and turned into an exit code."""
    args = build_parser().parse_args(argv)
    if argv is None and args.command in _ONE_SHOT_READS:
        # This process is this one command (the console script; a notebook passes argv). Its snapshot is ~10,000
        # tuples of 365 plain values that the cyclic GC would traverse item by item (~0.07 s of a 0.7 s status)
        # although none can be part of a cycle; the process ends right after the read.
        import gc

        gc.disable()
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
        if raise_errors and not getattr(args, "json", False):
            raise
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "problems": [str(p) for p in exc.problems]}, indent=2))
        else:
            print(str(exc), file=sys.stderr)
        return 1
    except NotebookOrchError as exc:
        if raise_errors:
            raise
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
    totals = report.totals()
    statuses = [k.lower() for k in totals]
    invalid_rows = [_invalid_row(bad, statuses, now=report.now) for bad in invalid]
    rows.extend(invalid_rows)
    # Invalid assets are left out of the report, so their partitions are added here: the totals line must agree
    # with the INVALID rows above it.
    totals[Status.INVALID] += sum(r["invalid"] for r in invalid_rows)
    from notebook_orch.scheduler.sla_views import sla_summary

    slas = sla_summary(project)
    pools = project.pools()
    from notebook_orch.faces.cli_auto import paused_assets

    # A pause means something only for an automated asset (--auto, --trigger); with none, nothing is read, and a
    # cold status stays on the sqlite3 read path (store/sqlite_read.py) without SQLAlchemy.
    automated = {spec.name for spec in graph.specs if spec.auto}
    paused = paused_assets(project) if automated else {}
    for r in rows:
        r["sla"] = slas.get(r["asset"])  # {"sla", "met", "missed"} from recorded verdicts, or None
        # automation paused (nbo auto pause), or None
        r["auto_paused_since"] = paused.get(r["asset"]) if r["asset"] in automated else None
        r["notes"] = _coverage_notes(graph, report, r["asset"]) if r["status"] != INVALID else []
    if args.json:
        print(json.dumps(_jsonable({"assets": rows, "totals": totals, "invalid_assets": len(invalid),
                                    "pools": pools,
                                    "other_problems": [str(p) for p in graph.other_problems]}), indent=2))
        return 0
    console = _console()
    console.print(_status_table(rows, width=console.width))
    for r in rows:
        for note in r["notes"]:
            console.print(f"{r['asset']}: {note}", highlight=False, markup=False, soft_wrap=True)
    console.print("totals: " + ", ".join(f"{k.lower()} {v}" for k, v in totals.items()))
    missed = [f"{name} {s['missed']} of {s['met'] + s['missed']}" for name, s in slas.items()
              if s["missed"] and name in names]
    if missed:
        console.print(f"[red]SLA misses[/]: {', '.join(missed)} (nbo sla lists them)", highlight=False)
    held = [f"{name} (since {since:%Y-%m-%d %H:%M} UTC)" for name, since in sorted(paused.items()) if name in chosen]
    if held:
        console.print(f"[yellow]automation paused[/]: {', '.join(held)} (nbo auto resume NAME)", highlight=False)
    if pools:
        waiting = len(project.runs(limit=10_000, status=RunStatus.WAITING.value))
        console.print("pools: " + ", ".join(_pool_text(p) for p in pools)
                      + (f"; [magenta]{waiting} run(s) WAITING[/] for a slot (nbo runs --status WAITING)"
                         if waiting else ""), highlight=False)
    _print_invalid(console, invalid, graph.other_problems)
    return 0


def _coverage_notes(graph: Any, report: Any, name: str) -> list[str]:
    """For an asset reading a dependency with [all]: how much of it its latest materialization was built from
    ("built from 31 of 365 partitions of flights_daily"), as ``nbo stale`` and ``--json`` say."""
    from notebook_orch.core.specs import AllPartitions

    if not any(isinstance(e.dep.mapping, AllPartitions) for e in graph.upstream_edges(name)):
        return []
    last = report.last_materialized(name)
    if last is None:
        return []
    partition = last[0]
    return [f"{note} (partition {partition})" if len(report.keys(name)) > 1 else note
            for note in report.explain(name, partition).notes]


def _pool_text(pool: dict[str, Any]) -> str:
    from notebook_orch.core.pools import pool_key_label

    return f"{pool_key_label(pool['pool'])} {pool['in_use']}/{pool['limit']} in use"


WIDE = 150  # below this many columns the tables drop or merge columns instead of folding every cell
NARROW = 110  # below this, a status row puts the partitions under the asset's name and shortens the time


def _status_table(rows: list[dict], *, width: int) -> Any:
    from rich.markup import escape
    from rich.table import Table

    wide, narrow = width >= WIDE, width < NARROW
    table = Table(title="Asset status", title_justify="left")
    table.add_column("asset", style="bold", overflow="fold")
    if wide:
        table.add_column("notebook", style="dim", overflow="fold")
    if not narrow:
        table.add_column("partitions", overflow="fold")
    counts = [("fresh", "green"), ("stale", "yellow"), ("missing", "bright_black"), ("failed", "red"),
              ("running", "blue")]
    if wide:
        for col, style in counts:
            table.add_column(col, style=style, justify="right", no_wrap=True)
    else:  # one column of the counts that are not zero
        table.add_column("state")
    table.add_column("last materialized")
    today = datetime.now(timezone.utc).date()  # times are naive UTC
    for r in rows:
        name = f"{r['asset']}\n[dim]{escape(r['partitions'] or '?')}[/]" if narrow else r["asset"]
        parts = [] if narrow else [escape(r["partitions"] or "?")]
        if r["status"] == INVALID:
            shown = [*["-"] * len(counts), "[red]INVALID[/]"] if wide else ["[red]INVALID[/]", "-"]
            table.add_row(name, *([escape(r["notebook"] or "")] if wide else []), *parts, *shown)
            continue
        when = r["last_materialized"]
        if when is None:
            last = "-"
        elif narrow:
            last = f"{when:%H:%M}" if when.date() == today else f"{when:%Y-%m-%d}"
            last += f" ({r['last_partition']})"
        else:
            last = f"{when:%Y-%m-%d %H:%M} ({r['last_partition']})"
        last = escape(last)
        if wide:
            middle = [escape(r["notebook"] or ""), *parts, *(str(r[k]) for k, _ in counts)]
        else:
            state = ", ".join(f"[{style}]{r[k]} {k}[/]" for k, style in counts if r[k]) or "-"
            middle = [*parts, state]
        table.add_row(name, *middle, last)
    return table


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
                      "problem):", highlight=False, soft_wrap=True)
    for bad in invalid:
        console.print(f"  {bad.name}: INVALID - {bad.describe(located=True)}", highlight=False, markup=False,
                      soft_wrap=True)
    if other:
        console.print(f"{len(other)} other problem(s) in the notebooks (e.g. a file that cannot be read); nbo "
                      "validate lists them.", highlight=False, markup=False, soft_wrap=True)


def cmd_stale(project: Any, args: argparse.Namespace) -> int:
    from notebook_orch.faces.stale_view import stale_view

    graph = project.graph
    chosen = graph.select(args.assets, include_invalid=True)
    invalid = [graph.invalid[n] for n in chosen if n in graph.invalid]
    view = stale_view(project, [n for n in chosen if n in graph])
    if args.json:
        data = view.to_json()
        data["stale"] = [*data["stale"], *({
            "asset": bad.name, "partition": None, "status": INVALID,
            "causes": [{"kind": "invalid", "message": str(p)} for p in bad.problems], "root_causes": [],
        } for bad in invalid)]
        print(json.dumps(_jsonable(data), indent=2))
        return 0
    console = _console()
    if view.stale or not invalid:
        for line in view.lines():  # plain lines: wrapped by the terminal, not cut into pieces by rich
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    _print_invalid(console, invalid, ())
    return 0


def cmd_lineage(project: Any, args: argparse.Namespace) -> int:
    fmt = "json" if args.json else args.format
    print(project.lineage(fmt, with_status=not args.no_status))
    return 0


def cmd_runs(project: Any, args: argparse.Namespace) -> int:
    from notebook_orch.core.pools import pool_key_label

    runs = project.runs(limit=args.limit, status=args.status, asset=args.asset)
    dead = {r.run_id for r in project.presumed_dead()}
    waiting = any(r.status == RunStatus.WAITING for r in runs)
    # The store's first-come, first-served queue: where each waiting run stands in each pool it waits in.
    queue = {w.run_id: w for w in project.pool_waiters()} if waiting else {}
    if args.json:
        print(json.dumps([{**_jsonable(r), "presumed_dead": r.run_id in dead,
                           **({"pool_queue": {"position": queue[r.run_id].position,
                                              "ahead": dict(queue[r.run_id].ahead)}} if r.run_id in queue else {})}
                          for r in runs], indent=2))
        return 0
    console = _console()
    waiting_note = ""
    if waiting:
        full = [p for p in project.pools() if p["in_use"] >= p["limit"]]
        waiting_note = "waiting for a pool slot" + (
            f" (full: {', '.join(_pool_text(p) for p in full)})" if full else "")
    notes = {run_id: waiting_note + "; " + ", ".join(f"{n} ahead in {pool_key_label(p)}"
                                                      for p, n in sorted(w.ahead.items()))
             for run_id, w in queue.items()}
    console.print(_runs_table(runs, dead, wide=console.width >= WIDE, waiting_note=waiting_note, notes=notes))
    if runs:
        console.print("run ids are shortened; nbo runs --json shows them whole", style="dim", highlight=False)
    return 0


def _runs_table(runs: list, dead: set[str], *, wide: bool, waiting_note: str = "",
                notes: dict[str, str] | None = None) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Runs (newest first)", title_justify="left")
    table.add_column("run", no_wrap=True)
    table.add_column("status")
    if wide:
        for col in ("kind", "notebook", "partitions", "assets"):
            table.add_column(col, overflow="fold")
    else:
        table.add_column("notebook \\[partitions]", overflow="fold")
    table.add_column("started")
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("error", overflow="fold", ratio=1, min_width=10)
    colour = {RunStatus.SUCCESS: "green", RunStatus.FAILED: "red", RunStatus.RUNNING: "blue",
              RunStatus.CANCELED: "yellow", RunStatus.WAITING: "magenta"}
    ids = short_ids([r.run_id for r in runs])
    today = datetime.now(timezone.utc).date()  # run times are naive UTC
    for r in runs:
        took = f"{(r.ended_at - r.started_at).total_seconds():.2f}s" if r.ended_at else "-"
        parts = ",".join(r.partition_keys[:3]) + (f" +{len(r.partition_keys) - 3}" if len(r.partition_keys) > 3
                                                  else "")
        shown = f"[{colour.get(r.status, 'white')}]{r.status}[/]" + (
            " [red](no heartbeat: presumed dead; nbo reap)[/]" if r.run_id in dead else "")
        if wide:
            middle = [r.kind, escape(r.notebook or ""), escape(parts), ", ".join(r.assets)]
            started = f"{r.started_at:%Y-%m-%d %H:%M:%S}"
        else:
            middle = [escape(f"{(r.notebook or '').removeprefix('notebooks/')} [{parts}]")]
            started = f"{r.started_at:%H:%M:%S}" if r.started_at.date() == today else f"{r.started_at:%m-%d %H:%M}"
        note = (notes or {}).get(r.run_id, waiting_note) if r.status == RunStatus.WAITING else _one_line(r.error)
        table.add_row(ids[r.run_id], shown, *middle, started, took, escape(note))
    return table


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
