"""ValueStore against real files in tmp_path: layout, markers, refusals, atomicity, abandoned writes."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from notebook_orch.errors import ValueStorageError
from notebook_orch.storage import (
    PublishedValue,
    StagedValue,
    ValueMetadata,
    ValueStore,
    default_registry,
)

DAY = "2013-01-01"


def frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2, None], "y": ["a", "b", "c"]})


def tree(root: Path) -> list[str]:
    """Every path under root, relative, sorted — what a reader could possibly see."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(root: Path) -> ValueStore:
    return ValueStore(root)


# -- publishing and loading -----------------------------------------------------------------------------------
def test_publish_a_frame_lays_out_value_and_marker(store: ValueStore, root: Path) -> None:
    before = datetime.now(timezone.utc)
    published = store.publish("sales", DAY, frame(), run_id="r1")
    after = datetime.now(timezone.utc)

    assert tree(root) == ["sales", f"sales/{DAY}", f"sales/{DAY}/r1", f"sales/{DAY}/r1/_SUCCESS",
                          f"sales/{DAY}/r1/value.parquet"]
    assert published.asset == "sales" and published.partition == DAY and published.version_id == "r1"
    assert published.path == root / "sales" / DAY / "r1"
    assert published.storage_path == root / "sales" / DAY / "r1" / "value.parquet"
    assert published.handler == "parquet"
    assert published.run_id == "r1"
    assert published.data_version == default_registry().get("parquet").data_version(frame())
    assert published.metadata == ValueMetadata(3, {"x": "float64", "y": "str"}, {"x": 1 / 3, "y": 0.0})
    assert before <= published.written_at <= after

    marker = json.loads((published.path / "_SUCCESS").read_text())
    assert marker == {
        "format": 1,
        "asset": "sales",
        "partition": DAY,
        "version_id": "r1",
        "run_id": "r1",
        "handler": "parquet",
        "file": "value.parquet",
        "data_version": published.data_version,
        "written_at": published.written_at.isoformat(),
        "row_count": 3,
        "schema": {"x": "float64", "y": "str"},
        "null_rates": {"x": 1 / 3, "y": 0.0},
    }


def test_load_by_every_kind_of_reference(store: ValueStore) -> None:
    published = store.publish("sales", DAY, frame(), run_id="r1")
    for ref in (published, published.storage_path, published.path, str(published.path), ("sales", DAY, "r1")):
        pd.testing.assert_frame_equal(store.load(ref), frame())


def test_a_store_with_a_fresh_registry_reads_what_another_wrote(store: ValueStore, root: Path) -> None:
    store.publish("summary", "unpartitioned", {"n": 3, "names": ["a"]}, run_id="r1")
    other = ValueStore(root)
    latest = other.latest_published("summary", "unpartitioned")
    assert latest is not None and latest.handler == "json"
    assert other.load(latest) == {"n": 3, "names": ["a"]}
    assert latest.metadata == ValueMetadata(row_count=2)


def test_publish_with_explicit_pickle(store: ValueStore) -> None:
    published = store.publish("ids", "unpartitioned", {3, 1, 2}, io="pickle", run_id="r1")
    assert published.storage_path.name == "value.pkl"
    assert store.load(published) == {1, 2, 3}
    assert published.metadata == ValueMetadata(row_count=3)


def test_publish_refuses_unstorable_value_before_touching_disk(store: ValueStore, root: Path) -> None:
    with pytest.raises(ValueStorageError, match="Asset 'ids' holds a set.*add --io pickle"):
        store.publish("ids", "unpartitioned", {1, 2}, run_id="r1")
    assert tree(root) == []


def test_same_run_publishing_twice_gets_a_counter(store: ValueStore, root: Path) -> None:
    first = store.publish("t", DAY, [1], run_id="r1")
    second = store.publish("t", DAY, [1, 2], run_id="r1")
    third = store.publish("t", DAY, [1, 2, 3], run_id="r1")
    assert (first.version_id, second.version_id, third.version_id) == ("r1", "r1.1", "r1.2")
    assert store.load(first) == [1] and store.load(third) == [1, 2, 3]
    assert store.latest_published("t", DAY) == third


def test_latest_published_is_the_newest_marker_not_the_largest_name(store: ValueStore) -> None:
    assert store.latest_published("t", DAY) is None
    store.publish("t", DAY, [1], run_id="zzz")
    newest = store.publish("t", DAY, [2], run_id="aaa")
    assert store.latest_published("t", DAY) == newest
    assert [v.version_id for v in store.versions("t", DAY)] == ["zzz", "aaa"]


