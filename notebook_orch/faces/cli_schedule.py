"""``nbo schedule ...`` and ``nbo scheduler``: thin faces over the store's schedules and the
daemon (notebook_orch/scheduler). ``%nbo schedule ...`` reaches the same code through the CLI's main."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
_PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_schedule_commands(sub: Any, add: Any) -> None:
    p = add("schedule", "cron schedules of runs: add, list, pause, resume, delete, history")
    p.set_defaults(handler=cmd_schedule)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("add", help="add a schedule")
    a.add_argument("name")
    a.add_argument("--cron", required=True, metavar="EXPR", help="five-field cron, e.g. '0 6 * * *'")
    a.add_argument("--select", required=True, metavar="SELECTION", help="name, +name, name+, *; comma list")
    a.add_argument("--partition", default="latest", metavar="latest|TEMPLATE",
                   help="latest (the last complete partition at tick time) or a template: '{yesterday}', "
                        "'{tick:%%Y-%%m}', a fixed key")
    a.add_argument("--param", action="append", default=[], metavar="K=V", help="a notebook parameter; repeatable")
    a.add_argument("--timezone", default="UTC", metavar="TZ", help="IANA time zone of the cron (default UTC)")
    a.add_argument("--catchup", default="latest", metavar="none|latest|all[:N]",
                   help="after downtime: drop missed ticks, fire the newest, or fire all (the newest N)")
    for name, help_text in [("list", "schedules with their next tick"), ("pause", "stop a schedule's ticks"),
                            ("resume", "restart a schedule's ticks (missed ones while paused never fire)"),
                            ("delete", "delete a schedule (its history stays)"),
                            ("history", "recorded ticks, newest first")]:
        q = actions.add_parser(name, help=help_text)
        if name in ("pause", "resume", "delete"):
            q.add_argument("name")
        if name == "history":
            q.add_argument("name", nargs="?")
            q.add_argument("--limit", type=int, default=20)
    for q in actions.choices.values():
        q.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("scheduler", "the scheduler daemon: cron ticks and --auto triggers (foreground; SIGTERM stops it)")
    p.set_defaults(handler=cmd_scheduler)
    p.add_argument("--once", action="store_true", help="evaluate once and exit")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="longest wait for an event between passes (at rest a full pass every 5 s; sources are "
                        "looked at every interval)")
    p.add_argument("--lease-ttl", type=float, default=15.0, metavar="SECONDS",
                   help="a standby takes over this long after the holder stops renewing")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="runs at once per plan")
    p.add_argument("--executor", default="local", metavar="NAME")

    from notebook_orch.faces.cli_auto import add_auto_command

    add_auto_command(add)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _params(pairs: list[str]) -> dict[str, str]:
    from notebook_orch.core.schedule import ScheduleError

    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _PARAM_KEY.match(key.strip()):
            raise ScheduleError(f"--param {pair!r} is not K=V with K a Python identifier, e.g. --param region=eu.")
        out[key.strip()] = value
    from notebook_orch.core.parameters import check_parameters
    from notebook_orch.errors import InvalidOption

    try:
        return check_parameters(out)
    except InvalidOption as exc:
        raise ScheduleError(f"--param: {exc}") from None


def _check_add(project: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Validate everything before writing: every problem together, naming the value and the fix."""
    from notebook_orch.core.schedule import (
        ScheduleError,
        check_cron,
        next_tick,
        parse_catchup,
        target_partition,
        zone,
    )

    problems: list[str] = []
    values: dict[str, Any] = {}

    def attempt(fn: Any, *a: Any) -> Any:
        try:
            return fn(*a)
        except Exception as exc:  # collect, report together
            problems.append(str(exc))
            return None

    if not _NAME.match(args.name):
        problems.append(f"schedule name {args.name!r} must be letters, digits, '_', '.', '-' (e.g. morning_sales).")
    values["cron"] = attempt(check_cron, args.cron)
    attempt(zone, args.timezone)
    catchup = attempt(parse_catchup, args.catchup)
    values["params"] = attempt(_params, args.param)
    names = attempt(project.graph.select, args.select)
    if names is not None and not names:
        problems.append(f"--select {args.select!r} selects no asset.")
    if not problems and names:
        tick = next_tick(values["cron"], args.timezone, _now())
        for name in names:
            try:
                target_partition(project.graph.spec(name).partitions, args.partition, tick, args.timezone)
            except ScheduleError as exc:
                problems.append(f"asset {name!r}: {exc}")
    if problems:
        raise ScheduleError(f"nbo schedule add {args.name}: " + " ".join(problems) + " Nothing was stored.")
    values["catchup"] = catchup.describe()
    return values


