"""``nbo auto preview|pause|resume``: what the scheduler's triggers would start, and automation paused per asset.
``%nbo auto ...`` reaches the same code through the CLI's main.

Pausing an ``--auto`` asset stops the daemon from starting it (from its next pass) and forgets its pending joins;
resuming acts only on what changes from then on — what happened while paused does not replay, the same rule as
turning automation on. Both are kept in the store (``auto_pauses``), so every daemon and face sees them.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any


def add_auto_command(add: Any) -> None:
    p = add("auto", "data-aware triggers: preview what the next scheduler pass would start; pause or resume "
                    "automation of an asset")
    p.set_defaults(handler=cmd_auto)
    p.add_argument("action", choices=["preview", "pause", "resume"])
    p.add_argument("asset", nargs="?", help="the --auto asset to pause or resume")


def cmd_auto(project: Any, args: argparse.Namespace) -> int:
    if args.action == "preview":
        return _preview(project, args)
    from notebook_orch.faces.cli import BadArguments

    if not args.asset:
        raise BadArguments(f"nbo auto {args.action} needs the asset, e.g. nbo auto {args.action} daily_report.")
    _check_automated(project, args.asset)
    sched = project.store.scheduling
    now = datetime.now(timezone.utc)
    if args.action == "pause":
        rec = sched.pause_auto(args.asset, now=now)
        text = (f"{args.asset}: automation paused; the scheduler starts nothing for it until "
                f"`nbo auto resume {args.asset}` (its pending joins were dropped)")
    else:
        rec = sched.resume_auto(args.asset, now=now)
        text = (f"{args.asset}: automation resumed; it acts on what changes from now on" if rec is not None
                else f"{args.asset}: automation was not paused; nothing changed")
    if args.json:
        print(json.dumps({"asset": args.asset, "paused": bool(rec is not None and rec.paused),
                          "changed": rec is not None}, indent=2))
    else:
        print(text)
    return 0


def _check_automated(project: Any, asset: str) -> None:
    """Only an asset of the project that is --auto (or has a --trigger) can be paused: anything else is a typo or
    a misunderstanding, said with the fix."""
    from notebook_orch.errors import close_matches
    from notebook_orch.faces.cli import BadArguments

    graph = project.graph
    if asset in graph.invalid:
        return  # broken now, --auto once fixed maybe: pausing it is the user's call
    if asset not in graph:
        known = sorted(s.name for s in graph.specs if s.auto)
        raise BadArguments(f"No asset is named {asset!r}; `nbo auto preview` lists the automated ones."
                             + close_matches(asset, known))
    if not graph.spec(asset).auto:
        raise BadArguments(f"Asset {asset!r} is not automated (no --auto or --trigger on its %%asset line), so "
                             "the scheduler never starts it by itself: there is nothing to pause.")


def paused_assets(project: Any) -> dict[str, datetime]:
    """Assets whose automation is paused now -> since when (naive UTC)."""
    return {a: p.changed_at for a, p in project.store.scheduling.auto_pauses().items() if p.paused}


def _preview(project: Any, args: argparse.Namespace) -> int:
    from notebook_orch.scheduler import Scheduler

    plan = Scheduler(project).preview()
    paused = paused_assets(project)
    out = {"would_start": [list(k) for k in plan.start],
           "waiting": [{"asset": d.asset, "partition": d.partition, "reason": d.reason,
                        "waiting_on": [list(w) for w in d.waiting_on]} for d in plan.waiting],
           "paused": [{"asset": a, "since": since.isoformat()} for a, since in sorted(paused.items())]}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if not plan.start and not plan.waiting:
        print("nothing pending: no --auto asset is waiting on a change")
    for a, p in plan.start:
        print(f"would start  {a}[{p}]")
    for d in plan.waiting:
        on = ", ".join(f"{a}[{k}]" for a, k in d.waiting_on[:5])
        print(f"waiting      {d.asset}[{d.partition}]: {d.reason}" + (f" ({on})" if on else ""))
    for a, since in sorted(paused.items()):
        print(f"paused       {a}: since {since:%Y-%m-%d %H:%M} UTC (nbo auto resume {a})")
    return 0


__all__ = ["add_auto_command", "cmd_auto", "paused_assets"]