def test_identical_data_published_twice_has_one_data_version(store: ValueStore) -> None:
    a = store.publish("sales", DAY, frame(), run_id="r1")
    b = store.publish("sales", DAY, frame(), run_id="r2")
    changed = frame()
    changed.loc[0, "y"] = "z"
    c = store.publish("sales", DAY, changed, run_id="r3")
    assert a.data_version == b.data_version != c.data_version


def test_partitions_and_assets_are_separate(store: ValueStore) -> None:
    store.publish("a", "us", [1], run_id="r1")
    store.publish("a", "eu", [2], run_id="r1")
    store.publish("b", "us", [3], run_id="r1")
    assert store.load(("a", "us", "r1")) == [1]
    assert store.load(("a", "eu", "r1")) == [2]
    assert store.load(("b", "us", "r1")) == [3]
    assert store.latest_published("b", "eu") is None


# -- bad names ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("asset", ["../evil", "a/b", "a\\b", ".hidden", "", "not-an-identifier", "class", "..", "x.."])
def test_path_like_or_bad_asset_names_are_refused_and_nothing_is_written(
    store: ValueStore, root: Path, asset: str
) -> None:
    with pytest.raises(ValueStorageError) as info:
        store.publish(asset, DAY, [1], run_id="r1")
    assert f"Asset {asset!r}" in str(info.value)
    assert tree(root) == []
    with pytest.raises(ValueStorageError):
        store.latest_published(asset, DAY)
    with pytest.raises(ValueStorageError):
        store.load((asset, DAY, "r1"))
    assert not root.exists()


@pytest.mark.parametrize("partition", ["../x", "a/b", "a\\b", ".", "..", ".hidden", "", "x\x00y"])
def test_path_like_partition_keys_are_refused_and_nothing_is_written(
    store: ValueStore, root: Path, partition: str
) -> None:
    with pytest.raises(ValueStorageError) as info:
        store.publish("sales", partition, [1], run_id="r1")
    assert f"partition {partition!r}" in str(info.value)
    assert "path-like or empty" in str(info.value)
    with pytest.raises(ValueStorageError):
        store.stage("sales", partition, [1], run_id="r1")
    assert not root.exists()


@pytest.mark.parametrize("run_id", ["../r", "a/b", ".r", "-r", "", "r..1", "a b"])
def test_path_like_run_ids_are_refused_and_nothing_is_written(store: ValueStore, root: Path, run_id: str) -> None:
    with pytest.raises(ValueStorageError, match=f"Run id {run_id!r} cannot name a folder"):
        store.publish("sales", DAY, [1], run_id=run_id)
    with pytest.raises(ValueStorageError, match="Version id"):
        store.load(("sales", DAY, run_id))
    assert not root.exists()


# -- atomicity ---------------------------------------------------------------------------------------------------
class Unpicklable:
    def __reduce__(self) -> Any:
        raise RuntimeError("cannot pickle this part")


def test_serialization_failing_partway_leaves_nothing(store: ValueStore, root: Path) -> None:
    value = ["x" * 200_000, Unpicklable()]  # the first item is written before the second one fails
    with pytest.raises(ValueStorageError) as info:
        store.publish("model", DAY, value, io="pickle", run_id="r1")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(info.value) == (
        f"Asset 'model', partition '{DAY}': the value could not be versioned as pickle: cannot pickle this part. "
        "Nothing was published."
    )
    assert tree(root) == []


class HalfWriter:
    """Writes part of a file, then fails like a full disk; records what existed at that moment."""

    name = "half"
    extension = "bin"
    seen: list[str] = []

    def can_handle(self, value: Any) -> bool:
        return True

    def write(self, value: Any, path: Path) -> None:
        path.write_bytes(b"partial")
        HalfWriter.seen = tree(path.parents[3])
        raise OSError(28, "No space left on device")

    def read(self, path: Path) -> Any:
        return path.read_bytes()

    def data_version(self, value: Any) -> str:
        return "0" * 32

    def describe(self, value: Any) -> ValueMetadata:
        return ValueMetadata()


