"""``nbo doctor [--fix]``: the store-and-data integrity check (notebook_orch/doctor.py) as a command.

Exit code 0 when the project is consistent (after the repairs, with ``--fix``), 1 when a problem remains.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_doctor_command(add: Any) -> None:
    p = add("doctor", "check that the store's records, the value files, their markers and the event log agree; "
                      "--fix repairs what is safe to repair")
    p.add_argument("--fix", action="store_true",
                   help="reap dead runs, release orphan locks, remove leftovers of known runs, move unvouched values "
                        "to .notebook_orch/quarantine (never deletes what it cannot identify as ours)")
    p.set_defaults(handler=cmd_doctor)


def cmd_doctor(project: Any, args: argparse.Namespace) -> int:
    from notebook_orch.doctor import to_json

    result = project.doctor(fix=args.fix)
    if args.json:
        print(json.dumps(to_json(result), indent=2))
        return 0 if result.consistent else 1
    _print_findings(result.before.findings, heading="found")
    for r in result.repairs:
        mark = "fixed" if r.done else "NOT fixed"
        print(f"  {mark}: {r.finding.code} {r.finding.subject}: {r.outcome}")
    if result.after is not None:
        left = [f for f in result.after.findings]
        if left:
            _print_findings(left, heading="still found after --fix")
    if result.quarantine:
        print(f"Quarantined files are in {result.quarantine}: look at them, then delete the folder.")
    checked = ", ".join(f"{n} {what}" for what, n in result.final.checked.items())
    errors = sum(1 for f in result.final.findings if f.severity == "error")
    if result.consistent:
        print(f"consistent ({checked})" if checked else "consistent")
        return 0
    hint = "" if args.fix or not result.final.repairable else " (nbo doctor --fix repairs what is marked repairable)"
    print(f"INCONSISTENT: {errors} problem(s){hint}")
    return 1


def _print_findings(findings: Any, *, heading: str) -> None:
    if not findings:
        return
    print(f"{len(findings)} problem(s) {heading}:")
    for f in findings:
        tag = "" if f.repair is None else f" [repairable: {f.repair}]"
        print(f"- {f.severity.upper()} {f.code} {f.subject}{tag}\n    {f.message}\n    what to do: {f.fix}")
