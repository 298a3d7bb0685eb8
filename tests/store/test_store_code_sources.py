"""The code_versions table: each (asset, code version)'s normalized source, kept for ``nbo stale``'s diffs.

Contract tests (every backend of the ``store`` fixture) plus opening a store written before the table existed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_helpers import T0, at, mat

from notebook_orch.store import MetadataStore, open_store


def test_a_materialization_keeps_its_code_versions_source_once(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p1"), ("a", "p2"), ("b", "p1")], kind="manual", now=T0)
    store.finalize_success(run.run_id, [
        mat("a", "p1", code_version="v1", code_source="a = 1\n"),
        mat("a", "p2", code_version="v1", code_source="a = 1\n"),
        mat("b", "p1", code_version="w1", code_source="b = a\n"),
    ], now=at(1))

    assert store.code_sources([("a", "v1"), ("b", "w1")]) == {("a", "v1"): "a = 1\n", ("b", "w1"): "b = a\n"}
    assert store.code_sources([("a", "w1"), ("a", "nope")]) == {}  # keyed by asset and version together


def test_the_first_source_recorded_for_a_version_is_kept(store: MetadataStore) -> None:
    # An explicit --code-version may stay while the cell changes: the source it was first built with stays.
    first = store.start_run(notebook="nb", targets=[("a", "p1")], kind="manual", now=T0)
    store.finalize_success(first.run_id, [mat("a", "p1", code_version="1", code_source="a = 1\n")], now=at(1))
    second = store.start_run(notebook="nb", targets=[("a", "p1")], kind="manual", now=at(2))
    store.finalize_success(second.run_id, [mat("a", "p1", code_version="1", code_source="a = 2\n")], now=at(3))

    assert store.code_sources([("a", "1")]) == {("a", "1"): "a = 1\n"}


def test_the_same_explicit_version_of_two_assets_keeps_both_sources(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p"), ("b", "p")], kind="manual", now=T0)
    store.finalize_success(run.run_id, [mat("a", "p", code_version="1", code_source="a = 1\n"),
                                        mat("b", "p", code_version="1", code_source="b = 1\n")], now=at(1))

    assert store.code_sources([("a", "1"), ("b", "1")]) == {("a", "1"): "a = 1\n", ("b", "1"): "b = 1\n"}


def test_materializations_without_a_source_record_none(store: MetadataStore) -> None:
    run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=T0)
    store.record_materializations(run.run_id, [mat("a", "p", code_version="v1")], now=at(1))

    assert store.latest_materialization("a", "p").code_version == "v1"  # type: ignore[union-attr]
    assert store.code_sources([("a", "v1")]) == {}


def test_a_store_written_by_0_1_0_gains_the_table_on_open_and_keeps_sources_from_then_on(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # the frozen dump of a store written by notebook_orch 0.1.0
        raw.executescript((Path(__file__).parent / "fixtures" / "schema_v1.sqlite.sql").read_text())
        assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'code_versions'").fetchall() == []

    with open_store(f"sqlite:///{path}") as store:
        old = store.latest_materialization("clean", "2026-01-01")
        assert old is not None and store.code_sources([("clean", old.code_version)]) == {}  # built before: none
        run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual", now=at(2))
        store.finalize_success(run.run_id, [mat("a", "p", code_version="v1", code_source="a = 1\n")], now=at(3))
        assert store.code_sources([("a", "v1")]) == {("a", "v1"): "a = 1\n"}
