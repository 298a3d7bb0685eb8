"""Reads behind ``nbo sla``, ``nbo status``'s SLA column, ``nbo impact`` and ``nbo metrics``. Reads never write.

Each gathers what the store knows and hands it to a pure function in core/ (sla.py, impact.py, metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from notebook_orch.core.sla import Verdict, at_risk, deadline, due_partitions, judge
from notebook_orch.core.status import Status


@dataclass(frozen=True)
class SlaRow:
    """One partition's SLA: recorded verdicts (``recorded``), deadlines passed but never judged (the daemon was not
    running; the verdict shown is what it would record now), and the next open deadline."""

    asset: str
    partition: str
    sla: str
    deadline: datetime  # naive UTC
    verdict: str  # MET, MISSED, OPEN
    reason: str
    recorded: bool
    status: str
    at_risk: bool = False


def _status(report: Any, asset: str, key: str) -> Status:
    try:
        return report.status(asset, key)
    except Exception:
        return Status.MISSING


def sla_rows(project: Any, *, assets: list[str] | None = None, since: timedelta = timedelta(days=7),
             now: datetime) -> list[SlaRow]:
    """Every SLA partition whose deadline is within ``since`` before ``now``, plus each asset's next deadline."""
    graph = project.graph
    specs = [graph.spec(n) for n in (assets if assets is not None else graph.names) if n in graph]
    specs = [s for s in specs if s.sla is not None]
    if not specs:
        return []
    status = project.status(now=now)
    store = project.store
    rows: list[SlaRow] = []
    for spec in specs:
        recorded = {v.partition: v for v in store.sla.verdicts(asset=spec.name, since=now - since)}
        for key, dl in due_partitions(spec.sla, spec.partitions, after=now - since, until=now):
            st = _status(status, spec.name, key)
            v = recorded.get(key)
            if v is not None:
                rows.append(SlaRow(spec.name, key, v.sla, v.deadline, v.verdict, v.reason, True, st.value))
                continue
            latest = store.latest_materialization(spec.name, key)
            j = judge(dl, now=now, status=st, materialized_at=latest.created_at if latest else None)
            rows.append(SlaRow(spec.name, key, spec.sla.text, dl, j.verdict.value, j.reason, False, st.value))
        nxt = next_deadline(spec, now=now)
        if nxt is not None:
            key, dl = nxt
            st = _status(status, spec.name, key) if _exists(spec, key, now) else Status.MISSING
            rows.append(SlaRow(spec.name, key, spec.sla.text, dl, Verdict.OPEN.value, "", False, st.value,
                               at_risk(dl, now=now, status=st)))
    rows.sort(key=lambda r: (r.asset, r.deadline))
    return rows


def _exists(spec: Any, key: str, now: datetime) -> bool:
    try:
        spec.partitions.index_of(key, now=now)
        return True
    except Exception:
        return False


def next_deadline(spec: Any, *, now: datetime) -> tuple[str, datetime] | None:
    """The partition with the first deadline after ``now`` (it may not have ended yet)."""
    for span in (timedelta(days=2), timedelta(days=40), timedelta(days=400)):
        for key, dl in due_partitions(spec.sla, spec.partitions, after=now, until=now + span):
            return key, dl
    return None


def sla_summary(project: Any) -> dict[str, dict[str, Any]]:
    """Per asset with ``--sla``: its SLA and the recorded met / missed counts (``nbo status``)."""
    with_sla = [spec for spec in project.graph.specs if spec.sla is not None]
    if not with_sla:
        return {}  # no store read: a cold ``nbo status`` opens no SQLAlchemy store (store/sqlite_read.py)
    counts = project.store.sla.miss_counts()
    out = {}
    for spec in with_sla:
        met, missed = counts.get(spec.name, (0, 0))
        out[spec.name] = {"sla": spec.sla.text, "met": met, "missed": missed}
    return out


__all__ = ["SlaRow", "deadline", "next_deadline", "sla_rows", "sla_summary"]