def cmd_schedule(project: Any, args: argparse.Namespace) -> int:
    from notebook_orch.scheduler.declared import declared_schedules, sync_declared

    sched = project.store.scheduling
    if args.action == "add":
        v = _check_add(project, args)
        rec = sched.add_schedule(name=args.name, cron=v["cron"], selection=args.select,
                                 partition_rule=args.partition, params=v["params"], timezone=args.timezone,
                                 catchup=v["catchup"], now=_now())
        _say(args, {"added": rec.name}, f"added schedule {rec.name}: {rec.cron} ({rec.timezone}) over "
                                         f"{rec.selection}, partition {rec.partition_rule}, catch-up {rec.catchup}")
        return 0
    if args.action in ("pause", "resume"):
        sync_declared(project, now=_now())
        rec = sched.set_paused(args.name, args.action == "pause", now=_now())
        _say(args, {"name": rec.name, "paused": rec.paused}, f"{rec.name}: {'paused' if rec.paused else 'resumed'}")
        return 0
    if args.action == "delete":
        stored = sched.get_schedule(args.name)
        if stored is not None and stored.origin == "asset" and args.name in declared_schedules(
                project.graph, now=_now()):
            from notebook_orch.core.schedule import ScheduleError

            raise ScheduleError(f"schedule {args.name!r} is declared by asset {args.name!r} (--schedule); remove "
                                "--schedule from its %%asset line, or pause it with nbo schedule pause.")
        sched.delete_schedule(args.name)
        _say(args, {"deleted": args.name}, f"deleted schedule {args.name}")
        return 0
    if args.action == "list":
        return _list(project, args)
    return _history(project, args)


def _list(project: Any, args: argparse.Namespace) -> int:
    from notebook_orch.core.schedule import next_tick
    from notebook_orch.scheduler.declared import declared_schedules

    sched = project.store.scheduling
    now = _now()
    rows = {s.name: s for s in sched.list_schedules()}
    for name, rec in declared_schedules(project.graph, now=now).items():
        rows.setdefault(name, rec)  # declared but not stored yet (the daemon stores it): reads never write
    out = []
    for s in sorted(rows.values(), key=lambda r: r.name):
        last = sched.last_tick_at(s.name)
        out.append({"name": s.name, "cron": s.cron, "timezone": s.timezone, "selection": s.selection,
                    "partition": s.partition_rule, "params": dict(s.params), "catchup": s.catchup,
                    "paused": s.paused, "origin": s.origin,
                    "next_tick": None if s.paused else next_tick(s.cron, s.timezone, now).isoformat(),
                    "last_tick": last.isoformat() + "Z" if last else None})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if not out:
        print("no schedules; add one with: nbo schedule add NAME --cron '0 6 * * *' --select ASSET")
        return 0
    from rich.table import Table

    from notebook_orch.faces.cli import _console

    table = Table("schedule", "cron", "tz", "select", "partition", "catch-up", "state", "next tick", "last tick")
    for r in out:
        table.add_row(r["name"], r["cron"], r["timezone"], r["selection"], r["partition"], r["catchup"],
                      "paused" if r["paused"] else "active", r["next_tick"] or "-", r["last_tick"] or "-")
    _console().print(table)
    return 0


def _history(project: Any, args: argparse.Namespace) -> int:
    ticks = project.store.scheduling.ticks(args.name, limit=args.limit)
    out = [{"schedule": t.schedule, "tick": t.tick_at.isoformat() + "Z", "partition": t.partition,
            "status": t.status, "runs": list(t.run_ids), "message": t.message} for t in ticks]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if not out:
        print("no ticks recorded yet" + (f" for {args.name}" if args.name else ""))
        return 0
    for r in out:
        runs = f"{len(r['runs'])} run id(s)" if r["runs"] else "no runs"
        print(f"{r['tick']}  {r['schedule']:<20} {r['status']:<9} {r['partition'] or '-':<12} {runs}"
              + (f"  {r['message']}" if r["message"] else ""))
    return 0


def _say(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if getattr(args, "json", False) else text)


def cmd_scheduler(project: Any, args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from notebook_orch.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    daemon = Scheduler(project, lease_ttl_s=args.lease_ttl, executor=args.executor, workers=args.workers)
    if args.once:
        report = daemon.run_once()
        daemon.finish()  # the runs it started end before the command does, then the lease is released
        _say(args, {"leader": report.leader, "ticks": len(report.ticks_fired), "triggered": len(report.triggered),
                    "waiting": report.waiting, "reaped": report.reaped, "retried": report.retried},
             f"leader={report.leader} ticks fired={len(report.ticks_fired)} triggered={len(report.triggered)} "
             f"waiting={report.waiting} reaped={report.reaped} retried={report.retried}")
        return 0
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        logging.getLogger("notebook_orch.scheduler").info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.serve(stop, interval_s=args.interval)
    return 0
