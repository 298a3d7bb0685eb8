"""Benchmark group ``trigger`` (pure core part): one evaluation pass over 10,000 pending joins after a burst of
events, the reach of that burst, and the per-pass cost of checking 100 schedules for due ticks.

Run: ``PYTHONPATH=. python benchmarks/bench_trigger.py [pure|latency|tick|idle]...`` (all by default). The daemon
figures — trigger latency p50/p99 over 200 triggers, tick accuracy, idle CPU — drive a real ``nbo scheduler``
process (``_trigger_daemon.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from _common import median_seconds, report

from notebook_orch.core.schedule import CatchupPolicy, plan_catchup
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.status import Status
from notebook_orch.core.triggers import evaluate_joins, reached_joins

NOW = datetime(2024, 9, 27, 12)  # 1,000 daily partitions since 2022-01-01 have ended


def project(n_down: int = 10) -> dict:
    lines = [f"up{i} --partitions daily:2022-01-01" for i in range(n_down + 1)]
    lines += [f"down{i} --deps up{i},up{i + 1} --partitions daily:2022-01-01 --auto" for i in range(n_down)]
    return {s.name: s for s in (parse_declaration(line) for line in lines)}


def main() -> None:
    specs = project()
    keys = specs["up0"].partitions.keys(now=NOW)
    assert len(keys) == 1000
    changes = [(f"up{i}", k) for i in range(11) for k in keys]
    reached: list = []

    def reach() -> None:
        reached[:] = reached_joins(specs, changes, now=NOW, automated=lambda n: specs[n].auto)

    report("reach_11k_changes", median_seconds(reach, repeat=3), "s")
    assert len(reached) == 10_000
    # Half the upstream partitions fresh: every join is decided (half start, half keep waiting).
    fresh = {(a, k) for a, k in changes if hash(k) % 2 == 0}

    def status_of(asset: str, key: str) -> Status:
        if asset.startswith("down"):
            return Status.MISSING
        return Status.FRESH if (asset, key) in fresh else Status.STALE

    plans: list = []

    def evaluate() -> None:
        plans[:] = [evaluate_joins(specs, reached, status_of=status_of, running=lambda a, k: False, now=NOW)]

    report("evaluation_10k", median_seconds(evaluate, repeat=3), "s", "< 1 s")
    plan = plans[0]
    assert len(plan.start) + len(plan.waiting) == 10_000
    now = datetime(2024, 9, 27, 12, 0, 30, tzinfo=timezone.utc)
    last = now - timedelta(minutes=1)

    def ticks() -> None:
        for i in range(100):
            plan_catchup(f"{i % 60} * * * *", "Europe/Berlin", last_tick=last, now=now, policy=CatchupPolicy("all"))

    report("due_ticks_100_schedules", median_seconds(ticks, repeat=5), "s")


def run(parts: list[str] | None = None) -> None:
    import _trigger_daemon as daemon

    wanted = parts or ["pure", "latency", "tick", "idle"]
    if "pure" in wanted:
        main()
    if "latency" in wanted:
        daemon.trigger_latency(report)
    if "tick" in wanted:
        daemon.tick_accuracy(report)
    if "idle" in wanted:
        daemon.idle_cpu(report)


if __name__ == "__main__":
    import sys

    run(sys.argv[1:])
