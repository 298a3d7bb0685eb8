"""The snapshot cache never changes what a snapshot says: cached == uncached == a simple model, whatever happens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import T0, at, mat

from notebook_orch.store import AssetStates, MetadataStore, open_store, state_pack

ASSETS = ["a", "b", "c_d"]
PARTS = ["p1", "p2", "p3"]
VERSIONS = ["v1", "v2"]

key = st.tuples(st.sampled_from(ASSETS), st.sampled_from(PARTS))
op = st.one_of(
    st.tuples(st.just("materialize"), key, st.sampled_from(VERSIONS)),
    st.tuples(st.just("fail"), key, st.none()),
    st.tuples(st.just("bulk"), st.lists(st.tuples(key, st.sampled_from(VERSIONS)), min_size=1, max_size=5), st.none()),
    st.tuples(st.just("start"), key, st.none()),
    st.tuples(st.just("snapshot"), st.none(), st.none()),
    st.tuples(st.just("corrupt"), st.sampled_from(ASSETS), st.none()),
    st.tuples(st.just("forget"), st.sampled_from(ASSETS), st.none()),
)


class Model:
    """What partition_state must hold: the rules written out plainly."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, object]] = {}

    def materialized(self, asset: str, partition: str, version: str, mid: int, run_id: str) -> None:
        prev = self.rows.get((asset, partition))
        same = prev is not None and prev["mid"] is not None and prev["version"] == version
        self.rows[(asset, partition)] = {
            "mid": mid, "version": version, "seq": prev["seq"] if same else mid, "status": "SUCCESS", "run": run_id
        }

    def failed(self, asset: str, partition: str, run_id: str) -> None:
        row = self.rows.setdefault((asset, partition), {"mid": None, "version": None, "seq": 0})
        row.update(status="FAILED", run=run_id)

    def check(self, assets: dict[str, AssetStates]) -> None:
        got = {
            (a, p): {"mid": s.materialization_id[i], "version": s.data_version[i], "seq": s.data_seq[i],
                     "status": s.last_status[i], "run": s.last_run_id[i]}
            for a, s in assets.items() for i, p in enumerate(s.partitions)
        }
        assert got == self.rows


def _corrupt(store: MetadataStore, asset: str) -> None:
    with store._engine.begin() as conn:  # noqa: SLF001 - damaging the cache on purpose
        conn.execute(sa.text("UPDATE state_cache SET payload = :p WHERE asset = :a"),
                     {"p": b"\x02\x00\x00\x00garbage", "a": asset})


def _forget(store: MetadataStore, asset: str) -> None:
    with store._engine.begin() as conn:  # noqa: SLF001
        conn.execute(sa.text("DELETE FROM state_cache WHERE asset = :a"), {"a": asset})


def _empty_store(url: str) -> MetadataStore:
    store = open_store(url)
    if url.startswith("postgresql"):  # one database for all examples: start each from empty tables
        with store._engine.begin() as conn:  # noqa: SLF001
            conn.exec_driver_sql(
                "TRUNCATE runs, materializations, partition_state, partition_locks, events, state_cache, pool_slots, "
                "pool_waits"
            )
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request: pytest.FixtureRequest) -> str:
    """A new in-memory SQLite database per open, or one PostgreSQL database emptied per example."""
    return "sqlite://" if request.param == "sqlite" else request.getfixturevalue("pg_databases").fresh()


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=25))
def test_cached_snapshots_always_equal_uncached_ones_and_the_model(scratch_url: str, ops: list[tuple]) -> None:
    store = _empty_store(scratch_url)
    model = Model()
    t = 0.0
    try:
        for kind, arg, version in ops:
            t += 1
            if kind == "materialize":
                if arg in store.running():
                    continue
                run = store.start_run(notebook="nb", targets=[arg], kind="manual", now=at(t))
                [record] = store.finalize_success(run.run_id, [mat(*arg, version)], now=at(t))
                model.materialized(*arg, version, record.id, run.run_id)
            elif kind == "fail":
                if arg in store.running():
                    continue
                run = store.start_run(notebook="nb", targets=[arg], kind="manual", now=at(t))
                store.finalize_failure(run.run_id, error="boom", now=at(t))
                model.failed(*arg, run.run_id)
            elif kind == "bulk":
                run = store.start_run(notebook="nb", targets=[], kind="backfill", now=at(t))
                ids = store.record_materializations(run.run_id, [mat(a, p, v) for (a, p), v in arg], now=at(t))
                for ((a, p), v), mid in zip(arg, ids):
                    model.materialized(a, p, v, mid, run.run_id)
            elif kind == "start":
                if arg not in store.running():
                    store.start_run(notebook="nb", targets=[arg], kind="manual", now=at(t))
            elif kind == "corrupt":
                _corrupt(store, arg)
            elif kind == "forget":
                _forget(store, arg)
            cached = store.snapshot()
            assert cached == store.snapshot(use_cache=False)
            model.check(cached.assets)
    finally:
        store.close()


