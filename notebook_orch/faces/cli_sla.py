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

    p = add("impact", "what a delay of one partition does downstream: affected partitions, projected completion "
                      "along the critical path, SLAs it would miss")
    p.set_defaults(handler=cmd_impact)
    p.add_argument("asset", metavar="ASSET")
    p.add_argument("--partition", metavar="KEY", help="the delayed partition (default: the latest)")
    p.add_argument("--delay", type=_duration("--delay"), default=timedelta(0), metavar="DURATION",
                   help="how late it will be, e.g. 2h, 30m, 1d (default 0: the projection as things stand)")

    p = add("metrics", "scheduler metrics over a window: runs blocked on dependencies, dependency wait, trigger "
                       "latency, failure propagation depth, SLA hit rate")
    p.set_defaults(handler=cmd_metrics)
    p.add_argument("--since", type=_duration("--since", most=timedelta(days=3660)), default=timedelta(days=7),
                   metavar="DURATION", help="the window, back from now (default 7d)")


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
    judged = [r for r in rows if r.recorded]
    unjudged = sum(r.verdict != "OPEN" and not r.recorded for r in rows)
    if judged:
        met = sum(r.verdict == "MET" for r in judged)
        console.print(f"hit rate {met}/{len(judged)} ({100 * met / len(judged):.0f} %) of the deadlines the daemon "
                      "judged", highlight=False)
    if unjudged:
        console.print(f"{unjudged} deadline(s) passed with no daemon watching (before the SLA was declared, or while "
                      "it was down): shown as they stand now, not counted", highlight=False)
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


def _impact_json(report: Any) -> dict[str, Any]:
    def node(n: Any) -> dict[str, Any]:
        return {"asset": n.asset, "partition": n.partition, "depth": n.depth, "projected_done": n.done.isoformat(),
                "projected_done_without_delay": n.done_without_delay.isoformat(), "median_duration_s": n.duration_s,
                "has_history": n.has_history, "via": list(n.via) if n.via else None, "sla": n.sla,
                "deadline": n.deadline.isoformat() if n.deadline else None, "deadline_passed": n.deadline_passed,
                "misses": n.misses,
                "misses_anyway": n.misses_anyway}

    return {"source": list(report.source), "delay_s": report.delay.total_seconds(), "now": report.now.isoformat(),
            "affected": [node(n) for n in report.downstream], "source_projection": node(report.nodes[0]),
            "sla_misses_caused": [list((n.asset, n.partition)) for n in report.sla_misses],
            "sla_misses_anyway": [list((n.asset, n.partition)) for n in report.missed_anyway],
            "critical_path": [list(k) for k in report.critical_path()]}


def cmd_impact(project: Any, args: argparse.Namespace) -> int:
    from notebook_orch.core.ranges import describe_ranges, key_ranges
    from notebook_orch.core.sla import format_duration
    from notebook_orch.scheduler.sla_views import impact

    now = _now()
    report = impact(project, args.asset, partition=args.partition, delay=args.delay, now=now)
    if args.json:
        print(json.dumps(_impact_json(report), indent=2))
        return 0
    from rich.markup import escape
    from rich.table import Table

    from notebook_orch.faces.cli import _console

    console = _console()
    src = report.nodes[0]
    delay = format_duration(report.delay) if report.delay else "no delay"
    console.print(f"[bold]{escape(src.asset)}[{escape(src.partition)}][/] delayed by {delay}: projected done "
                  f"{_when(src.done)} (as things stand: {_when(src.done_without_delay)}); now {_when(now)}",
                  highlight=False)
    down = report.downstream
    if not down:
        console.print("nothing downstream reads it", highlight=False)
    else:
        by_asset: dict[str, list[Any]] = {}
        for n in down:
            by_asset.setdefault(n.asset, []).append(n)
        console.print(f"{len(down)} downstream partition(s) of {len(by_asset)} asset(s) affected", highlight=False)
        table = Table(title_justify="left")
        for col in ("asset", "partitions", "projected done", "without the delay", "median run", "SLA"):
            table.add_column(col, overflow="fold")
        for name, nodes in by_asset.items():
            order = project.graph.spec(name).partitions.keys(now=max(n.done for n in nodes))
            parts = describe_ranges(key_ranges([n.partition for n in nodes], order))
            last = max(nodes, key=lambda n: n.done)
            base = max(n.done_without_delay for n in nodes)
            run = format_duration(last.duration_s) if last.has_history else "[dim]no past run (0s)[/]"
            table.add_row(escape(name), escape(parts), _when(last.done), _when(base), run, _sla_cell(nodes))
        console.print(table)
    caused, anyway = report.sla_misses, report.missed_anyway
    if caused:
        console.print(f"[red]SLAs this delay would miss ({len(caused)})[/]:", highlight=False)
        for n in caused:
            console.print(f"  {n.asset}[{n.partition}] --sla {n.sla!r}: due {_when(n.deadline)}, projected "
                          f"{_when(n.done)} ({format_duration(-n.slack_s)} late); path "
                          + " -> ".join(f"{a}[{k}]" for a, k in report.critical_path((n.asset, n.partition))),
                          highlight=False, markup=False)
    elif any(n.deadline and not n.deadline_passed for n in report.nodes):
        console.print("[green]no SLA would be missed because of this delay[/]", highlight=False)
    if anyway:
        console.print(f"[yellow]already projected to miss without the delay ({len(anyway)})[/]: "
                      + ", ".join(f"{n.asset}[{n.partition}]" for n in anyway[:10])
                      + (" ..." if len(anyway) > 10 else ""), highlight=False)
    if down:
        path = report.critical_path()
        console.print("critical path: " + " -> ".join(f"{a}[{k}]" for a, k in path), highlight=False,
                      markup=False)
    return 0


