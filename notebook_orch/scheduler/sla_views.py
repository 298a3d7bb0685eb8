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
    counts = project.store.sla.miss_counts()
    out = {}
    for spec in project.graph.specs:
        if spec.sla is None:
            continue
        met, missed = counts.get(spec.name, (0, 0))
        out[spec.name] = {"sla": spec.sla.text, "met": met, "missed": missed}
    return out


__all__ = ["SlaRow", "deadline", "next_deadline", "sla_rows", "sla_summary"]
