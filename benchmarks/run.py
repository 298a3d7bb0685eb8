"""Run the benchmark groups: ``python benchmarks/run.py [GROUP...] [--size small|full]`` (all groups when none is
named).

Each group is a module ``bench_<group>.py`` beside this file with a ``run()`` that prints one line per figure. A
group whose ``run`` takes ``size`` gets ``--size`` (``small``: a quick sanity check of the machinery; ``full``, the
default: the measurement, for a quiet machine).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

GROUPS = ["staleness", "store", "discovery", "startup", "backfill", "engine", "lineage", "scale", "widget", "trigger",
          "reliability", "sla"]


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    parser = argparse.ArgumentParser(prog="benchmarks/run.py")
    parser.add_argument("groups", nargs="*", metavar="GROUP")
    parser.add_argument("--size", choices=["small", "full"], default="full",
                        help="for the groups that have sizes (reliability): small = a quick sanity check")
    args = parser.parse_args(argv)
    wanted = args.groups or GROUPS
    unknown = [g for g in wanted if g not in GROUPS]
    if unknown:
        print(f"unknown group(s) {unknown}; choose from {GROUPS}", file=sys.stderr)
        return 2
    for group in wanted:
        try:
            module = importlib.import_module(f"bench_{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench_{group}":
                print(f"# group {group}: not written yet")
                continue
            raise
        print(f"# group {group}", flush=True)
        sized = "size" in inspect.signature(module.run).parameters
        module.run(**({"size": args.size} if sized else {}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
