"""SLA verdicts, the SLA watermarks and the alert queue; plus the reads ``nbo metrics`` needs.

Reached as ``store.sla`` (an ``SlaStore`` over the same engine). Every method is one transaction and hands out
frozen records. What makes "once" hold:

- ``sla_verdicts`` is keyed by (asset, partition): a verdict, its ``SLA_MISSED`` event and its alert are written in
  one transaction together with the asset's new watermark (``sla_watch.checked_until``), and a partition judged
  already is skipped - two daemons, or one restarted, never record or alert a miss twice;
- ``alerts.key`` is unique (``sla:ASSET:PARTITION``, ``failed:RUN_ID``); delivery happens after the commit, and
  ``state`` says whether the hook got it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from notebook_orch.store import codec
from notebook_orch.store.ids import utc_naive
from notebook_orch.store.schema import alerts, materializations, runs, sla_verdicts, sla_watch

if TYPE_CHECKING:
    from notebook_orch.store.metadata_store import MetadataStore

EV_SLA_MISSED = "SLA_MISSED"
ALERT_STATES = ("PENDING", "SENT", "FAILED", "NO_HOOK")


@dataclass(frozen=True)
class SlaWatchRecord:
    asset: str
    sla: str
    since: datetime
    checked_until: datetime


@dataclass(frozen=True)
class NewVerdict:
    asset: str
    partition: str
    sla: str
    deadline: datetime
    verdict: str  # MET or MISSED
    reason: str = ""
    alert: Mapping[str, Any] | None = None  # the hook's payload for a miss


@dataclass(frozen=True)
class SlaVerdictRecord:
    asset: str
    partition: str
    sla: str
    deadline: datetime
    verdict: str
    reason: str
    judged_at: datetime


@dataclass(frozen=True)
class AlertRecord:
    id: int
    key: str
    kind: str
    payload: Mapping[str, Any]
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class MaterializationTimes:
    """One materialization, as ``nbo metrics`` reads it: when it landed and which inputs it consumed."""

    id: int
    asset: str
    partition: str
    run_id: str
    created_at: datetime
    input_ids: tuple[int, ...]


def _verdict(row: Any) -> SlaVerdictRecord:
    m = row._mapping
    return SlaVerdictRecord(m["asset"], m["partition"], m["sla"], m["deadline"], m["verdict"], m["reason"],
                            m["judged_at"])


def _alert(row: Any) -> AlertRecord:
    m = row._mapping
    return AlertRecord(m["id"], m["key"], m["kind"], json.loads(m["payload"]), m["state"], m["attempts"],
                       m["last_error"], m["created_at"], m["sent_at"])


class SlaStore:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- watermarks -----------------------------------------------------------------------------------------
    def watched(self) -> dict[str, SlaWatchRecord]:
        with self._store._read() as conn:
            return {r[0]: SlaWatchRecord(r[0], r[1], r[2], r[3]) for r in conn.execute(sa.select(
                sla_watch.c.asset, sla_watch.c.sla, sla_watch.c.since, sla_watch.c.checked_until))}

    def start_watch(self, asset: str, sla: str, *, now: datetime | None = None) -> SlaWatchRecord:
        """Watch ``asset``'s SLA from ``now`` (a new SLA, or one whose text changed): deadlines before are never
        judged, so declaring an SLA on a years-old asset does not alert for every old partition."""
        now = utc_naive(now)
        with self._store._write("start watching an SLA") as conn:
            values = {"sla": sla, "since": now, "checked_until": now}
            if conn.execute(sla_watch.update().where(sla_watch.c.asset == asset).values(**values)).rowcount == 0:
                conn.execute(sla_watch.insert().values(asset=asset, **values))
        return SlaWatchRecord(asset, sla, now, now)

    def record_verdicts(self, verdicts: Sequence[NewVerdict], *, watermarks: Mapping[str, datetime],
                        now: datetime | None = None) -> list[NewVerdict]:
        """Record verdicts and move each asset's watermark (``asset -> checked until``), in one transaction; each
        miss also appends an ``SLA_MISSED`` event and queues its alert. Partitions judged before are skipped.
        Returns the verdicts actually written."""
        from notebook_orch.store.event_log import lock_event_log
        from notebook_orch.store.writes import append_event

        now = utc_naive(now)
        written: list[NewVerdict] = []
        with self._store._write("record SLA verdicts") as conn:
            if any(v.verdict == "MISSED" for v in verdicts):
                lock_event_log(conn)  # before any row is touched (event_log.py: no waiting while holding row locks)
            keys = list(dict.fromkeys((v.asset, v.partition) for v in verdicts))
            have: set[tuple[str, str]] = set()
            for chunk in range(0, len(keys), 400):
                have.update((r[0], r[1]) for r in conn.execute(sa.select(sla_verdicts.c.asset, sla_verdicts.c.partition)
                            .where(sa.tuple_(sla_verdicts.c.asset, sla_verdicts.c.partition).in_(
                                keys[chunk:chunk + 400]))))
            rows = []
            for v in verdicts:
                if (v.asset, v.partition) in have:
                    continue
                have.add((v.asset, v.partition))
                rows.append({"asset": v.asset, "partition": v.partition, "sla": v.sla,
                             "deadline": utc_naive(v.deadline), "verdict": v.verdict, "reason": v.reason,
                             "judged_at": now})
                if v.verdict == "MISSED":
                    payload = dict(v.alert or {})
                    append_event(conn, EV_SLA_MISSED, run_id=None, now=now, asset=v.asset, partition=v.partition,
                                 payload=payload)
                    _queue(conn, f"sla:{v.asset}:{v.partition}", EV_SLA_MISSED, payload, now)
                written.append(v)
            if rows:
                conn.execute(sla_verdicts.insert(), rows)
            if watermarks:
                conn.execute(sla_watch.update().where(sla_watch.c.asset == sa.bindparam("a")).values(
                    checked_until=sa.bindparam("t")), [{"a": a, "t": utc_naive(t)} for a, t in watermarks.items()])
        return written

    def verdicts(self, *, asset: str | None = None, since: datetime | None = None, until: datetime | None = None,
                 verdict: str | None = None, limit: int | None = None) -> list[SlaVerdictRecord]:
        """Verdicts by deadline, newest first."""
        q = sa.select(sla_verdicts).order_by(sla_verdicts.c.deadline.desc(), sla_verdicts.c.asset,
                                             sla_verdicts.c.partition)
        if asset is not None:
            q = q.where(sla_verdicts.c.asset == asset)
        if since is not None:
            q = q.where(sla_verdicts.c.deadline >= utc_naive(since))
        if until is not None:
            q = q.where(sla_verdicts.c.deadline <= utc_naive(until))
        if verdict is not None:
            q = q.where(sla_verdicts.c.verdict == verdict)
        if limit is not None:
            q = q.limit(limit)
        with self._store._read() as conn:
            return [_verdict(r) for r in conn.execute(q)]

    def miss_counts(self) -> dict[str, tuple[int, int]]:
        """Per asset: (met, missed) over every recorded verdict."""
        q = sa.select(sla_verdicts.c.asset, sla_verdicts.c.verdict, sa.func.count()).group_by(
            sla_verdicts.c.asset, sla_verdicts.c.verdict)
        out: dict[str, list[int]] = {}
        with self._store._read() as conn:
            for asset, verdict, n in conn.execute(q):
                out.setdefault(asset, [0, 0])[0 if verdict == "MET" else 1] += int(n)
        return {a: (met, missed) for a, (met, missed) in out.items()}

    # -- alerts ---------------------------------------------------------------------------------------------
    def queue_alerts(self, items: Iterable[tuple[str, str, Mapping[str, Any]]], *,
                     cursor: tuple[str, int] | None = None, now: datetime | None = None) -> int:
        """Queue ``(key, kind, payload)`` alerts (a key queued before is skipped) and, in the same transaction,
        save an event cursor ``(name, event_id)`` of the scheduler's cursor table. Returns how many were new."""
        from notebook_orch.store.schema import scheduler_cursor

        now = utc_naive(now)
        n = 0
        with self._store._write("queue alerts") as conn:
            for key, kind, payload in items:
                n += _queue(conn, key, kind, payload, now)
            if cursor is not None:
                name, event_id = cursor
                if conn.execute(scheduler_cursor.update().where(scheduler_cursor.c.name == name).values(
                        event_id=event_id)).rowcount == 0:
                    conn.execute(scheduler_cursor.insert().values(name=name, event_id=event_id))
        return n

    def alerts(self, *, state: str | None = None, limit: int = 100) -> list[AlertRecord]:
        """Alerts oldest first (``state`` PENDING: those the hook has not taken yet)."""
        q = sa.select(alerts).order_by(alerts.c.id).limit(limit)
        if state is not None:
            q = q.where(alerts.c.state == state)
        with self._store._read() as conn:
            return [_alert(r) for r in conn.execute(q)]

    def mark_alert(self, alert_id: int, *, state: str, error: str | None = None,
                   now: datetime | None = None) -> None:
        now = utc_naive(now)
        with self._store._write("record an alert's delivery") as conn:
            conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
                state=state, attempts=alerts.c.attempts + 1, last_error=error,
                sent_at=now if state == "SENT" else None))

    # -- reads for metrics and impact -------------------------------------------------------------------------
    def runs_since(self, since: datetime) -> list[Any]:
        """Runs started at or after ``since``, oldest first (RunRecord)."""
        q = sa.select(runs).where(runs.c.started_at >= utc_naive(since)).order_by(runs.c.started_at)
        with self._store._read() as conn:
            return [codec.run_record(r) for r in conn.execute(q)]

    def materialization_times(self, *, run_ids: Iterable[str] = (), ids: Iterable[int] = ()
                              ) -> list[MaterializationTimes]:
        """Materializations made by ``run_ids`` or with ``ids``: when each landed and what it consumed."""
        run_ids, ids = list(dict.fromkeys(run_ids)), list(dict.fromkeys(ids))
        cols = (materializations.c.id, materializations.c.asset, materializations.c.partition,
                materializations.c.run_id, materializations.c.created_at, materializations.c.inputs)
        out: list[MaterializationTimes] = []
        with self._store._read() as conn:
            for column, values in ((materializations.c.run_id, run_ids), (materializations.c.id, ids)):
                for chunk in range(0, len(values), 400):
                    for r in conn.execute(sa.select(*cols).where(column.in_(values[chunk:chunk + 400]))):
                        inputs = json.loads(r[5]) if r[5] else []
                        input_ids = tuple(int(i["materialization_id"] if isinstance(i, dict) else i[2])
                                          for i in inputs)
                        out.append(MaterializationTimes(r[0], r[1], r[2], r[3], r[4], input_ids))
        return out

    def mark_alerts(self, alert_ids: Iterable[int], *, state: str, now: datetime | None = None) -> None:
        """One state for many alerts in one statement (e.g. NO_HOOK for every pending one when there is no hook)."""
        ids = list(alert_ids)
        now = utc_naive(now)
        with self._store._write("record alerts' delivery") as conn:
            for chunk in range(0, len(ids), 400):
                conn.execute(alerts.update().where(alerts.c.id.in_(ids[chunk:chunk + 400])).values(
                    state=state, attempts=alerts.c.attempts + 1, sent_at=now if state == "SENT" else None))

    def history(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[int, datetime]]]:
        """Per (asset, partition): every materialization's (id, created_at), oldest first (one query per 400 keys)."""
        wanted = list(dict.fromkeys(keys))
        out: dict[tuple[str, str], list[tuple[int, datetime]]] = {k: [] for k in wanted}
        cols = (materializations.c.asset, materializations.c.partition, materializations.c.id,
                materializations.c.created_at)
        with self._store._read() as conn:
            for chunk in range(0, len(wanted), 400):
                q = sa.select(*cols).where(sa.tuple_(materializations.c.asset, materializations.c.partition).in_(
                    wanted[chunk:chunk + 400])).order_by(materializations.c.id)
                for a, p, mid, at in conn.execute(q):
                    out[(a, p)].append((mid, at))
        return out

    def pending_since(self) -> list[datetime]:
        """When each join pending now (scheduler) started waiting."""
        from notebook_orch.store.schema import pending_joins

        with self._store._read() as conn:
            return [r[0] for r in conn.execute(sa.select(pending_joins.c.since))]

    def run_durations(self, assets: Iterable[str], *, per_asset: int = 50) -> dict[str, list[float]]:
        """Wall-clock seconds of the last ``per_asset`` successful runs that made each asset."""
        out: dict[str, list[float]] = {}
        for asset in dict.fromkeys(assets):
            got = self._store.list_runs(limit=per_asset, status="SUCCESS", asset=asset)
            out[asset] = [(r.ended_at - r.started_at).total_seconds() for r in got if r.ended_at is not None]
        return out


def _queue(conn: sa.Connection, key: str, kind: str, payload: Mapping[str, Any], now: datetime) -> int:
    if conn.execute(sa.select(alerts.c.id).where(alerts.c.key == key)).first():
        return 0
    conn.execute(alerts.insert().values(key=key, kind=kind, payload=codec.dumps(dict(payload)), state="PENDING",
                                        attempts=0, created_at=now))
    return 1


__all__ = ["ALERT_STATES", "EV_SLA_MISSED", "AlertRecord", "MaterializationTimes", "NewVerdict", "SlaStore",
           "SlaVerdictRecord", "SlaWatchRecord"]
