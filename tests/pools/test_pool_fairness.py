"""Pool fairness, on SQLite and PostgreSQL: runs waiting for a slot get it first come, first served — a newer run
never takes a slot an older waiter is queued for, whoever asks first — and a waiter is not starved by a stream of
runs of another asset. An older waiter keeps one slot only in the pools it needs, so a pool it does not wait in
stays open to newer runs."""

from __future__ import annotations

from datetime import datetime, timedelta

ONE = {"pool:warehouse": 1}
T0 = datetime(2026, 3, 1, 12, 0, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def start(store, asset: str, key: str, pools: dict[str, int], t: float):
    return store.start_run(notebook="n", targets=[(asset, key)], kind="manual", pools=pools, now=at(t))


def started_order(store) -> list[str]:
    return [e.run_id for e in store.events_after(0) if e.kind == "RUN_STARTED"]


def test_waiters_start_in_the_order_they_came_whoever_asks_first(store) -> None:
    holder = start(store, "y", "0", ONE, 0)
    older = start(store, "x", "1", ONE, 1)
    newer = start(store, "y", "1", ONE, 2)
    newest = start(store, "y", "2", ONE, 3)
    assert (holder.status, older.status, newer.status, newest.status) == ("RUNNING", "WAITING", "WAITING", "WAITING")
    queue = store.pool_waiters()
    assert [(w.run_id, w.position, dict(w.ahead)) for w in queue] == [
        (older.run_id, 1, {"pool:warehouse": 0}), (newer.run_id, 2, {"pool:warehouse": 1}),
        (newest.run_id, 3, {"pool:warehouse": 2})]
    assert queue[0].since == at(1)

    store.finalize_success(holder.run_id, [], now=at(4))
    # The newest and the newer ask before the older one: the free slot is kept for the older one.
    assert store.take_pool_slots(newest.run_id, ONE, now=at(5)) == "WAITING"
    assert store.take_pool_slots(newer.run_id, ONE, now=at(5)) == "WAITING"
    assert store.take_pool_slots(older.run_id, ONE, now=at(6)) == "RUNNING"
    assert [w.run_id for w in store.pool_waiters()] == [newer.run_id, newest.run_id]

    # A newcomer while runs wait queues behind them, even at a moment a slot is free.
    store.finalize_success(older.run_id, [], now=at(7))
    late = start(store, "z", "1", ONE, 8)
    assert late.status == "WAITING"
    assert store.take_pool_slots(newest.run_id, ONE, now=at(9)) == "WAITING"
    assert store.take_pool_slots(newer.run_id, ONE, now=at(9)) == "RUNNING"
    assert started_order(store) == [holder.run_id, older.run_id, newer.run_id]
    assert [dict(w.ahead) for w in store.pool_waiters()] == [{"pool:warehouse": 0}, {"pool:warehouse": 1}]


def test_a_waiter_that_ends_leaves_the_queue_and_the_next_moves_up(store) -> None:
    holder = start(store, "y", "0", ONE, 0)
    first = start(store, "x", "1", ONE, 1)
    second = start(store, "x", "2", ONE, 2)
    store.finalize_failure(first.run_id, error="canceled while waiting", status="CANCELED", now=at(3))
    assert [(w.run_id, dict(w.ahead)) for w in store.pool_waiters()] == [(second.run_id, {"pool:warehouse": 0})]
    store.finalize_success(holder.run_id, [], now=at(4))
    assert store.take_pool_slots(second.run_id, ONE, now=at(5)) == "RUNNING"
    assert store.pool_waiters() == []


def test_an_older_waiter_keeps_a_slot_only_in_the_pools_it_needs(store) -> None:
    both = {"global": 3, "pool:warehouse": 1}
    holder = start(store, "w", "0", both, 0)  # holds the warehouse slot and one global slot
    waiter = start(store, "w", "1", both, 1)  # waits for the warehouse; keeps one more global slot
    assert waiter.status == "WAITING"
    # Global: 1 held + 1 kept for the waiter < 3, so a run that needs no warehouse slot starts at once ...
    other = start(store, "o", "1", {"global": 3}, 2)
    assert other.status == "RUNNING"
    # ... but the next one would take the slot the waiter is owed, so it waits (behind the waiter).
    blocked = start(store, "o", "2", {"global": 3}, 3)
    assert blocked.status == "WAITING"
    [event] = [e for e in store.events_after(0) if e.kind == "RUN_WAITING" and e.run_id == blocked.run_id]
    assert event.payload["waiting_for"] == [{"pool": "global", "limit": 3, "in_use": 2, "ahead": 1}]
    # The holder ends: global has 1 held + 1 owed to the waiter, so the blocked run may take the third ...
    store.finalize_success(holder.run_id, [], now=at(4))
    assert store.take_pool_slots(blocked.run_id, {"global": 3}, now=at(5)) == "RUNNING"
    # ... and the waiter still finds the global slot it was owed, with the warehouse slot.
    assert store.take_pool_slots(waiter.run_id, both, now=at(5)) == "RUNNING"
    assert sorted(store.pool_usage()["global"]) == sorted([other.run_id, blocked.run_id, waiter.run_id])


def test_a_run_left_waiting_without_a_ticket_queues_behind_the_ticketed_ones(store) -> None:
    # A store upgraded while a run was WAITING: that run has no row in pool_waits.
    import sqlalchemy as sa

    from notebook_orch.store.schema import pool_waits

    holder = start(store, "y", "0", ONE, 0)
    legacy = start(store, "x", "1", ONE, 1)
    with store._engine.begin() as conn:  # noqa: SLF001 - simulating an old store's row state
        conn.execute(sa.delete(pool_waits).where(pool_waits.c.run_id == legacy.run_id))
    ticketed = start(store, "x", "2", ONE, 2)
    store.finalize_success(holder.run_id, [], now=at(3))
    assert store.take_pool_slots(legacy.run_id, ONE, now=at(4)) == "WAITING"
    assert store.take_pool_slots(ticketed.run_id, ONE, now=at(4)) == "RUNNING"
    store.finalize_success(ticketed.run_id, [], now=at(5))
    assert store.take_pool_slots(legacy.run_id, ONE, now=at(6)) == "RUNNING"
