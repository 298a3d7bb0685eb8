"""``nbo sla``, ``nbo impact`` and ``nbo metrics``: thin faces over scheduler/sla_views.py and the pure core
(core/sla.py, core/impact.py, core/metrics.py). ``%nbo sla|impact|metrics`` reach the same code through the CLI's
main. Reads only: nothing here writes to the store."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from typing import Any


def _duration(option: str, *, most: timedelta = timedelta(days=366)):  # noqa: ANN202 - an argparse type
    def parse(text: str) -> timedelta:
        from notebook_orch.core.sla import SlaError, parse_duration

        try:
            return parse_duration(text, most=most)
        except SlaError as exc:
            raise argparse.ArgumentTypeError(f"{option} {exc}") from None

    parse.__name__ = "duration"
    return parse


def add_sla_commands(sub: Any, add: Any) -> None:
    p = add("sla", "per-partition SLAs: recorded hits and misses, deadlines not judged yet, the next deadline")
    p.set_defaults(handler=cmd_sla)
    p.add_argument("assets", nargs="?", default="*", help="selection: name, +name, name+, * (default)")
    p.add_argument("--since", type=_duration("--since", most=timedelta(days=3660)), default=timedelta(days=7),
                   metavar="DURATION", help="deadlines this far back (default 7d), e.g. 2d, 12h")
    p.add_argument("--alerts", action="store_true", help="list the alert queue instead (SENT, PENDING, FAILED, "
                                                          "NO_HOOK)")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _when(t: datetime | None) -> str:
    return "-" if t is None else f"{t:%Y-%m-%d %H:%M} UTC"


def cmd_sla(project: Any, args: argparse.Namespace) -> int:
    from notebook_orch.scheduler.sla_views import sla_rows

    if args.alerts:
        return _alerts(project, args)
    names = [n for n in project.graph.select(args.assets) if n in project.graph]
    now = _now()
    rows = sla_rows(project, assets=names, since=args.since, now=now)
    if args.json:
        print(json.dumps({"now": now.isoformat(), "partitions": [
            {**r.__dict__, "deadline": r.deadline.isoformat()} for r in rows]}, indent=2))
        return 0
    if not rows:
        print("no SLA declared on the selected assets (declare one with %%asset NAME ... --sla '06:00')")
        return 0
    from rich.table import Table

    from notebook_orch.faces.cli import _console

    table = Table(title=f"SLAs (deadlines since {now - args.since:%Y-%m-%d %H:%M} UTC, and the next one)",
                  title_justify="left")
    for col in ("asset", "partition", "sla", "deadline", "verdict", "status now"):
        table.add_column(col, overflow="fold")
    style = {"MET": "green", "MISSED": "red", "OPEN": "blue"}
    for r in rows:
        verdict = f"[{style[r.verdict]}]{r.verdict}[/]" + (f" ({r.reason})" if r.reason else "")
        if r.verdict == "OPEN" and r.at_risk:
            verdict += " [yellow]at risk: not fresh yet[/]"
        elif r.verdict != "OPEN" and not r.recorded:
            verdict += " [dim](not judged by the daemon)[/]"
        table.add_row(r.asset, r.partition, r.sla, _when(r.deadline), verdict, r.status)
    console = _console()
    console.print(table)
    judged = [r for r in rows if r.verdict in ("MET", "MISSED")]
    if judged:
        met = sum(r.verdict == "MET" for r in judged)
        console.print(f"hit rate {met}/{len(judged)} ({100 * met / len(judged):.0f} %)", highlight=False)
    return 0


def _alerts(project: Any, args: argparse.Namespace) -> int:
    alerts = project.store.sla.alerts(limit=1000)
    if args.json:
        print(json.dumps([{**a.__dict__, "created_at": a.created_at.isoformat(),
                           "sent_at": a.sent_at.isoformat() if a.sent_at else None} for a in alerts], indent=2))
        return 0
    if not alerts:
        print("no alerts: no SLA was missed and no run failed after its last retry while the daemon ran")
    for a in alerts:
        extra = f" ({a.last_error})" if a.last_error else ""
        print(f"{_when(a.created_at)}  {a.state:<8} {a.kind:<11} {a.payload.get('message', a.key)}{extra}")
    return 0
