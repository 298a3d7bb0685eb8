"""The store contract: every MetadataStore method, run against each backend of the ``store`` fixture."""

from __future__ import annotations

import re
import threading
import time

import pytest
from store_helpers import T0, at, mat

from notebook_orch.errors import PartitionLocked, StoreError
from notebook_orch.store import (
    EV_MATERIALIZED,
    EV_PARTITION_CANCELED,
    EV_PARTITION_FAILED,
    EV_RUN_CANCELED,
    EV_RUN_FAILED,
    EV_RUN_STARTED,
    EV_RUN_SUCCESS,
    AssetStates,
    CheckResult,
    ConsumedInput,
    MaterializationRecord,
    MetadataStore,
    RunRecord,
    new_run_id,
)
from notebook_orch.store.ids import posix


def kinds(store: MetadataStore) -> list[str]:
    return [e.kind for e in store.events_after(0)]


def state(store: MetadataStore, asset: str, partition: str) -> dict[str, object] | None:
    """One (asset, partition)'s row of the snapshot, as a dict of AssetStates fields."""
    states = store.snapshot().assets.get(asset)
    if states is None or partition not in states.partitions:
        return None
    i = states.partitions.index(partition)
    return {name: getattr(states, name)[i] for name in AssetStates.__dataclass_fields__ if name != "partitions"}


# -- run ids -----------------------------------------------------------------------------------------------------


def test_run_ids_are_26_hex_chars_and_time_ordered() -> None:
    first = new_run_id()
    time.sleep(0.002)
    second = new_run_id()
    assert re.fullmatch(r"[0-9a-f]{26}", first) and re.fullmatch(r"[0-9a-f]{26}", second)
    assert first < second
    assert abs(int(first[:12], 16) / 1000 - time.time()) < 5
    assert len({new_run_id() for _ in range(1000)}) == 1000


# -- start_run -----------------------------------------------------------------------------------------------------


def test_start_run_inserts_running_run_locks_targets_and_appends_event(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb.ipynb", targets=[("a", "p1"), ("b", "p1"), ("a", "p2")], kind="manual", now=T0)

    assert run == RunRecord(
        run_id=run.run_id, notebook="nb.ipynb", assets=("a", "b"), partition_keys=("p1", "p2"), status="RUNNING",
        kind="manual", started_at=T0,
    )
    assert store.get_run(run.run_id) == run
    assert store.running() == {("a", "p1"): run.run_id, ("a", "p2"): run.run_id, ("b", "p1"): run.run_id}
    [event] = store.events_after(0)
    assert (event.kind, event.run_id, event.asset, event.partition, event.timestamp) == (
        EV_RUN_STARTED, run.run_id, None, None, T0
    )
    assert event.payload == {
        "notebook": "nb.ipynb", "kind": "manual", "attempt": 1, "targets": [["a", "p1"], ["b", "p1"], ["a", "p2"]]
    }


def test_start_run_takes_explicit_id_and_attempt_and_dedupes_targets(store: MetadataStore) -> None:
    run = store.start_run(
        notebook=None, targets=[("a", "p"), ("a", "p")], kind="backfill", run_id="my-run", attempt=3, now=T0
    )
    assert (run.run_id, run.attempt, run.kind, run.notebook) == ("my-run", 3, "backfill", None)
    assert store.get_run("my-run") == run
    assert store.running() == {("a", "p"): "my-run"}


def test_start_run_with_a_taken_run_id_raises_and_changes_nothing(store: MetadataStore) -> None:
    store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", run_id="r1", now=T0)
    with pytest.raises(StoreError, match="r1 is already taken"):
        store.start_run(notebook="nb", targets=[("b", "p")], kind="manual", run_id="r1", now=at(1))
    assert store.running() == {("a", "p"): "r1"}
    assert kinds(store) == [EV_RUN_STARTED]


@pytest.mark.parametrize(
    ("kind", "attempt", "message"), [("nightly", 1, "Run kind 'nightly'"), ("manual", 0, "attempt 0")]
)
def test_start_run_rejects_bad_kind_or_attempt(store: MetadataStore, kind: str, attempt: int, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        store.start_run(notebook="nb", targets=[("a", "p")], kind=kind, attempt=attempt, now=T0)
    assert store.list_runs() == [] and store.running() == {} and store.last_event_id() == 0


# -- locks ---------------------------------------------------------------------------------------------------------


def test_a_locked_target_raises_partition_locked_naming_the_holder_and_changes_nothing(store: MetadataStore) -> None:
    holder = store.start_run(notebook="nb", targets=[("a", "p1")], kind="manual", now=T0)

    with pytest.raises(PartitionLocked) as caught:
        store.start_run(notebook="other", targets=[("b", "p1"), ("a", "p1")], kind="manual", now=at(1))

    assert (caught.value.asset, caught.value.partition, caught.value.holder_run_id) == ("a", "p1", holder.run_id)
    assert holder.run_id in str(caught.value)
    assert [r.run_id for r in store.list_runs()] == [holder.run_id]
    assert store.running() == {("a", "p1"): holder.run_id}
    assert kinds(store) == [EV_RUN_STARTED]


def test_a_lock_is_free_again_after_finalize_success_or_failure(store: MetadataStore) -> None:
    first = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
    store.finalize_success(first.run_id, [mat("a", "p")], now=at(1))
    second = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=at(2))
    store.finalize_failure(second.run_id, error="boom", now=at(3))
    third = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=at(4))
    assert store.running() == {("a", "p"): third.run_id}