# -- impact ----------------------------------------------------------------------------------------------------
def impact(project: Any, asset: str, *, partition: str | None = None, delay: timedelta = timedelta(0),
           now: datetime) -> Any:
    """``core.impact.project_impact`` over the project's graph, status, running runs and past run durations."""
    from notebook_orch.core.impact import HORIZON, median, project_impact
    from notebook_orch.errors import PartitionError

    graph = project.graph
    spec = graph.spec(asset)  # a mistyped or invalid name: the graph's message (close matches, the problem)
    if partition is None:
        keys = spec.partitions.keys(now=now)
        if not keys:
            raise PartitionError(f"Asset {asset!r} has no partition yet ({spec.partitions.describe()}); name one "
                                 "with --partition.")
        partition = keys[-1]
    else:
        spec.partitions.index_of(partition, now=now + delay + HORIZON)  # the precise error for a bad key
    names = {asset, *graph.descendants([asset])}
    runs = project.store.sla.run_durations(names)
    durations = {n: median(v) for n, v in runs.items()}
    status = project.status(now=now)
    running = project.store.running()
    since = {}
    if (asset, partition) in running:
        run = project.store.get_run(running[(asset, partition)])
        if run is not None:
            since[(asset, partition)] = run.started_at
    specs = {n: graph.spec(n) for n in graph.names}
    return project_impact(specs, graph.order, (asset, partition), delay=delay, now=now, durations=durations,
                          status_of=lambda a, k: _status(status, a, k), running_since=since)


# -- metrics ---------------------------------------------------------------------------------------------------
MAX_FAILURES_TRACED = 200  # failure depth is traced for the newest this many final failures of the window


def metrics(project: Any, *, since: timedelta, now: datetime) -> Any:
    """``core.metrics.compute_metrics`` over the runs, materializations, pending joins and verdicts of the window."""
    from notebook_orch.core.impact import project_impact
    from notebook_orch.core.metrics import TriggerSample, compute_metrics

    store = project.store
    start = now - since
    runs = store.sla.runs_since(start)
    trig = [r for r in runs if r.kind == "trigger"]
    mats = store.sla.materialization_times(run_ids=[r.run_id for r in trig])
    inputs = {m.id: m for m in store.sla.materialization_times(ids=[i for m in mats for i in m.input_ids])}
    import bisect

    history = store.sla.history((m.asset, m.partition) for m in mats)
    new_at: dict[str, list[datetime]] = {}
    for m in mats:
        made = history.get((m.asset, m.partition), [])
        i = bisect.bisect_left([mid for mid, _ in made], m.id)
        before = made[i - 1][1] if i > 0 else None
        landed = [inputs[i].created_at for i in m.input_ids if i in inputs]
        new_at.setdefault(m.run_id, []).extend(t for t in landed if before is None or t > before)
    samples = [TriggerSample(r.run_id, r.started_at, tuple(new_at.get(r.run_id, ()))) for r in trig]
    pending = store.sla.pending_since()
    graph = project.graph
    status = None
    depths: list[int] = []
    failed = [r for r in runs if r.status == "FAILED"]
    for r in reversed(failed):  # newest first
        retries = max((graph.spec(a).retries for a in r.assets if a in graph), default=0)
        if r.attempt <= retries:
            continue
        if len(depths) >= MAX_FAILURES_TRACED:
            break
        if status is None:
            status = project.status(now=now)
            specs = {n: graph.spec(n) for n in graph.names}
        depth = 0
        for a in r.assets:
            if a not in graph:
                continue
            for k in r.partition_keys:
                try:
                    rep = project_impact(specs, graph.order, (a, k), delay=timedelta(0), now=now, durations={},
                                         status_of=lambda x, y, st=status: _status(st, x, y))
                except Exception:  # a key the asset does not have any more
                    continue
                held = [n.depth for n in rep.downstream if _status(status, n.asset, n.partition) != Status.FRESH]
                depth = max(depth, max(held, default=0))
        depths.append(depth)
    verdicts = [v.verdict for v in store.sla.verdicts(since=start, until=now)]
    return compute_metrics(since=start, now=now, runs=[(r.status, r.kind) for r in runs], triggers=samples,
                           pending_since=pending, failure_depths=depths, verdicts=verdicts)

