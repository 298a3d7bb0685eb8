"""Concurrency pools in the store, on SQLite and PostgreSQL: slots are taken with the run's start, a run that finds a
pool full is WAITING (holding its partitions, visible in the event log), it starts when a slot frees, and slots of
runs that end — or are reaped — are released in the same transaction. The pure pool rules are checked too."""

from __future__ import annotations

import pytest
from store_helpers import at, mat

from notebook_orch.core.pools import ConcurrencySpec, concurrency_problems, pool_key_label, run_pools
from notebook_orch.errors import PartitionLocked, StoreError

WAREHOUSE = {"pool:warehouse": 2}


def events_of(store, kind: str) -> list:
    return [e for e in store.events_after(0) if e.kind == kind]


def test_run_pools_take_one_slot_per_pool_global_asset_and_named() -> None:
    spec = ConcurrencySpec(max_runs=4, assets={"orders": 1}, pools={"warehouse": 2, "api": 1})
    pools = {"orders": ("warehouse",), "items": ("warehouse", "api"), "report": ()}
    assert run_pools(spec, ["orders", "items"], pools) == {
        "asset:orders": 1, "global": 4, "pool:api": 1, "pool:warehouse": 2}
    assert run_pools(spec, ["report"], pools) == {"global": 4}
    assert run_pools(ConcurrencySpec(), ["orders"], pools) == {}
    assert pool_key_label("pool:warehouse") == "pool warehouse"
    assert pool_key_label("global") == "max_runs (global)"


def test_concurrency_problems_name_the_asset_the_pool_and_the_fix() -> None:
    spec = ConcurrencySpec(assets={"orderz": 1}, pools={"warehouse": 2})
    problems = concurrency_problems(spec, {"orders": ("warehous",)}, {"orders": "notebooks/a.ipynb, cell 3"},
                                    where="pyproject.toml")
    assert problems == [
        "Asset 'orders' (notebooks/a.ipynb, cell 3) runs in pool 'warehous', which pyproject.toml does not declare "
        "(did you mean 'warehouse'?); add it under [tool.notebook_orch.concurrency] pools, e.g. "
        "pools = { warehous = 2 }, or remove --pool warehous.",
        "pyproject.toml limits asset 'orderz', which no notebook defines (did you mean 'orders'?); fix the name "
        "under [tool.notebook_orch.concurrency] assets or remove it.",
    ]


def test_a_full_pool_makes_the_next_run_wait_and_a_freed_slot_starts_it(store) -> None:
    a = store.start_run(notebook="n", targets=[("a", "1")], kind="manual", pools=WAREHOUSE, now=at(0))
    b = store.start_run(notebook="n", targets=[("a", "2")], kind="manual", pools=WAREHOUSE, now=at(1))
    c = store.start_run(notebook="n", targets=[("a", "3")], kind="manual", pools=WAREHOUSE, now=at(2))
    assert (a.status, b.status, c.status) == ("RUNNING", "RUNNING", "WAITING")
    assert store.get_run(c.run_id).status == "WAITING"
    assert store.pool_usage() == {"pool:warehouse": [a.run_id, b.run_id]}
    # WAITING holds its partition: nobody else runs it meanwhile, and it shows as running to planning.
    with pytest.raises(PartitionLocked):
        store.start_run(notebook="n", targets=[("a", "3")], kind="manual", now=at(3))
    assert store.running()[("a", "3")] == c.run_id
    [waiting] = events_of(store, "RUN_WAITING")
    assert waiting.run_id == c.run_id
    assert waiting.payload["waiting_for"] == [{"pool": "pool:warehouse", "limit": 2, "in_use": 2, "ahead": 0}]
    assert [e.run_id for e in events_of(store, "RUN_STARTED")] == [a.run_id, b.run_id]

    store.heartbeat(c.run_id, now=at(4))  # a waiting run is alive and says so
    assert store.take_pool_slots(c.run_id, WAREHOUSE, now=at(5)) == "WAITING"
    with pytest.raises(StoreError, match="WAITING, not RUNNING"):
        store.finalize_success(c.run_id, [mat("a", "3")], now=at(5))

    store.finalize_success(a.run_id, [mat("a", "1")], now=at(6))
    assert store.pool_usage() == {"pool:warehouse": [b.run_id]}
    assert store.take_pool_slots(c.run_id, WAREHOUSE, now=at(7)) == "RUNNING"
    assert store.get_run(c.run_id).status == "RUNNING"
    assert [e.run_id for e in events_of(store, "RUN_STARTED")] == [a.run_id, b.run_id, c.run_id]
    assert events_of(store, "RUN_STARTED")[-1].payload["waited"] is True
    store.finalize_success(c.run_id, [mat("a", "3")], now=at(8))
    store.finalize_failure(b.run_id, error="boom", now=at(9))
    assert store.pool_usage() == {}