def test_of_many_threads_starting_the_same_partition_exactly_one_wins(store: MetadataStore) -> None:
    barrier = threading.Barrier(6)
    won: list[str] = []
    lost: list[PartitionLocked] = []

    def contend() -> None:
        barrier.wait()
        try:
            won.append(store.start_run(notebook="nb", targets=[("a", "p")], kind="manual").run_id)
        except PartitionLocked as exc:
            lost.append(exc)

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 5
    assert {exc.holder_run_id for exc in lost} == set(won)
    assert store.running() == {("a", "p"): won[0]}


# -- heartbeat -----------------------------------------------------------------------------------------------------


def test_heartbeat_records_the_time_and_refuses_a_finished_or_unknown_run(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
    store.heartbeat(run.run_id, now=at(5))
    store.heartbeat(run.run_id, now=at(10))
    assert store.get_run(run.run_id).heartbeat_at == at(10)  # type: ignore[union-attr]
    store.finalize_failure(run.run_id, error="boom", now=at(11))
    with pytest.raises(StoreError, match=f"Run {run.run_id} is FAILED .boom., not RUNNING"):
        store.heartbeat(run.run_id, now=at(12))
    with pytest.raises(StoreError, match="Run nope does not exist"):
        store.heartbeat("nope")
    assert store.get_run(run.run_id).heartbeat_at == at(10)  # type: ignore[union-attr]


# -- finalize_success ------------------------------------------------------------------------------------------------


def test_finalize_success_commits_materializations_state_run_and_events(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p1"), ("b", "p1")], kind="schedule", now=T0)
    inputs = (ConsumedInput("up", "p1", 7, "u1", 5),)
    records = store.finalize_success(
        run.run_id,
        [
            mat("a", "p1", "da", row_count=10, schema={"x": "int64", "y": "str"}, null_rates={"y": 0.5},
                checks=(CheckResult("len(df) > 0", True),), duration_s=1.5, storage_path="data/a/p1.parquet",
                io="parquet", deps_signature="sig"),
            mat("b", "p1", "db", inputs=inputs),
        ],
        output_path="runs/out.ipynb",
        now=at(30),
    )

    a_id, b_id = records[0].id, records[1].id
    assert b_id > a_id
    assert records[0] == MaterializationRecord(
        id=a_id, asset="a", partition="p1", run_id=run.run_id, code_version="c1", data_version="da",
        deps_signature="sig", inputs=(), row_count=10, schema={"x": "int64", "y": "str"}, null_rates={"y": 0.5},
        checks=(CheckResult("len(df) > 0", True),), duration_s=1.5, storage_path="data/a/p1.parquet", io="parquet",
        created_at=at(30),
    )
    assert records[1].inputs == inputs
    assert store.latest_materialization("a", "p1") == records[0]
    assert store.latest_materialization("b", "p1") == records[1]
    assert store.materializations_by_id([a_id, b_id, 999]) == {a_id: records[0], b_id: records[1]}

    finished = store.get_run(run.run_id)
    assert finished == RunRecord(
        run_id=run.run_id, notebook="nb", assets=("a", "b"), partition_keys=("p1",), status="SUCCESS",
        kind="schedule", started_at=T0, ended_at=at(30), output_path="runs/out.ipynb",
    )
    assert store.running() == {}
    assert state(store, "a", "p1") == {
        "materialization_id": a_id, "code_version": "c1", "deps_signature": "sig", "data_version": "da",
        "data_seq": a_id, "inputs_seq": 0, "last_status": "SUCCESS", "last_run_id": run.run_id,
        "materialized_at": posix(at(30)),
    }
    assert state(store, "b", "p1")["inputs_seq"] == 5  # type: ignore[index]

    events = store.events_after(0)
    assert [(e.kind, e.asset, e.partition) for e in events] == [
        (EV_RUN_STARTED, None, None), (EV_MATERIALIZED, "a", "p1"), (EV_MATERIALIZED, "b", "p1"),
        (EV_RUN_SUCCESS, None, None),
    ]
    assert events[1].payload == {"materialization_id": a_id, "data_version": "da", "row_count": 10}
    assert events[2].payload == {"materialization_id": b_id, "data_version": "db", "row_count": None}
    assert events[3].payload == {"materializations": 2}
    assert {e.run_id for e in events} == {run.run_id}
    assert [e.timestamp for e in events[1:]] == [at(30)] * 3


def test_finalize_success_of_a_finished_run_raises_and_changes_nothing(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
    store.finalize_success(run.run_id, [mat("a", "p", "d1")], now=at(1))
    before = (store.snapshot(), store.last_event_id(), store.get_run(run.run_id))
    with pytest.raises(StoreError, match=f"Run {run.run_id} is SUCCESS, not RUNNING"):
        store.finalize_success(run.run_id, [mat("a", "p", "d2")], now=at(2))
    assert (store.snapshot(), store.last_event_id(), store.get_run(run.run_id)) == before
    assert len(store.materializations("a")) == 1


def _bad_row_count(asset: str) -> object:
    return mat(asset, "p", row_count=-1)


def _not_json(asset: str) -> object:
    return mat(asset, "p", schema={"x": object()})


def _no_asset(asset: str) -> object:
    return mat(None, "p")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [_bad_row_count, _not_json, _no_asset], ids=["db-constraint", "not-json", "no-asset"])
def test_finalize_success_with_a_bad_record_commits_nothing(store: MetadataStore, bad) -> None:  # noqa: ANN001
    run = store.start_run(notebook="nb", targets=[("a", "p"), ("b", "p")], kind="manual", now=T0)
    with pytest.raises(StoreError):
        store.finalize_success(run.run_id, [mat("a", "p"), bad("b")], now=at(1))
    assert store.get_run(run.run_id) == run  # still RUNNING
    assert store.running() == {("a", "p"): run.run_id, ("b", "p"): run.run_id}
    assert store.materializations("a") == [] and store.latest_materialization("a", "p") is None
    assert store.snapshot().assets == {}
    assert kinds(store) == [EV_RUN_STARTED]
    # ... and the run can still finish properly.
    store.finalize_success(run.run_id, [mat("a", "p"), mat("b", "p")], now=at(2))
    assert store.get_run(run.run_id).status == "SUCCESS"  # type: ignore[union-attr]


def test_finalize_success_of_a_reaped_run_raises_and_records_nothing(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
    store.reap_stale_runs(timeout_s=60, now=at(61))
    with pytest.raises(StoreError, match="FAILED .heartbeat lost"):
        store.finalize_success(run.run_id, [mat("a", "p")], now=at(62))
    assert store.materializations("a") == []
    assert state(store, "a", "p")["materialization_id"] is None  # type: ignore[index]


# -- data_seq and inputs_seq -------------------------------------------------------------------------------------------


def _materialize(
    store: MetadataStore, asset: str, partition: str, data_version: str, t: float, **fields: object
) -> int:
    run = store.start_run(notebook="nb", targets=[(asset, partition)], kind="manual", now=at(t))
    [record] = store.finalize_success(run.run_id, [mat(asset, partition, data_version, **fields)], now=at(t))
    return record.id


def test_data_seq_is_kept_for_identical_data_and_advances_for_new_data(store: MetadataStore) -> None:
    first = _materialize(store, "a", "p", "d1", 1)
    assert state(store, "a", "p")["data_seq"] == first  # type: ignore[index]

    same = _materialize(store, "a", "p", "d1", 2)
    assert state(store, "a", "p")["materialization_id"] == same  # type: ignore[index]
    assert state(store, "a", "p")["data_seq"] == first  # type: ignore[index]

    changed = _materialize(store, "a", "p", "d2", 3)
    assert state(store, "a", "p")["data_seq"] == changed  # type: ignore[index]

    failing = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=at(4))
    store.finalize_failure(failing.run_id, error="boom", now=at(4))
    assert state(store, "a", "p") == {
        "materialization_id": changed, "code_version": "c1", "deps_signature": "", "data_version": "d2",
        "data_seq": changed, "inputs_seq": 0, "last_status": "FAILED", "last_run_id": failing.run_id,
        "materialized_at": posix(at(3)),
    }
    again = _materialize(store, "a", "p", "d2", 5)  # same data as before the failure: still not new
    assert state(store, "a", "p")["data_seq"] == changed  # type: ignore[index]
    assert state(store, "a", "p")["materialization_id"] == again  # type: ignore[index]
    assert state(store, "a", "p")["last_status"] == "SUCCESS"  # type: ignore[index]


def test_inputs_seq_is_the_largest_data_seq_of_the_inputs(store: MetadataStore) -> None:
    inputs = (
        ConsumedInput("up", "p1", 3, "u1", 2), ConsumedInput("up", "p2", 9, "u2", 9), ConsumedInput("x", "p", 4, "x", 4)
    )
    _materialize(store, "down", "p", "d", 1, inputs=inputs)
    assert state(store, "down", "p")["inputs_seq"] == 9  # type: ignore[index]
    _materialize(store, "down", "p", "d", 2)
    assert state(store, "down", "p")["inputs_seq"] == 0  # type: ignore[index]


# -- finalize_failure ------------------------------------------------------------------------------------------------


def test_finalize_failure_fails_all_held_targets_by_default(store: MetadataStore) -> None:
    good = _materialize(store, "a", "p1", "d1", 1)
    run = store.start_run(notebook="nb", targets=[("b", "p1"), ("a", "p1")], kind="manual", now=at(2))
    checks = (CheckResult("len(df) > 0", False, "len(df) == 0"),)

    result = store.finalize_failure(
        run.run_id, error="ValueError: bad\nmore detail", error_cell=3, error_source="raise ValueError('bad')",
        checks=checks, output_path="runs/x.ipynb", now=at(9),
    )

    assert result == RunRecord(
        run_id=run.run_id, notebook="nb", assets=("b", "a"), partition_keys=("p1",), status="FAILED", kind="manual",
        started_at=at(2), ended_at=at(9), error="ValueError: bad\nmore detail", error_cell=3,
        error_source="raise ValueError('bad')", output_path="runs/x.ipynb", checks=checks,
    )
    assert store.get_run(run.run_id) == result
    assert store.running() == {}
    assert state(store, "a", "p1") == {
        "materialization_id": good, "code_version": "c1", "deps_signature": "", "data_version": "d1",
        "data_seq": good, "inputs_seq": 0, "last_status": "FAILED", "last_run_id": run.run_id,
        "materialized_at": posix(at(1)),
    }
    assert state(store, "b", "p1") == {
        "materialization_id": None, "code_version": None, "deps_signature": None, "data_version": None,
        "data_seq": 0, "inputs_seq": 0, "last_status": "FAILED", "last_run_id": run.run_id, "materialized_at": None,
    }
    events = store.events_after(3)  # after the first run's four events
    assert [(e.kind, e.asset, e.partition) for e in events] == [
        (EV_RUN_STARTED, None, None), (EV_PARTITION_FAILED, "a", "p1"), (EV_PARTITION_FAILED, "b", "p1"),
        (EV_RUN_FAILED, None, None),
    ]
    assert events[1].payload == {"error": "ValueError: bad", "checks": [["len(df) > 0", False, "len(df) == 0"]]}
    assert events[3].payload == {"error": "ValueError: bad", "error_cell": 3}


def test_finalize_failure_can_cancel_and_fail_only_some_targets(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p"), ("b", "p")], kind="manual", now=T0)
    result = store.finalize_failure(run.run_id, error="interrupted", failed_targets=[("b", "p")], status="CANCELED",
                                    now=at(1))
    assert result.status == "CANCELED"
    assert store.running() == {}
    assert sorted(store.snapshot().assets) == ["b"]
    assert state(store, "b", "p") == {
        "materialization_id": None, "code_version": None, "deps_signature": None, "data_version": None,
        "data_seq": 0, "inputs_seq": 0, "last_status": "CANCELED", "last_run_id": run.run_id, "materialized_at": None,
    }
    assert kinds(store) == [EV_RUN_STARTED, EV_PARTITION_CANCELED, EV_RUN_CANCELED]


def test_a_canceled_attempt_keeps_the_value_and_records_the_attempt(store: MetadataStore) -> None:
    good = _materialize(store, "a", "p", "d1", 1)
    run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=at(2))
    store.finalize_failure(run.run_id, error="interrupted", status="CANCELED", now=at(3))
    assert state(store, "a", "p") == {
        "materialization_id": good, "code_version": "c1", "deps_signature": "", "data_version": "d1",
        "data_seq": good, "inputs_seq": 0, "last_status": "CANCELED", "last_run_id": run.run_id,
        "materialized_at": posix(at(1)),
    }
    assert [(e.kind, e.asset, e.partition) for e in store.events_after(0)][-2:] == [
        (EV_PARTITION_CANCELED, "a", "p"), (EV_RUN_CANCELED, None, None)]


# -- consumed_versions ----------------------------------------------------------------------------------------------


def test_consumed_versions_gives_what_each_materialization_read(store: MetadataStore) -> None:
    up1 = _materialize(store, "up", "p1", "u1", 1)
    up2 = _materialize(store, "up", "p2", "u2", 2)
    inputs = (ConsumedInput("up", "p1", up1, "u1", up1), ConsumedInput("up", "p2", up2, "u2", up2))
    down = _materialize(store, "down", "p", "d", 3, inputs=inputs)
    assert store.consumed_versions([down, up1, 999_999]) == {
        down: (("up", "p1", "u1"), ("up", "p2", "u2")), up1: (),
    }
    assert store.consumed_versions([]) == {}


def test_finalize_failure_rejects_other_statuses_and_finished_runs(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
    with pytest.raises(StoreError, match="FAILED or CANCELED, not 'SUCCESS'"):
        store.finalize_failure(run.run_id, error="x", status="SUCCESS", now=at(1))
    assert store.get_run(run.run_id) == run and store.running() == {("a", "p"): run.run_id}
    store.finalize_failure(run.run_id, error="x", now=at(1))
    with pytest.raises(StoreError, match="is FAILED .x., not RUNNING"):
        store.finalize_failure(run.run_id, error="y", now=at(2))
    assert store.get_run(run.run_id).error == "x"  # type: ignore[union-attr]


# -- reaping -------------------------------------------------------------------------------------------------------


def test_reap_stale_runs_by_last_heartbeat_or_start_time(store: MetadataStore) -> None:
    beating = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
    store.heartbeat(beating.run_id, now=at(50))
    silent = store.start_run(notebook="nb", targets=[("b", "p"), ("c", "p")], kind="manual", now=T0)
    young = store.start_run(notebook="nb", targets=[("d", "p")], kind="manual", now=at(100))
    done = store.start_run(notebook="nb", targets=[("e", "p")], kind="manual", now=T0)
    store.finalize_success(done.run_id, [mat("e", "p")], now=at(1))

    assert store.reap_stale_runs(timeout_s=60, now=at(60)) == []  # exactly the timeout: not yet
    reaped = store.reap_stale_runs(timeout_s=60, now=at(101))

    assert [r.run_id for r in reaped] == [silent.run_id]
    assert reaped[0].status == "FAILED" and reaped[0].ended_at == at(101)
    assert reaped[0].error == (
        "heartbeat lost: no heartbeat since it started at 2026-03-01 12:00:00 UTC (timeout 60 s); "
        "the process running it probably died"
    )
    assert store.get_run(silent.run_id) == reaped[0]
    assert store.running() == {("a", "p"): beating.run_id, ("d", "p"): young.run_id}
    assert state(store, "b", "p")["last_status"] == "FAILED"  # type: ignore[index]
    assert state(store, "c", "p")["last_run_id"] == silent.run_id  # type: ignore[index]

    reaped = store.reap_stale_runs(timeout_s=60, now=at(111))
    assert [r.run_id for r in reaped] == [beating.run_id]
    assert reaped[0].error.startswith("heartbeat lost: no heartbeat since 2026-03-01 12:00:50 UTC")  # type: ignore[union-attr]
    assert store.running() == {("d", "p"): young.run_id}
    assert [e.kind for e in store.events_after(0) if e.run_id == silent.run_id] == [
        EV_RUN_STARTED, EV_PARTITION_FAILED, EV_PARTITION_FAILED, EV_RUN_FAILED
    ]
    assert store.get_run(done.run_id).status == "SUCCESS"  # type: ignore[union-attr]


# -- bulk ------------------------------------------------------------------------------------------------------------


def test_record_materializations_in_bulk_keeps_order_and_sequence_rules(store: MetadataStore) -> None:
    run = store.start_run(notebook=None, targets=[], kind="backfill", now=T0)
    batch = [mat(a, p, f"{a}{p}") for a in ("x", "y") for p in ("1", "2", "3")]
    batch += [mat("x", "1", "x1"), mat("x", "1", "changed"), mat("y", "2", "y2")]  # repeats within one batch

    ids = store.record_materializations(run.run_id, batch, now=at(5))

    assert len(ids) == 9 and ids == sorted(ids) and len(set(ids)) == 9
    assert [store.materializations_by_id(ids)[i].data_version for i in ids] == [m.data_version for m in batch]
    x1 = state(store, "x", "1")
    assert (x1["materialization_id"], x1["data_version"], x1["data_seq"]) == (ids[7], "changed", ids[7])  # type: ignore[index]
    y2 = state(store, "y", "2")
    assert (y2["materialization_id"], y2["data_seq"]) == (ids[8], ids[4])  # type: ignore[index]
    assert state(store, "x", "3")["data_seq"] == ids[2]  # type: ignore[index]
    assert store.get_run(run.run_id).status == "RUNNING"  # type: ignore[union-attr]
    assert kinds(store) == [EV_RUN_STARTED] + [EV_MATERIALIZED] * 9
    assert [e.payload["materialization_id"] for e in store.events_after(1)] == ids
    assert store.record_materializations(run.run_id, []) == []


def test_record_materializations_of_many_rows_in_one_call(store: MetadataStore) -> None:
    run = store.start_run(notebook=None, targets=[], kind="backfill", now=T0)
    batch = [mat(f"a{i % 7}", f"p{i}", f"d{i}") for i in range(2500)]  # more than one internal chunk
    ids = store.record_materializations(run.run_id, batch, now=at(1))
    assert len(ids) == 2500 and ids == sorted(ids)
    snap = store.snapshot()
    assert sum(len(s.partitions) for s in snap.assets.values()) == 2500
    assert snap.event_id == store.last_event_id() == 2501


# -- reads -----------------------------------------------------------------------------------------------------------


def test_list_runs_is_newest_first_with_filters_and_limit(store: MetadataStore) -> None:
    r1 = store.start_run(notebook="nb", targets=[("my_asset", "p")], kind="manual", now=at(1))
    r2 = store.start_run(notebook="nb", targets=[("myXasset", "p"), ("b", "p")], kind="schedule", now=at(2))
    r3 = store.start_run(notebook="nb", targets=[("b", "q")], kind="schedule", now=at(3))
    store.finalize_failure(r2.run_id, error="x", now=at(4))

    assert [r.run_id for r in store.list_runs()] == [r3.run_id, r2.run_id, r1.run_id]
    assert [r.run_id for r in store.list_runs(limit=2)] == [r3.run_id, r2.run_id]
    assert [r.run_id for r in store.list_runs(status="RUNNING")] == [r3.run_id, r1.run_id]
    assert [r.run_id for r in store.list_runs(kind="schedule")] == [r3.run_id, r2.run_id]
    assert [r.run_id for r in store.list_runs(asset="my_asset")] == [r1.run_id]  # "_" is not a wildcard
    assert [r.run_id for r in store.list_runs(asset="b", status="FAILED")] == [r2.run_id]
    assert store.list_runs(asset="nope") == []
    assert store.get_run("nope") is None


def test_materialization_history_is_newest_first(store: MetadataStore) -> None:
    ids = [_materialize(store, "a", p, v, t) for t, (p, v) in enumerate([("p1", "v1"), ("p2", "v1"), ("p1", "v2")])]
    assert [m.id for m in store.materializations("a")] == ids[::-1]
    assert [m.id for m in store.materializations("a", "p1")] == [ids[2], ids[0]]
    assert [m.id for m in store.materializations("a", limit=1)] == [ids[2]]
    assert store.materializations("b") == [] and store.latest_materialization("a", "p9") is None
    assert store.latest_materialization("a", "p1").data_version == "v2"  # type: ignore[union-attr]
    assert store.materializations_by_id([]) == {}


def test_events_are_monotonic_and_paged_by_id(store: MetadataStore) -> None:
    assert store.last_event_id() == 0 and store.events_after(0) == []
    for t in range(5):
        _materialize(store, "a", f"p{t}", "d", t)
    events = store.events_after(0)
    assert len(events) == 15 and [e.id for e in events] == sorted({e.id for e in events})
    assert store.last_event_id() == events[-1].id
    assert store.events_after(0, limit=4) == events[:4]
    assert store.events_after(events[3].id, limit=4) == events[4:8]
    assert store.events_after(events[-1].id) == []


def test_snapshot_holds_every_state_the_locks_and_the_event_mark(store: MetadataStore) -> None:
    ids = {p: _materialize(store, "a", p, f"d{p}", i) for i, p in enumerate(["2026-01-02", "2026-01-01", "2026-01-03"])}
    running = store.start_run(notebook="nb", targets=[("a", "2026-01-01"), ("b", "x")], kind="manual", now=at(10))

    snap = store.snapshot()

    assert snap.event_id == store.last_event_id()
    assert snap.running == {("a", "2026-01-01"): running.run_id, ("b", "x"): running.run_id}
    order = ["2026-01-01", "2026-01-02", "2026-01-03"]
    runs = {p: store.latest_materialization("a", p).run_id for p in order}  # type: ignore[union-attr]
    assert snap.assets == {
        "a": AssetStates(
            partitions=tuple(order),
            materialization_id=tuple(ids[p] for p in order),
            code_version=("c1",) * 3,
            deps_signature=("",) * 3,
            data_version=tuple(f"d{p}" for p in order),
            data_seq=tuple(ids[p] for p in order),
            inputs_seq=(0, 0, 0),
            last_status=("SUCCESS",) * 3,
            last_run_id=tuple(runs[p] for p in order),
            materialized_at=(posix(at(1)), posix(at(0)), posix(at(2))),
        )
    }
    assert store.snapshot(use_cache=False) == snap
    partial = store.snapshot(keys=[("a", "2026-01-03"), ("a", "2026-01-01"), ("zz", "p")])
    assert partial.assets["a"].partitions == ("2026-01-01", "2026-01-03")
    assert partial.assets["a"].materialization_id == (ids["2026-01-01"], ids["2026-01-03"])
    assert partial.running == snap.running and partial.event_id == snap.event_id
    assert store.snapshot(keys=[]).assets == {}


def test_timezone_aware_times_are_stored_as_naive_utc(store: MetadataStore) -> None:
    from datetime import timedelta, timezone

    paris = timezone(timedelta(hours=1))
    run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0.replace(tzinfo=paris))
    assert run.started_at == T0 - timedelta(hours=1)
    assert store.get_run(run.run_id).started_at == T0 - timedelta(hours=1)  # type: ignore[union-attr]
    store.finalize_success(run.run_id, [mat("a", "p")], now=at(10).replace(tzinfo=timezone.utc))
    assert store.latest_materialization("a", "p").created_at == at(10)  # type: ignore[union-attr]
    assert state(store, "a", "p")["materialized_at"] == posix(at(10))  # type: ignore[index]
    assert posix(at(10)) == at(10).replace(tzinfo=timezone.utc).timestamp()


def test_a_run_without_targets_and_the_default_clock(store: MetadataStore) -> None:
    from datetime import datetime, timezone

    before = datetime.now(timezone.utc).replace(tzinfo=None)
    run = store.start_run(notebook="nb", targets=[], kind="interactive")
    assert before <= run.started_at <= datetime.now(timezone.utc).replace(tzinfo=None)
    assert store.running() == {}
    assert store.finalize_failure(run.run_id, error="x").status == "FAILED"
    assert kinds(store) == [EV_RUN_STARTED, EV_RUN_FAILED]


def test_inputs_from_earlier_in_the_same_run_are_resolved_at_finalize(store: MetadataStore) -> None:
    from notebook_orch.store import SAME_RUN

    old = _materialize(store, "a", "p", "old", 1)
    run = store.start_run(notebook="nb", targets=[("a", "p"), ("b", "p"), ("c", "p")], kind="manual", now=at(2))
    records = store.finalize_success(
        run.run_id,
        [
            mat("a", "p", "new"),
            mat("b", "p", "db", inputs=(ConsumedInput("a", "p", SAME_RUN, "new", SAME_RUN),)),
            mat("c", "p", "dc", inputs=(ConsumedInput("b", "p", SAME_RUN, "db", SAME_RUN),
                                        ConsumedInput("a", "p", old, "old", old))),
        ],
        now=at(3),
    )
    a, b, c = (r.id for r in records)
    assert records[1].inputs == (ConsumedInput("a", "p", a, "new", a),)
    assert store.latest_materialization("c", "p").inputs == (  # type: ignore[union-attr]
        ConsumedInput("b", "p", b, "db", b), ConsumedInput("a", "p", old, "old", old)
    )
    assert (state(store, "b", "p")["inputs_seq"], state(store, "c", "p")["inputs_seq"]) == (a, b)  # type: ignore[index]


def test_a_same_run_input_the_run_did_not_record_first_commits_nothing(store: MetadataStore) -> None:
    from notebook_orch.store import SAME_RUN

    run = store.start_run(notebook="nb", targets=[("a", "p"), ("b", "p")], kind="manual", now=T0)
    bad = [mat("b", "p", inputs=(ConsumedInput("a", "p", SAME_RUN, "d1", SAME_RUN),)), mat("a", "p")]
    with pytest.raises(StoreError, match=r"read a\[p\] from earlier in the same run"):
        store.finalize_success(run.run_id, bad, now=at(1))
    assert store.get_run(run.run_id) == run and store.snapshot().assets == {}
    assert kinds(store) == [EV_RUN_STARTED]