def test_a_write_failing_after_bytes_hit_the_disk_leaves_nothing(root: Path) -> None:
    registry = default_registry()
    registry.register(HalfWriter())
    store = ValueStore(root, registry)
    with pytest.raises(ValueStorageError) as info:
        store.publish("t", DAY, b"", io="half", run_id="r1")
    assert isinstance(info.value.__cause__, OSError)
    assert "could not be written as half: [Errno 28] No space left on device" in str(info.value)
    # The partial file was there, in a temp folder only...
    [partial] = [p for p in HalfWriter.seen if p.endswith("value.bin")]
    assert partial.startswith(f"t/{DAY}/.tmp-r1-")
    # ...and is gone, with the empty folders it created.
    assert tree(root) == []


def test_a_failing_write_keeps_earlier_versions_intact(store: ValueStore, root: Path, monkeypatch) -> None:
    good = store.publish("t", DAY, [1], run_id="r1")
    before = tree(root)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("replace failed")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ValueStorageError) as info:
        store.publish("t", DAY, [2], run_id="r2")
    monkeypatch.undo()
    assert "the _SUCCESS marker could not be written: replace failed" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert tree(root) == before  # no r2 folder, no _SUCCESS, no temp
    assert store.latest_published("t", DAY) == good


def test_os_replace_failing_on_the_first_publish_leaves_no_folders(store: ValueStore, root: Path, monkeypatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("nope")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ValueStorageError):
        store.publish("t", DAY, frame(), run_id="r1")
    assert tree(root) == []