def test_a_cache_of_another_format_or_damaged_is_ignored_and_rewritten(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    names = [f"asset{i:02d}" for i in range(20)]  # 2 bad entries of 20: below the share that triggers a full read
    with open_store(url) as store:
        run = store.start_run(notebook="nb", targets=[], kind="backfill", now=T0)
        store.record_materializations(run.run_id, [mat(a, p) for a in names for p in PARTS], now=T0)
        truth = store.snapshot(use_cache=False)
        assert store.snapshot() == truth
    with sqlite3.connect(tmp_path / "s.db") as raw:
        assert raw.execute("SELECT COUNT(*) FROM state_cache WHERE payload IS NOT NULL").fetchone() == (20,)
        raw.execute("UPDATE state_cache SET format = 'old-format' WHERE asset = 'asset00'")
        raw.execute("UPDATE state_cache SET payload = x'00' WHERE asset = 'asset01'")
    with open_store(url) as store:
        assert store.snapshot() == truth
    with sqlite3.connect(tmp_path / "s.db") as raw:
        rows = raw.execute("SELECT asset, format, payload FROM state_cache WHERE asset != '' ORDER BY asset").fetchall()
    assert [(a, f) for a, f, _ in rows] == [(a, state_pack.FORMAT) for a in names]
    assert [state_pack.unpack(p) for _, _, p in rows] == [truth.assets[a] for a in names]


def test_an_asset_that_cannot_be_packed_is_read_every_time(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[], kind="backfill", now=T0)
    store.record_materializations(run.run_id, [mat("a", "odd\x1fkey"), mat("b", "p")], now=T0)
    first = store.snapshot()
    assert first.assets["a"].partitions == ("odd\x1fkey",)
    assert store.snapshot() == first == store.snapshot(use_cache=False)


text = st.one_of(st.none(), st.text(max_size=6))
maybe_int = st.one_of(st.none(), st.integers(0, 2**62))


@given(
    st.lists(
        st.tuples(st.text(max_size=8), maybe_int, text, text, text, st.integers(0, 2**62), st.integers(0, 2**62),
                  st.sampled_from(["SUCCESS", "FAILED"]), text,
                  st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))),
        max_size=30,
    )
)
def test_pack_then_unpack_gives_back_the_same_states(rows: list[tuple]) -> None:
    states = AssetStates(*(tuple(col) for col in zip(*rows))) if rows else AssetStates(*[()] * 10)
    packed = state_pack.pack(states)
    if packed is None:  # only when a text value holds the separator
        assert any("\x1f" in v for row in rows for v in (row[0], row[2], row[3], row[4], row[8]) if v)
    else:
        assert state_pack.unpack(packed) == states


@pytest.mark.parametrize("junk", [b"", b"\x01", b"\x05\x00\x00\x00" + b"\x00" * 7, b"\xff" * 64])
def test_unpacking_junk_raises_value_error(junk: bytes) -> None:
    with pytest.raises(ValueError):
        state_pack.unpack(junk)


def test_a_snapshot_does_not_wait_for_a_busy_writer_to_refresh_its_cache(tmp_path: Path) -> None:
    import time

    import sqlalchemy as sa

    from notebook_orch.store.engine import write_txn

    url = f"sqlite:///{tmp_path}/s.db"
    with open_store(url) as store:
        run = store.start_run(notebook="nb", targets=[], kind="backfill", now=T0)
        store.record_materializations(run.run_id, [mat(a, p) for a in ASSETS for p in PARTS], now=T0)
        truth = store.snapshot(use_cache=False)
        blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
        try:
            t0 = time.perf_counter()
            assert store.snapshot() == truth  # reads fine; the cache refresh gives up after a short wait
            assert time.perf_counter() - t0 < 5
            with pytest.raises(sa.exc.OperationalError, match="database is locked"):
                with write_txn(store._engine, wait_ms=50):  # noqa: SLF001
                    pass
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert raw_cache_rows(tmp_path / "s.db") == 0
        assert store.snapshot() == truth
        assert raw_cache_rows(tmp_path / "s.db") == len(ASSETS)
        # Every pooled connection is back to the normal 30 s wait once its next transaction begins.
        engine = store._engine  # noqa: SLF001
        conns = [engine.connect() for _ in range(3)]
        assert [c.exec_driver_sql("PRAGMA busy_timeout").scalar() for c in conns] == [30_000] * 3
        for c in conns:
            c.close()
        store.finalize_success(store.start_run(notebook="nb", targets=[("a", "x")], kind="manual").run_id, [])


def raw_cache_rows(path: Path) -> int:
    with sqlite3.connect(path) as raw:
        return raw.execute("SELECT COUNT(*) FROM state_cache WHERE asset != ''").fetchone()[0]