def _sla_cell(nodes: list[Any]) -> str:
    with_sla = [n for n in nodes if n.deadline is not None and not n.deadline_passed]
    if not with_sla:
        return "deadline passed" if any(n.deadline for n in nodes) else "-"
    caused = [n for n in with_sla if n.misses and not n.misses_anyway]
    anyway = [n for n in with_sla if n.misses_anyway]
    if caused:
        return f"[red]{len(caused)} missed by the delay[/]" + (f", {len(anyway)} anyway" if anyway else "")
    if anyway:
        return f"[yellow]{len(anyway)} missed anyway[/]"
    tight = min(with_sla, key=lambda n: n.slack_s)
    from notebook_orch.core.sla import format_duration

    return f"[green]met[/] (slack {format_duration(tight.slack_s)})"


def _stats_text(st: Any, *, unit: str = "s") -> str:
    from notebook_orch.core.sla import format_duration

    if not st.count:
        return "no sample"
    show = (lambda v: format_duration(v) if v >= 60 else f"{v:.2f} s") if unit == "s" else (lambda v: f"{v:g}")
    return f"p50 {show(st.p50)}, p90 {show(st.p90)}, p99 {show(st.p99)}, mean {show(st.mean)}, max {show(st.max)}" \
           f" ({st.count} sample{'s' if st.count != 1 else ''})"


def cmd_metrics(project: Any, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from notebook_orch.core.sla import format_duration
    from notebook_orch.scheduler.sla_views import metrics

    now = _now()
    m = metrics(project, since=args.since, now=now)
    if args.json:
        out = asdict(m)
        out.update(since=m.since.isoformat(), now=m.now.isoformat(), sla_hit_rate=m.sla_hit_rate)
        print(json.dumps(out, indent=2))
        return 0
    rate = "no deadline in the window" if m.sla_hit_rate is None else (
        f"{100 * m.sla_hit_rate:.1f} % ({m.sla_met} met, {m.sla_missed} missed)")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(m.runs_by_kind.items())) or "none"
    states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(m.runs.items()) if k != "total")
    oldest = f", oldest waiting {format_duration(m.oldest_blocked_s)}" if m.oldest_blocked_s is not None else ""
    lines = [
        f"window: {_when(m.since)} .. {_when(m.now)}",
        f"runs: {m.runs.get('total', 0)}" + (f" ({states}; by kind: {kinds})" if m.runs.get("total") else ""),
        f"runs blocked waiting on dependencies: {m.blocked_runs} triggered run(s) waited; pending now: "
        f"{m.blocked_now}{oldest}",
        f"dependency wait: {_stats_text(m.dependency_wait_s)}",
        f"trigger latency (last new input landed -> run started): {_stats_text(m.trigger_latency_s)}",
        f"failures after the last retry: {m.final_failures}; propagation depth: "
        f"{_stats_text(m.failure_depth, unit='levels')}",
        f"SLA hit rate: {rate}",
    ]
    print("\n".join(lines))
    return 0
