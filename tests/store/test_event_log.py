"""The event log on both backends: ids follow commit order (even with PostgreSQL's sequences), and
``wait_for_events`` wakes a follower when another writer commits (LISTEN/NOTIFY on PostgreSQL, polling on SQLite)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from store_helpers import T0, mat

from notebook_orch.store import EV_RUN_STARTED, MetadataStore, open_store, writes
from notebook_orch.store import engine as engine_mod


class Follower(threading.Thread):
    """Reads ``id > cursor`` in a loop, the way any follower does, and keeps every event it saw."""

    def __init__(self, store: MetadataStore) -> None:
        super().__init__(daemon=True)
        self.store, self.seen, self.stop = store, [], threading.Event()

    def run(self) -> None:
        cursor = 0
        while not self.stop.is_set():
            for event in self.store.events_after(cursor):
                self.seen.append(event.id)
                cursor = event.id
            time.sleep(0.005)

    def finish(self) -> list[int]:
        time.sleep(0.1)
        self.stop.set()
        self.join(timeout=10)
        return self.seen


def _hold_event_transaction(url: str, appended: threading.Event, release: threading.Event) -> None:
    """Append an event in a write transaction, then keep it open until ``release``."""
    engine = sa.create_engine(url)
    try:
        with engine_mod.write_txn(engine) as conn:
            writes.append_event(conn, "HELD", run_id=None, now=T0, payload={})
            appended.set()
            release.wait(timeout=30)
    finally:
        engine.dispose()


def test_postgresql_sequences_commit_out_of_order_which_would_make_a_follower_skip_an_event(pg_databases) -> None:  # noqa: ANN001
    """The hazard the event-log lock exists for, shown on raw SQL: id 2 commits first, id 1 after the follower
    has moved past it."""
    url = pg_databases.fresh()
    with open_store(url) as store:
        follower = Follower(store)
        follower.start()
        engine = sa.create_engine(url)
        insert = sa.text("INSERT INTO events (kind, timestamp, payload) VALUES ('RAW', now(), '{}') RETURNING id")
        with engine.connect() as first, engine.connect() as second:
            first.begin()
            second.begin()
            first_id = first.execute(insert).scalar_one()
            second_id = second.execute(insert).scalar_one()
            second.commit()
            time.sleep(0.2)  # the follower reads second_id and moves its cursor past first_id
            first.commit()
        engine.dispose()
        seen = follower.finish()
    assert first_id < second_id
    assert seen == [second_id]  # first_id was committed, and skipped


def test_through_the_store_a_later_writer_waits_so_ids_follow_commit_order(store_url: str) -> None:
    with open_store(store_url) as store:
        follower = Follower(store)
        follower.start()
        appended, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_event_transaction, args=(store_url, appended, release))
        holder.start()
        assert appended.wait(timeout=30)
        later = threading.Thread(
            target=lambda: store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
        )
        later.start()
        later.join(timeout=0.5)
        assert later.is_alive()  # waiting for the open transaction, instead of committing a later id first
        assert store.events_after(0) == []
        release.set()
        holder.join(timeout=30)
        later.join(timeout=30)
        assert not later.is_alive()
        events = store.events_after(0)
        seen = follower.finish()
    assert [e.kind for e in events] == ["HELD", EV_RUN_STARTED]
    assert seen == [e.id for e in events]  # the follower missed nothing


def test_start_runs_racing_in_threads_get_one_winner_and_ordered_events(store_url: str) -> None:
    with open_store(store_url) as store:
        follower = Follower(store)
        follower.start()
        outcomes: list[str] = []

        def contend(i: int) -> None:
            for round_ in range(10):
                try:
                    run = store.start_run(notebook="nb", targets=[("a", f"p{round_}")], kind="manual")
                    store.finalize_success(run.run_id, [mat("a", f"p{round_}", f"d{i}")])
                    outcomes.append("won")
                except Exception as exc:  # PartitionLocked, or the partition already finished by the winner
                    outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        events = store.events_after(0, limit=10_000)
        seen = follower.finish()
    assert set(outcomes) <= {"won", "PartitionLocked"} and outcomes.count("won") >= 10
    assert seen == [e.id for e in events] == sorted(e.id for e in events)


def test_wait_for_events_returns_at_once_times_out_and_wakes_on_a_commit(store_url: str) -> None:
    with open_store(store_url) as store, open_store(store_url) as writer:
        t0 = time.monotonic()
        assert store.wait_for_events(0, timeout=0.3) is False
        assert 0.25 < time.monotonic() - t0 < 5

        def write_later() -> None:
            time.sleep(0.3)
            writer.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)

        thread = threading.Thread(target=write_later)
        t0 = time.monotonic()
        thread.start()
        assert store.wait_for_events(0, timeout=20) is True
        woke_after = time.monotonic() - t0
        thread.join()
        assert 0.25 < woke_after < 5
        last = store.last_event_id()
        t0 = time.monotonic()
        assert store.wait_for_events(last - 1, timeout=20) is True  # already there: no wait
        assert time.monotonic() - t0 < 1


@pytest.mark.parametrize("backend", ["postgresql"])
def test_on_postgresql_the_waiter_listens_instead_of_polling(backend: str, pg_databases) -> None:  # noqa: ANN001
    url = pg_databases.fresh()
    with open_store(url) as store, open_store(url) as writer:
        assert store.wait_for_events(0, timeout=0.05) is False
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            listening = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN notebook_orch_events'"
            ).scalar_one()
        engine.dispose()
        assert listening == 1
        thread = threading.Timer(0.2, lambda: writer.start_run(notebook="nb", targets=[("a", "p")], kind="manual"))
        thread.start()
        assert store.wait_for_events(0, timeout=20) is True
        thread.join()


def test_an_event_follower_waits_in_the_store_and_wakes_on_the_next_commit(store_url: str) -> None:
    from notebook_orch.store.follow import EventFollower

    with open_store(store_url) as store, open_store(store_url) as writer:
        writer.start_run(notebook="nb", targets=[("a", "p0")], kind="manual", now=T0)
        follower = EventFollower(store)
        assert [e.kind for e in follower.wait(5)] == [EV_RUN_STARTED]  # already there
        t0 = time.monotonic()
        assert follower.wait(0.3) == []
        assert time.monotonic() - t0 >= 0.25
        timer = threading.Timer(0.3, lambda: writer.start_run(notebook="nb", targets=[("a", "p1")], kind="manual"))
        t0 = time.monotonic()
        timer.start()
        [event] = follower.wait(20)
        took = time.monotonic() - t0
        timer.join()
        assert event.payload["targets"] == [["a", "p1"]] and 0.25 < took < 5
        assert follower.cursor == event.id


def test_a_thread_waiting_long_does_not_hold_up_another_threads_wait(store_url: str) -> None:
    with open_store(store_url) as store, open_store(store_url) as writer:
        writer.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
        long_wait = threading.Thread(target=lambda: store.wait_for_events(10_000, timeout=3))
        long_wait.start()
        time.sleep(0.3)  # now blocked inside wait_for_events
        t0 = time.monotonic()
        assert store.wait_for_events(0, timeout=10) is True
        assert time.monotonic() - t0 < 1.5
        long_wait.join(timeout=30)
