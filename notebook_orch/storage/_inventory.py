"""Everything under a value folder, classified (for ``nbo doctor``): published versions, staging folders, version
folders without a marker, stray marker temp files, and whatever notebook_orch did not lay out there.

Reads only; never follows symbolic links (a link is reported as foreign, never entered).
"""

from __future__ import annotations

import os
from pathlib import Path

from notebook_orch.core.integrity import BROKEN, FOREIGN, MARKER_TEMP, PUBLISHED, STAGING, UNMARKED, DiskEntry
from notebook_orch.core.partitions import check_key_is_safe
from notebook_orch.core.specs import check_name
from notebook_orch.errors import DeclarationError, PartitionError
from notebook_orch.storage._store import _RUN_ID, SUCCESS, TEMP_PREFIX, _read_marker

_RANDOM_SUFFIX = 13  # "-" + 12 hex digits after the run id in .tmp-<run_id>-<random>


def scan_values(root: str | os.PathLike[str]) -> list[DiskEntry]:
    """Every entry under ``root`` as a ``DiskEntry``; a missing root is an empty list."""
    root = Path(root)
    out: list[DiskEntry] = []
    for asset_entry in _entries(root):
        if not _is_dir(asset_entry) or not _valid(check_name, asset_entry.name):
            out.append(_foreign(asset_entry))
            continue
        for part_entry in _entries(asset_entry):
            if not _is_dir(part_entry) or not _valid(check_key_is_safe, part_entry.name):
                out.append(_foreign(part_entry))
                continue
            for entry in _entries(part_entry):
                out.extend(_classify(entry, asset_entry.name, part_entry.name))
    return out


def _classify(entry: Path, asset: str, partition: str) -> list[DiskEntry]:
    name = entry.name
    if not _is_dir(entry):
        return [_foreign(entry)]
    if name.startswith(TEMP_PREFIX):
        run_id = name[len(TEMP_PREFIX):-_RANDOM_SUFFIX]
        if not _RUN_ID.match(run_id or "-"):
            return [_foreign(entry)]
        return [DiskEntry(str(entry), STAGING, asset, partition, (run_id,), mtime=_mtime(entry))]
    if name.startswith(".") or not _RUN_ID.match(name):
        return [_foreign(entry)]
    strays = [DiskEntry(str(p), MARKER_TEMP, asset, partition, mtime=_mtime(p))
              for p in sorted(entry.glob(f"{SUCCESS}.tmp-*"))]
    marker = _read_marker(entry)
    if marker is None:
        return [DiskEntry(str(entry), UNMARKED, asset, partition, _run_candidates(name), mtime=_mtime(entry)), *strays]
    value = entry / marker["file"]
    kind = PUBLISHED if value.is_file() else BROKEN
    return [DiskEntry(str(entry), kind, asset, partition, (marker["run_id"],), marker["data_version"], str(value),
                      _mtime(entry)), *strays]


def _run_candidates(version_id: str) -> tuple[str, ...]:
    """A version folder is named ``<run_id>`` or ``<run_id>.<n>``; run ids may themselves hold dots."""
    head, _, tail = version_id.rpartition(".")
    return (version_id, head) if head and tail.isdigit() else (version_id,)


def _entries(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _valid(check: object, name: str) -> bool:
    try:
        check(name)  # type: ignore[operator]
    except (DeclarationError, PartitionError):
        return False
    return True


def _foreign(path: Path) -> DiskEntry:
    return DiskEntry(str(path), FOREIGN, mtime=_mtime(path))


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0
