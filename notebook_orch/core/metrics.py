"""``nbo metrics``, pure: how the scheduler's runs went over a window, from facts the store recorded.

Definitions (docs/scheduling.md repeats them):

- **Trigger latency** of a run started by a trigger: its start minus the moment its last *new* input landed (an
  input is new when it was materialized after the partition's previous materialization; a run with no new input,
  e.g. a retry, gives no sample). This is the mediator's reaction time.
- **Blocked waiting on dependencies**: a triggered run whose new inputs landed at different moments was blocked
  from the first to the last: its **dependency wait** is that span. Joins pending right now are counted too
  (``blocked_now``), with the age of the oldest.
- **Failure propagation depth**: for a run that failed after its last retry, how many levels of downstream assets
  have partitions reading it that are not FRESH now (0: nothing downstream is held up).
- **SLA hit rate**: verdicts whose deadline fell in the window, met / (met + missed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class TriggerSample:
    run_id: str
    started_at: datetime
    new_inputs_at: tuple[datetime, ...]  # when each new input landed


@dataclass(frozen=True)
class Stats:
    count: int = 0
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class MetricsReport:
    since: datetime
    now: datetime
    runs: dict[str, int] = field(default_factory=dict)  # per status, plus "total"
    runs_by_kind: dict[str, int] = field(default_factory=dict)
    trigger_latency_s: Stats = Stats()
    blocked_runs: int = 0
    dependency_wait_s: Stats = Stats()
    blocked_now: int = 0
    oldest_blocked_s: float | None = None
    final_failures: int = 0
    failure_depth: Stats = Stats()
    sla_met: int = 0
    sla_missed: int = 0

    @property
    def sla_hit_rate(self) -> float | None:
        total = self.sla_met + self.sla_missed
        return None if total == 0 else self.sla_met / total


def quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values (no interpolation: a figure that happened)."""
    import math

    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def stats(values: Sequence[float]) -> Stats:
    if not values:
        return Stats()
    ordered = sorted(values)
    return Stats(len(ordered), sum(ordered) / len(ordered), quantile(ordered, 0.5), quantile(ordered, 0.9),
                 quantile(ordered, 0.99), ordered[-1])


def compute_metrics(
    *,
    since: datetime,
    now: datetime,
    runs: Sequence[tuple[str, str]],  # (status, kind) of each run started in the window
    triggers: Sequence[TriggerSample],
    pending_since: Sequence[datetime],
    failure_depths: Sequence[int],
    verdicts: Sequence[str],  # MET / MISSED of each deadline in the window
) -> MetricsReport:
    by_status: dict[str, int] = {"total": len(runs)}
    by_kind: dict[str, int] = {}
    for status, kind in runs:
        by_status[status] = by_status.get(status, 0) + 1
        by_kind[kind] = by_kind.get(kind, 0) + 1
    latency, waits = [], []
    for t in triggers:
        if not t.new_inputs_at:
            continue
        latency.append(max(0.0, (t.started_at - max(t.new_inputs_at)).total_seconds()))
        span = (max(t.new_inputs_at) - min(t.new_inputs_at)).total_seconds()
        if span > 0:
            waits.append(span)
    oldest = max(((now - s).total_seconds() for s in pending_since), default=None)
    return MetricsReport(
        since=since, now=now, runs=by_status, runs_by_kind=by_kind, trigger_latency_s=stats(latency),
        blocked_runs=len(waits), dependency_wait_s=stats(waits), blocked_now=len(pending_since),
        oldest_blocked_s=oldest, final_failures=len(failure_depths),
        failure_depth=stats([float(d) for d in failure_depths]),
        sla_met=sum(v == "MET" for v in verdicts), sla_missed=sum(v == "MISSED" for v in verdicts),
    )
