"""``ValueStore``: values on disk, published atomically.

Layout::

    <root>/<asset>/<partition>/<version_id>/value.<ext>     the value
    <root>/<asset>/<partition>/<version_id>/_SUCCESS        JSON marker, written last: the version is published
    <root>/<asset>/<partition>/.tmp-<run_id>-<random>/      a value being staged (never read)

A value is written and verified in a temporary folder, renamed into place in one step, and only then gets its
``_SUCCESS`` marker (itself written to a sibling and renamed). Readers only trust folders with a marker, so a
crash at any point leaves either nothing visible or a whole value.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Collection
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

from notebook_orch.core.partitions import check_key_is_safe
from notebook_orch.core.specs import check_name
from notebook_orch.errors import DeclarationError, PartitionError, ValueStorageError
from notebook_orch.faults import fault_point
from notebook_orch.storage._fs import fsync_dir, fsync_file, newest_mtime, write_atomic
from notebook_orch.storage._registry import HandlerRegistry, default_registry
from notebook_orch.storage._secrets import secret_in_file, secret_in_value
from notebook_orch.storage._types import PublishedValue, StagedValue, ValueHandler, ValueMetadata

SUCCESS = "_SUCCESS"
TEMP_PREFIX = ".tmp-"
MARKER_FORMAT = 1
DEFAULT_TEMP_AGE_S = 6 * 3600.0
_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]*$")

ValueRef = Union[PublishedValue, str, os.PathLike, tuple[str, str, str]]


class ValueStore:
    """Values of (asset, partition) pairs under ``root``, one folder per published version.

    ``stage`` writes and verifies a value out of sight, ``commit`` publishes it, ``discard`` drops it; the caller
    can run checks and record the materialization in between. ``publish`` does all three.
    """

    def __init__(self, root: str | os.PathLike[str], registry: HandlerRegistry | None = None) -> None:
        self.root = Path(root)
        self.registry = default_registry() if registry is None else registry

    def partition_dir(self, asset: str, partition: str) -> Path:
        """``<root>/<asset>/<partition>``, after refusing path-like names (touches no disk)."""
        try:
            check_name(asset)
            check_key_is_safe(partition)
        except (DeclarationError, PartitionError) as exc:
            raise ValueStorageError(f"Asset {asset!r}, partition {partition!r}: {exc}") from exc
        return self.root / asset / partition

    # -- writing ---------------------------------------------------------------------------------------------
    def stage(self, asset: str, partition: str, value: Any, *, io: str | None = None, run_id: str) -> StagedValue:
        """Write ``value`` to a temporary folder, fsync it, read it back and compare its metadata."""
        part_dir = self.partition_dir(asset, partition)
        _check_run_id(run_id)
        handler = self.registry.choose(value, io, asset=asset)
        _refuse_secret(asset, partition, secret_in_value(value))
        try:
            data_version = handler.data_version(value)
            metadata = handler.describe(value)
        except Exception as exc:
            raise _failure(asset, partition, f"the value could not be versioned as {handler.name}", exc) from exc
        temp = part_dir / f"{TEMP_PREFIX}{run_id}-{secrets.token_hex(6)}"
        file_name = f"value.{handler.extension}"
        fault_point("before_publish")
        try:
            temp.mkdir(parents=True)
            handler.write(value, temp / file_name)
            fsync_file(temp / file_name)
            fault_point("during_publish")
            _verify(handler, temp / file_name, metadata)
        except BaseException as exc:
            _remove(temp, part_dir)
            if not isinstance(exc, Exception):
                raise
            raise _failure(asset, partition, f"the value could not be written as {handler.name}", exc) from exc
        leaked = secret_in_file(temp / file_name)
        if leaked is not None:
            _remove(temp, part_dir)
            _refuse_secret(asset, partition, leaked)
        return StagedValue(asset, partition, run_id, handler.name, temp, file_name, data_version, metadata)

    def commit(self, staged: StagedValue) -> PublishedValue:
        """Rename the staged folder into place and write ``_SUCCESS``: from here on the value is published."""
        temp, part_dir = staged.temp_dir, staged.temp_dir.parent
        if not staged.temp_path.is_file():
            raise ValueStorageError(
                f"Asset {staged.asset!r}, partition {staged.partition!r}: the staged value {temp} is gone "
                "(already committed or discarded, or removed by cleanup_temp); stage it again."
            )
        gone = launcher_gone()
        if gone is not None:
            _remove(temp, part_dir)
            raise ValueStorageError(
                f"Asset {staged.asset!r}, partition {staged.partition!r}: not published, because the process that "
                f"launched this kernel and records its run (pid {gone}) has died: nothing would record the value. "
                "The run is settled as failed and retried per its --retries."
            )
        try:
            version_id = _rename_into_place(temp, part_dir, staged.run_id)
        except Exception as exc:
            _remove(temp, part_dir)
            what = "the staged value could not be moved into place"
            raise _failure(staged.asset, staged.partition, what, exc) from exc
        version_dir = part_dir / version_id
        fault_point("after_rename")
        written_at = datetime.now(timezone.utc)
        marker = {
            "format": MARKER_FORMAT,
            "asset": staged.asset,
            "partition": staged.partition,
            "version_id": version_id,
            "run_id": staged.run_id,
            "handler": staged.handler,
            "file": staged.file_name,
            "data_version": staged.data_version,
            "written_at": written_at.isoformat(),
            "row_count": staged.metadata.row_count,
            "schema": dict(staged.metadata.schema),
            "null_rates": dict(staged.metadata.null_rates),
        }
        try:
            fsync_dir(part_dir)
            write_atomic(version_dir / SUCCESS, json.dumps(marker, indent=1).encode())
        except BaseException as exc:
            # Without a marker the folder is invisible anyway; remove it so nothing half-done lingers.
            _remove(version_dir, part_dir)
            if not isinstance(exc, Exception):
                raise
            raise _failure(staged.asset, staged.partition, f"the {SUCCESS} marker could not be written", exc) from exc
        fault_point("after_publish")
        return _published(version_dir, marker)

    def discard(self, staged: StagedValue) -> None:
        """Drop a staged value (a failed check, say). Idempotent."""
        _remove(staged.temp_dir, staged.temp_dir.parent)

    def publish(
        self,
        asset: str,
        partition: str,
        value: Any,
        *,
        io: str | None = None,
        run_id: str,
        checks: Callable[[Any], None] | None = None,
    ) -> PublishedValue:
        """``stage``, run ``checks(value)``, ``commit``. Storage failures raise ``ValueStorageError``; an
        exception from ``checks`` discards the staged value and propagates unchanged (it is the caller's)."""
        staged = self.stage(asset, partition, value, io=io, run_id=run_id)
        if checks is not None:
            try:
                checks(value)
            except BaseException:
                self.discard(staged)
                raise
        return self.commit(staged)

    # -- reading ---------------------------------------------------------------------------------------------
    def load(self, ref: ValueRef) -> Any:
        """The value of a published version: a ``PublishedValue``, its value file or version folder, or
        ``(asset, partition, version_id)``. A folder without ``_SUCCESS`` is refused: it is not published."""
        version_dir = self._version_dir(ref)
        if not version_dir.is_dir():
            raise ValueStorageError(f"There is no stored value at {version_dir}; check the path or the asset name.")
        marker = _read_marker(version_dir)
        if marker is None:
            raise ValueStorageError(
                f"{version_dir} is not published: it has no valid {SUCCESS} marker (its writer failed, was killed "
                "or is still running); load a published version, e.g. ValueStore.latest_published(asset, partition)."
            )
        handler = self.registry.get(marker["handler"])
        path = version_dir / marker["file"]
        try:
            return handler.read(path)
        except Exception as exc:
            raise ValueStorageError(f"The published value {path} could not be read as {handler.name}: {exc}") from exc

    def versions(self, asset: str, partition: str) -> list[PublishedValue]:
        """Every published version of (asset, partition), oldest first (by ``written_at``, then version id).
        Folders without a valid marker or value file are skipped."""
        part_dir = self.partition_dir(asset, partition)
        found = []
        for version_dir in _children(part_dir):
            if version_dir.name.startswith("."):
                continue
            marker = _read_marker(version_dir)
            if marker is None or not (version_dir / marker["file"]).is_file():
                continue
            found.append(_published(version_dir, marker))
        return sorted(found, key=lambda p: (p.written_at, p.version_id))

    def latest_published(self, asset: str, partition: str) -> PublishedValue | None:
        """The newest published version, read from the ``_SUCCESS`` markers alone (no metadata store needed)."""
        found = self.versions(asset, partition)
        return found[-1] if found else None

    # -- housekeeping ----------------------------------------------------------------------------------------
    def withdraw_run(self, run_id: str, targets: Collection[tuple[str, str]]) -> list[Path]:
        """Remove what run ``run_id`` published or staged for ``targets`` — for a run that ended without its
        materializations being recorded (it failed, or was reaped after its process died), so no row will ever
        point at those versions. Only versions whose marker names this run are touched; the marker goes first, so
        a reader never sees a half-removed version as published. Returns the folders removed."""
        _check_run_id(run_id)
        removed = []
        for asset, partition in targets:
            try:
                part_dir = self.partition_dir(asset, partition)
            except ValueStorageError:
                continue
            for entry in _children(part_dir):
                name = entry.name
                if name.startswith(f"{TEMP_PREFIX}{run_id}-"):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
                elif name == run_id or name.startswith(f"{run_id}."):
                    marker = _read_marker(entry)
                    if marker is not None and marker.get("run_id") != run_id:
                        continue
                    (entry / SUCCESS).unlink(missing_ok=True)
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
        return removed

    def cleanup_temp(
        self, *, older_than_s: float = DEFAULT_TEMP_AGE_S, now: float | None = None, keep_runs: Collection[str] = ()
    ) -> list[Path]:
        """Remove what killed writers left behind, untouched for ``older_than_s`` seconds: ``.tmp-*`` folders,
        version folders that never got their ``_SUCCESS``, and stray marker temp files. Folders of runs in
        ``keep_runs`` (still running) are kept. Returns what was removed."""
        cutoff = (time.time() if now is None else now) - older_than_s
        removed = []
        for asset_dir in _children(self.root):
            for part_dir in _children(asset_dir):
                for entry in _children(part_dir):
                    if _is_abandoned(entry, keep_runs) and newest_mtime(entry) <= cutoff:
                        shutil.rmtree(entry, ignore_errors=True)
                        removed.append(entry)
                    elif not entry.name.startswith("."):
                        for stray in entry.glob(f"{SUCCESS}.tmp-*"):
                            if stray.stat().st_mtime <= cutoff:
                                stray.unlink(missing_ok=True)
                                removed.append(stray)
        return sorted(removed)

    def _version_dir(self, ref: ValueRef) -> Path:
        if isinstance(ref, PublishedValue):
            return ref.path
        if isinstance(ref, tuple):
            asset, partition, version_id = ref
            _check_run_id(version_id, what="Version id")
            return self.partition_dir(asset, partition) / version_id
        path = Path(ref)
        return path.parent if path.is_file() else path


def _is_abandoned(entry: Path, keep_runs: Collection[str]) -> bool:
    name = entry.name
    if name.startswith(TEMP_PREFIX):
        return not any(name.startswith(f"{TEMP_PREFIX}{run}-") for run in keep_runs)
    if name.startswith(".") or (entry / SUCCESS).exists():
        return False
    return not any(name == run or name.startswith(f"{run}.") for run in keep_runs)


def _check_run_id(run_id: str, *, what: str = "Run id") -> None:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or ".." in run_id:
        raise ValueStorageError(
            f"{what} {run_id!r} cannot name a folder; use letters, digits, '_', '-', '.', '=' (not starting with "
            "'.' or '-', no '..')."
        )


def _refuse_secret(asset: str, partition: str, name: str | None) -> None:
    if name is not None:
        raise ValueStorageError(
            f"Asset {asset!r}, partition {partition!r}: the value contains the secret {name} (read with "
            f"notebook_orch.secret({name!r})); secrets are never stored. Keep only what is derived from it (a "
            "length, a hash, the data it fetched), not the secret itself. Nothing was published."
        )


def _failure(asset: str, partition: str, what: str, exc: BaseException) -> ValueStorageError:
    return ValueStorageError(f"Asset {asset!r}, partition {partition!r}: {what}: {exc}. Nothing was published.")


def _verify(handler: ValueHandler, path: Path, expected: ValueMetadata) -> None:
    """Read the file back: it must load, with the same rows, columns, dtypes and null rates."""
    got = handler.describe(handler.read(path))
    diffs = [
        f"{field} {getattr(expected, field)!r} became {getattr(got, field)!r}"
        for field in ("row_count", "schema", "null_rates")
        if getattr(expected, field) != getattr(got, field)
    ]
    if diffs:
        raise ValueStorageError(f"reading the {handler.name} file back gave a different value: " + "; ".join(diffs))


def launcher_gone() -> int | None:
    """In a kernel whose launching process has died since it started: that process's pid, else None.

    A run's value is published by its kernel and recorded by the process that launched the kernel (a worker). When
    the worker is SIGKILLed, ipykernel's own parent poller ends the kernel within about a second; a kernel that
    publishes in that second would leave a value no record will ever point at (the run is already settled and its
    values withdrawn). The poller's own test, asked at the moment of publishing."""
    import sys

    app = sys.modules.get("ipykernel.kernelapp")
    if app is None or not app.IPKernelApp.initialized():
        return None
    parent = getattr(getattr(app.IPKernelApp.instance(), "poller", None), "parent_pid", 0)
    return parent if isinstance(parent, int) and parent > 1 and os.getppid() != parent else None


def _rename_into_place(temp: Path, part_dir: Path, run_id: str) -> str:
    """Move ``temp`` to ``<part_dir>/<run_id>``, or ``<run_id>.<n>`` when a run publishes the pair again."""
    for n in itertools.count():
        version_id = run_id if n == 0 else f"{run_id}.{n}"
        target = part_dir / version_id
        if target.exists():
            continue
        try:
            os.rename(temp, target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):  # taken between the check and the rename
                continue
            raise
        return version_id
    raise AssertionError("unreachable")


def _remove(path: Path, part_dir: Path) -> None:
    """Remove ``path`` and then the partition and asset folders if that left them empty."""
    shutil.rmtree(path, ignore_errors=True)
    for folder in (part_dir, part_dir.parent):
        try:
            folder.rmdir()
        except OSError:  # not empty (another version or writer) or already gone
            break


def _children(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _read_marker(version_dir: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((version_dir / SUCCESS).read_bytes())
    except (OSError, ValueError):
        return None
    required = ("handler", "file", "data_version", "run_id", "written_at")
    if not isinstance(marker, dict) or not all(isinstance(marker.get(k), str) for k in required):
        return None
    if Path(marker["file"]).name != marker["file"]:  # a marker may only point inside its own folder
        return None
    try:
        written_at = datetime.fromisoformat(marker["written_at"])
    except ValueError:
        return None
    if written_at.tzinfo is None:
        marker["written_at"] = written_at.replace(tzinfo=timezone.utc).isoformat()
    return marker


def _published(version_dir: Path, marker: dict[str, Any]) -> PublishedValue:
    part_dir = version_dir.parent
    return PublishedValue(
        asset=marker.get("asset", part_dir.parent.name),
        partition=marker.get("partition", part_dir.name),
        version_id=version_dir.name,
        path=version_dir,
        storage_path=version_dir / marker["file"],
        handler=marker["handler"],
        data_version=marker["data_version"],
        metadata=ValueMetadata(
            row_count=marker.get("row_count"),
            schema=dict(marker.get("schema") or {}),
            null_rates=dict(marker.get("null_rates") or {}),
        ),
        run_id=marker["run_id"],
        written_at=datetime.fromisoformat(marker["written_at"]),
    )
