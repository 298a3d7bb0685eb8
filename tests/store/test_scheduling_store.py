"""Contract tests for the scheduler's tables (store.scheduling), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from notebook_orch.store import MetadataStore
from notebook_orch.store.scheduling import ScheduleExists, UnknownSchedule

T0 = datetime(2024, 3, 1, 6, 0)


def test_schedules_round_trip_pause_resume_delete(store: MetadataStore) -> None:
    s = store.scheduling
    rec = s.add_schedule(name="morning", cron="0 6 * * *", selection="sales+", partition_rule="latest",
                         params={"region": "eu"}, timezone="Europe/Berlin", catchup="all:3", now=T0)
    assert (rec.name, rec.cron, rec.selection, rec.params, rec.timezone, rec.catchup, rec.paused, rec.origin) == (
        "morning", "0 6 * * *", "sales+", {"region": "eu"}, "Europe/Berlin", "all:3", False, "cli")
    with pytest.raises(ScheduleExists, match="'morning' exists already.*nbo schedule delete morning"):
        s.add_schedule(name="morning", cron="0 7 * * *", selection="x", now=T0)
    assert s.get_schedule("morning").cron == "0 6 * * *"  # nothing changed
    assert s.set_paused("morning", True).paused is True
    later = T0 + timedelta(days=2)
    resumed = s.set_paused("morning", False, now=later)
    assert resumed.paused is False and resumed.active_since == later
    with pytest.raises(UnknownSchedule, match="No schedule is named 'mornin'.*morning"):
        s.set_paused("mornin", True)
    s.delete_schedule("morning")
    assert s.list_schedules() == [] and s.get_schedule("morning") is None


def test_replace_keeps_paused_state(store: MetadataStore) -> None:
    s = store.scheduling
    s.add_schedule(name="daily_sales", cron="0 6 * * *", selection="daily_sales", origin="asset", now=T0)
    s.set_paused("daily_sales", True)
    rec = s.add_schedule(name="daily_sales", cron="0 5 * * *", selection="daily_sales", origin="asset",
                         replace=True, now=T0)
    assert rec.cron == "0 5 * * *" and rec.paused is True


def test_a_tick_is_recorded_once(store: MetadataStore) -> None:
    s = store.scheduling
    first = s.record_tick("morning", T0, partition="2024-02-29", now=T0)
    assert first is not None and first.status == "STARTED" and first.run_ids == ()
    assert s.record_tick("morning", T0, partition="2024-02-29", now=T0) is None
    s.update_tick(first.id, status="SUBMITTED", run_ids=["r1", "r2"])
    s.record_tick("morning", T0 + timedelta(days=1), partition="2024-03-01", status="SKIPPED", message="paused")
    hist = s.ticks("morning")
    assert [(t.tick_at, t.status, t.run_ids) for t in hist] == [
        (T0 + timedelta(days=1), "SKIPPED", ()), (T0, "SUBMITTED", ("r1", "r2"))]
    assert s.last_tick_at("morning") == T0 + timedelta(days=1)
    assert s.last_tick_at("other") is None


def test_concurrent_recorders_get_exactly_one_tick(store: MetadataStore) -> None:
    s = store.scheduling
    got: list[object] = []
    barrier = threading.Barrier(4)

    def record() -> None:
        barrier.wait()
        got.append(s.record_tick("race", T0, partition=None, now=T0))

    threads = [threading.Thread(target=record) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for g in got if g is not None) == 1 and len(s.ticks("race")) == 1


def test_lease_is_exclusive_until_it_expires_or_is_released(store: MetadataStore) -> None:
    s = store.scheduling
    assert s.acquire_lease("a", ttl_s=10, now=T0) is True
    assert s.acquire_lease("b", ttl_s=10, now=T0 + timedelta(seconds=5)) is False
    assert s.acquire_lease("a", ttl_s=10, now=T0 + timedelta(seconds=5)) is True  # renewal
    assert s.acquire_lease("b", ttl_s=10, now=T0 + timedelta(seconds=14)) is False
    assert s.acquire_lease("b", ttl_s=10, now=T0 + timedelta(seconds=16)) is True  # a's lease expired
    assert s.lease() == ("b", T0 + timedelta(seconds=26))
    s.release_lease("b")
    assert s.acquire_lease("a", ttl_s=10, now=T0 + timedelta(seconds=17)) is True


def test_cursor_and_pending_joins_survive_reopening(store: MetadataStore) -> None:
    s = store.scheduling
    assert s.cursor() is None
    s.save_cursor(41, add_joins=[("joined", "2024-03-01"), ("joined", "2024-03-02")], now=T0)
    s.save_cursor(42, add_joins=[("joined", "2024-03-01")], now=T0 + timedelta(seconds=1))  # no duplicate
    assert s.cursor() == 42
    s.add_pending([("month", "2024-02")], now=T0 + timedelta(seconds=2))
    assert s.pending() == [("joined", "2024-03-01"), ("joined", "2024-03-02"), ("month", "2024-02")]
    assert s.pending(limit=1) == [("joined", "2024-03-01")]
    s.remove_pending([("joined", "2024-03-01"), ("month", "2024-02")])
    assert s.pending() == [("joined", "2024-03-02")]


def test_auto_pause_drops_pending_joins_and_resume_records_the_newest_event(store: MetadataStore) -> None:
    from notebook_orch.store.records import NewMaterialization

    s = store.scheduling
    s.add_pending([("joined", "2024-03-01"), ("other", "2024-03-01")], now=T0)
    rec = s.pause_auto("joined", now=T0)
    assert (rec.asset, rec.paused, rec.after_event) == ("joined", True, None)
    assert s.pending() == [("other", "2024-03-01")]
    assert s.pause_auto("joined", now=T0 + timedelta(hours=1)).changed_at == T0  # paused already: unchanged
    run = store.start_run(notebook="n.ipynb", targets=[("a", "2024-03-01")], kind="manual")
    store.finalize_success(run.run_id, [NewMaterialization(asset="a", partition="2024-03-01", data_version="v",
                                                           code_version="c")])
    resumed = s.resume_auto("joined", now=T0 + timedelta(hours=2))
    assert resumed is not None and not resumed.paused and resumed.after_event == store.last_event_id()
    assert s.resume_auto("joined") is None and s.resume_auto("never_paused") is None
    assert s.auto_pauses() == {"joined": resumed}


def test_a_tick_keeps_the_parameters_it_fired_with(store: MetadataStore) -> None:
    s = store.scheduling
    rec = s.record_tick("eu", T0, partition="2024-02-29", params={"region": "eu"}, now=T0)
    assert rec.params == {"region": "eu"}
    s.update_tick(rec.id, status="SUBMITTED", run_ids=["r1"])
    s.add_tick_runs(rec.id, ["r2", "r1"])
    [back] = s.ticks("eu")
    assert (back.params, back.run_ids, back.status) == ({"region": "eu"}, ("r1", "r2"), "SUBMITTED")