def test_a_run_needs_every_pool_it_names(store) -> None:
    both = {"global": 3, "pool:warehouse": 1}
    a = store.start_run(notebook="n", targets=[("a", "1")], kind="manual", pools=both, now=at(0))
    other = store.start_run(notebook="n", targets=[("b", "1")], kind="manual", pools={"global": 3}, now=at(0))
    b = store.start_run(notebook="n", targets=[("a", "2")], kind="manual", pools=both, now=at(1))
    assert (a.status, other.status, b.status) == ("RUNNING", "RUNNING", "WAITING")
    store.finalize_success(other.run_id, [], now=at(2))  # frees a global slot, not the warehouse one
    assert store.take_pool_slots(b.run_id, both, now=at(3)) == "WAITING"
    store.finalize_success(a.run_id, [], now=at(4))
    assert store.take_pool_slots(b.run_id, both, now=at(5)) == "RUNNING"
    assert store.pool_usage() == {"global": [b.run_id], "pool:warehouse": [b.run_id]}


def test_reaping_a_dead_holder_frees_its_slot_and_a_dead_waiter_is_reaped_too(store) -> None:
    holder = store.start_run(notebook="n", targets=[("a", "1")], kind="manual", pools={"global": 1}, now=at(0))
    waiter = store.start_run(notebook="n", targets=[("a", "2")], kind="manual", pools={"global": 1}, now=at(0))
    late = store.start_run(notebook="n", targets=[("a", "3")], kind="manual", pools={"global": 1}, now=at(0))
    store.heartbeat(waiter.run_id, now=at(100))
    reaped = store.reap_stale_runs(timeout_s=60, now=at(110))
    # The holder and the waiter that stopped heartbeating are both presumed dead; the live waiter stays.
    assert sorted(r.run_id for r in reaped) == sorted([holder.run_id, late.run_id])
    assert {r.status for r in reaped} == {"FAILED"}
    assert store.pool_usage() == {}
    assert store.take_pool_slots(waiter.run_id, {"global": 1}, now=at(111)) == "RUNNING"
    assert store.running() == {("a", "2"): waiter.run_id}


def test_a_waiting_run_can_be_canceled_and_then_never_starts(store) -> None:
    store.start_run(notebook="n", targets=[("a", "1")], kind="manual", pools={"global": 1}, now=at(0))
    waiter = store.start_run(notebook="n", targets=[("a", "2")], kind="manual", pools={"global": 1}, now=at(0))
    record = store.finalize_failure(waiter.run_id, error="canceled", status="CANCELED", now=at(1))
    assert record.status == "CANCELED"
    assert store.take_pool_slots(waiter.run_id, {"global": 1}, now=at(2)) == "CANCELED"
    assert ("a", "2") not in store.running()


def test_runs_without_pools_never_touch_the_pool_table(store) -> None:
    run = store.start_run(notebook="n", targets=[("a", "1")], kind="manual", now=at(0))
    assert run.status == "RUNNING" and store.pool_usage() == {}