def test_rename_failing_leaves_nothing(store: ValueStore, root: Path, monkeypatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("rename refused")

    monkeypatch.setattr(os, "rename", boom)
    with pytest.raises(ValueStorageError, match="could not be moved into place: rename refused") as info:
        store.publish("t", DAY, [1], run_id="r1")
    assert isinstance(info.value.__cause__, PermissionError)
    assert tree(root) == []


class LossyHandler(HalfWriter):
    """Writes fine but reads back one row fewer: verification must catch it."""

    name = "lossy"
    extension = "json"

    def write(self, value: Any, path: Path) -> None:
        path.write_text(json.dumps(value))

    def read(self, path: Path) -> Any:
        return json.loads(path.read_text())[:-1]

    def describe(self, value: Any) -> ValueMetadata:
        return ValueMetadata(row_count=len(value))


def test_verification_catches_a_value_that_does_not_read_back(root: Path) -> None:
    registry = default_registry()
    registry.register(LossyHandler())
    store = ValueStore(root, registry)
    with pytest.raises(ValueStorageError) as info:
        store.publish("t", DAY, [1, 2], io="lossy", run_id="r1")
    assert "reading the lossy file back gave a different value: row_count 2 became 1" in str(info.value)
    assert tree(root) == []


def test_an_interrupt_during_the_write_cleans_up_and_propagates(root: Path) -> None:
    class Interrupted(HalfWriter):
        name = "interrupted"

        def write(self, value: Any, path: Path) -> None:
            path.write_bytes(b"partial")
            raise KeyboardInterrupt

    registry = default_registry()
    registry.register(Interrupted())
    with pytest.raises(KeyboardInterrupt):
        ValueStore(root, registry).publish("t", DAY, 1, io="interrupted", run_id="r1")
    assert tree(root) == []


# -- stage / commit / discard ---------------------------------------------------------------------------------------
def test_a_staged_value_is_invisible_until_committed(store: ValueStore, root: Path) -> None:
    staged = store.stage("sales", DAY, frame(), run_id="r1")
    assert isinstance(staged, StagedValue)
    assert staged.temp_dir.parent == root / "sales" / DAY
    assert staged.temp_dir.name.startswith(".tmp-r1-")
    assert [p.name for p in staged.temp_dir.iterdir()] == ["value.parquet"]
    assert staged.handler == "parquet"
    assert staged.metadata.row_count == 3
    assert store.latest_published("sales", DAY) is None
    with pytest.raises(ValueStorageError, match="is not published: it has no valid _SUCCESS marker"):
        store.load(staged.temp_dir)

    published = store.commit(staged)
    assert isinstance(published, PublishedValue)
    assert published.data_version == staged.data_version
    assert published.metadata == staged.metadata
    assert not staged.temp_dir.exists()
    assert tree(root / "sales" / DAY) == ["r1", "r1/_SUCCESS", "r1/value.parquet"]
    with pytest.raises(ValueStorageError, match="the staged value .* is gone .* stage it again"):
        store.commit(staged)


def test_discard_removes_the_staged_value(store: ValueStore, root: Path) -> None:
    keep = store.publish("t", DAY, [0], run_id="r0")
    staged = store.stage("t", DAY, [1], run_id="r1")
    store.discard(staged)
    store.discard(staged)  # idempotent
    assert tree(root / "t" / DAY) == ["r0", "r0/_SUCCESS", "r0/value.json"]
    assert store.latest_published("t", DAY) == keep


def test_discarding_the_only_value_removes_the_empty_folders(store: ValueStore, root: Path) -> None:
    store.discard(store.stage("t", DAY, [1], run_id="r1"))
    assert tree(root) == []


def test_two_runs_staging_the_same_partition_both_commit(store: ValueStore) -> None:
    a = store.stage("t", DAY, [1], run_id="ra")
    b = store.stage("t", DAY, [2], run_id="rb")
    assert a.temp_dir != b.temp_dir
    pb = store.commit(b)
    pa = store.commit(a)
    assert store.latest_published("t", DAY) == pa
    assert store.load(pb) == [2]


def test_checks_run_between_stage_and_commit(store: ValueStore, root: Path) -> None:
    seen = []

    def checks(value: Any) -> None:
        seen.append(value)
        assert tree(root / "t" / DAY)[0].startswith(".tmp-r1-")  # staged, not yet published

    published = store.publish("t", DAY, [1, 2], run_id="r1", checks=checks)
    assert seen == [[1, 2]]
    assert store.load(published) == [1, 2]


def test_a_failing_check_discards_and_propagates_unchanged(store: ValueStore, root: Path) -> None:
    class CheckFailed(Exception):
        pass

    def checks(value: Any) -> None:
        raise CheckFailed("len(t) > 5 is False")

    with pytest.raises(CheckFailed, match=r"len\(t\) > 5 is False"):
        store.publish("t", DAY, [1], run_id="r1", checks=checks)
    assert tree(root) == []


# -- what readers refuse ---------------------------------------------------------------------------------------------
def test_a_version_folder_without_success_is_not_loadable(store: ValueStore) -> None:
    published = store.publish("t", DAY, [1], run_id="r1")
    (published.path / "_SUCCESS").unlink()
    for ref in (published, published.storage_path, published.path, ("t", DAY, "r1")):
        with pytest.raises(ValueStorageError) as info:
            store.load(ref)
        assert str(info.value) == (
            f"{published.path} is not published: it has no valid _SUCCESS marker (its writer failed, was killed or is "
            "still running); load a published version, e.g. ValueStore.latest_published(asset, partition)."
        )
    assert store.latest_published("t", DAY) is None


@pytest.mark.parametrize(
    "marker",
    [b"{not json", b"[]", b'{"handler": "json"}', b"",
     b'{"handler":"json","file":"../../x/value.json","data_version":"0","run_id":"r","written_at":"2020-01-01"}',
     b'{"handler":"json","file":"value.json","data_version":"0","run_id":"r","written_at":"yesterday"}'],
)
def test_corrupt_or_escaping_markers_are_not_published(store: ValueStore, marker: bytes) -> None:
    published = store.publish("t", DAY, [1], run_id="r1")
    (published.path / "_SUCCESS").write_bytes(marker)
    with pytest.raises(ValueStorageError, match="is not published"):
        store.load(published.path)
    assert store.latest_published("t", DAY) is None


def test_a_marker_whose_value_file_is_missing_is_skipped(store: ValueStore) -> None:
    older = store.publish("t", DAY, [1], run_id="r1")
    newer = store.publish("t", DAY, [2], run_id="r2")
    newer.storage_path.unlink()
    assert store.latest_published("t", DAY) == older


def test_loading_a_missing_path(store: ValueStore, root: Path) -> None:
    with pytest.raises(ValueStorageError, match="There is no stored value at .*nowhere; check the path"):
        store.load(root / "nowhere")


def test_a_marker_naming_an_unknown_handler(store: ValueStore) -> None:
    published = store.publish("t", DAY, [1], run_id="r1")
    marker = json.loads((published.path / "_SUCCESS").read_text())
    marker["handler"] = "jsn"
    (published.path / "_SUCCESS").write_text(json.dumps(marker))
    with pytest.raises(ValueStorageError, match="no value handler named 'jsn'; .* Did you mean 'json'"):
        store.load(published)


def test_an_unreadable_value_file(store: ValueStore) -> None:
    published = store.publish("t", DAY, frame(), run_id="r1")
    published.storage_path.write_bytes(b"garbage")
    with pytest.raises(ValueStorageError, match="could not be read as parquet") as info:
        store.load(published)
    assert info.value.__cause__ is not None


# -- killed writers and cleanup --------------------------------------------------------------------------------------
def leave_killed_writer_debris(store: ValueStore, root: Path) -> tuple[PublishedValue, list[Path]]:
    """What `kill -9` at each step leaves: a temp folder with a partial file, a renamed folder that never got its
    marker, a marker temp file next to a published value."""
    good = store.publish("t", DAY, frame(), run_id="r1")
    part = root / "t" / DAY
    temp = part / ".tmp-r9-0a1b2c"
    temp.mkdir()
    (temp / "value.parquet").write_bytes(good.storage_path.read_bytes()[:100])
    orphan = part / "r8"
    orphan.mkdir()
    shutil.copy(good.storage_path, orphan / "value.parquet")
    stray = good.path / "_SUCCESS.tmp-deadbeef"
    stray.write_text('{"half": ')
    return good, [temp, orphan, stray]


def test_a_killed_writer_leaves_nothing_visible(store: ValueStore, root: Path) -> None:
    good, (temp, orphan, _stray) = leave_killed_writer_debris(store, root)
    assert store.latest_published("t", DAY) == good
    assert [v.version_id for v in store.versions("t", DAY)] == ["r1"]
    for path in (temp, orphan):
        with pytest.raises(ValueStorageError, match="is not published"):
            store.load(path)
    pd.testing.assert_frame_equal(store.load(good), frame())


def test_cleanup_removes_old_debris_only(store: ValueStore, root: Path) -> None:
    good, debris = leave_killed_writer_debris(store, root)
    assert store.cleanup_temp(older_than_s=3600) == []  # all fresh: maybe still being written
    assert all(p.exists() for p in debris)

    removed = store.cleanup_temp(older_than_s=3600, now=time.time() + 7200)
    assert removed == sorted(debris)
    assert tree(root / "t" / DAY) == ["r1", "r1/_SUCCESS", "r1/value.parquet"]
    assert store.latest_published("t", DAY) == good
    pd.testing.assert_frame_equal(store.load(good), frame())


def test_cleanup_judges_age_by_the_newest_file_inside(store: ValueStore, root: Path) -> None:
    _good, (temp, _orphan, _stray) = leave_killed_writer_debris(store, root)
    old = time.time() - 10_000
    os.utime(temp, (old, old))  # the folder looks old, but its file is still being written
    removed = store.cleanup_temp(older_than_s=3600)
    assert temp not in removed and temp.exists()
    os.utime(temp / "value.parquet", (old, old))
    assert store.cleanup_temp(older_than_s=3600) == [temp]


def test_cleanup_keeps_folders_of_runs_still_running(store: ValueStore, root: Path) -> None:
    _good, (temp, orphan, stray) = leave_killed_writer_debris(store, root)
    removed = store.cleanup_temp(older_than_s=0, now=time.time() + 1, keep_runs=["r9", "r8"])
    assert removed == [stray]
    assert temp.exists() and orphan.exists()


def test_cleanup_of_an_empty_or_missing_root(store: ValueStore) -> None:
    assert store.cleanup_temp(older_than_s=0) == []


def test_an_oversized_json_value_names_the_asset_and_the_fix(root: Path) -> None:
    from notebook_orch.storage import JsonHandler

    registry = default_registry()
    registry.register(JsonHandler(max_bytes=50), auto=True, replace=True)
    with pytest.raises(ValueStorageError) as info:
        ValueStore(root, registry).publish("events", DAY, ["x" * 60], run_id="r1")
    assert str(info.value) == (
        f"Asset 'events', partition '{DAY}': the value could not be versioned as json: the value is 64 bytes as "
        "JSON, over the 50 bytes limit for json; store it as a pandas DataFrame (--io parquet) or add --io pickle "
        "to the %%asset line. Nothing was published."
    )
    assert tree(root) == []


def test_a_frame_with_io_json_is_refused_before_touching_disk(store: ValueStore, root: Path) -> None:
    with pytest.raises(ValueStorageError, match=r"^Asset 'sales' has --io json, but json does not store pandas"):
        store.publish("sales", DAY, frame(), io="json", run_id="r1")
    assert tree(root) == []
