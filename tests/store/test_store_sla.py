"""The SLA tables and the alert queue on every backend (a real SQLite file and PostgreSQL): verdicts and alerts once,
the miss event in the same transaction, the cursor saved with the alerts, and the reads of nbo metrics."""

from __future__ import annotations

from datetime import datetime, timedelta

from notebook_orch.store import MetadataStore
from notebook_orch.store.records import ConsumedInput, NewMaterialization
from notebook_orch.store.sla import EV_SLA_MISSED, NewVerdict

T0 = datetime(2024, 1, 6, 5, 0)


def test_verdicts_events_and_alerts_are_recorded_once(store: MetadataStore) -> None:
    sla = store.sla
    assert sla.watched() == {}
    sla.start_watch("daily", "06:00", now=T0 - timedelta(days=2))
    miss = NewVerdict("daily", "2024-01-05", "06:00", T0, "MISSED", "MISSING", {"kind": "SLA_MISSED", "x": 1})
    met = NewVerdict("daily", "2024-01-04", "06:00", T0 - timedelta(days=1), "MET")
    written = sla.record_verdicts([met, miss], watermarks={"daily": T0}, now=T0 + timedelta(seconds=1))
    assert written == [met, miss]
    assert sla.record_verdicts([miss], watermarks={"daily": T0 + timedelta(hours=1)}, now=T0) == []
    assert sla.watched()["daily"].checked_until == T0 + timedelta(hours=1)
    events = [e for e in store.events_after(0) if e.kind == EV_SLA_MISSED]
    assert [(e.asset, e.partition, dict(e.payload)) for e in events] == [
        ("daily", "2024-01-05", {"kind": "SLA_MISSED", "x": 1})]
    assert [(v.partition, v.verdict) for v in sla.verdicts(asset="daily")] == [("2024-01-05", "MISSED"),
                                                                                ("2024-01-04", "MET")]
    assert [v.partition for v in sla.verdicts(since=T0)] == ["2024-01-05"]
    assert [v.partition for v in sla.verdicts(verdict="MET")] == ["2024-01-04"]
    assert sla.miss_counts() == {"daily": (1, 1)}
    (alert,) = sla.alerts(state="PENDING")
    assert (alert.key, alert.kind, dict(alert.payload)) == ("sla:daily:2024-01-05", "SLA_MISSED",
                                                            {"kind": "SLA_MISSED", "x": 1})
    sla.mark_alert(alert.id, state="PENDING", error="exit code 1", now=T0)
    sla.mark_alert(alert.id, state="SENT", now=T0)
    (sent,) = sla.alerts()
    assert (sent.state, sent.attempts, sent.last_error, sent.sent_at) == ("SENT", 2, None, T0)
    # A changed SLA restarts the watch from now.
    assert sla.start_watch("daily", "07:00", now=T0).since == T0


def test_queue_alerts_saves_the_cursor_with_them(store: MetadataStore) -> None:
    sla = store.sla
    items = [("failed:r1", "RUN_FAILED", {"run_id": "r1"}), ("failed:r1", "RUN_FAILED", {"run_id": "r1"})]
    assert sla.queue_alerts(items, cursor=("alerts", 42), now=T0) == 1
    assert sla.queue_alerts(items, cursor=("alerts", 43), now=T0) == 0
    assert store.scheduling.cursor("alerts") == 43
    assert [a.key for a in sla.alerts()] == ["failed:r1"]


def test_the_reads_of_metrics(store: MetadataStore) -> None:
    def write(asset: str, key: str, at: datetime, seconds: float, inputs=(), kind="manual") -> int:
        run = store.start_run(notebook="nb", targets=[(asset, key)], kind=kind, now=at)
        store.finalize_success(run.run_id, [NewMaterialization(asset=asset, partition=key, code_version="c",
                                                               data_version=f"{asset}{at}", inputs=tuple(inputs))],
                               now=at + timedelta(seconds=seconds))
        return store.latest_materialization(asset, key).id

    a1 = write("a", "k", T0, 60)
    a2 = write("a", "k", T0 + timedelta(hours=1), 120)
    b = write("b", "k", T0 + timedelta(hours=2), 30, [ConsumedInput("a", "k", a2, "v", a2)], kind="trigger")
    assert store.sla.history([("a", "k"), ("b", "x")]) == {
        ("a", "k"): [(a1, T0 + timedelta(seconds=60)), (a2, T0 + timedelta(hours=1, seconds=120))], ("b", "x"): []}
    got = store.sla.materialization_times(ids=[b])
    assert [(m.asset, m.input_ids) for m in got] == [("b", (a2,))]
    runs = store.sla.runs_since(T0 + timedelta(minutes=30))
    assert [r.kind for r in runs] == ["manual", "trigger"]
    assert [m.id for m in store.sla.materialization_times(run_ids=[runs[1].run_id])] == [b]
    assert sorted(store.sla.run_durations(["a", "b", "c"])["a"]) == [60.0, 120.0]
    assert store.sla.run_durations(["c"]) == {"c": []}
    store.scheduling.add_pending([("b", "k2")], now=T0)
    assert store.sla.pending_since() == [T0]
