"""External sources (pure): where a partition's files are, and the formula of its data version.

A source is declared ``%%asset raw_orders --partitions daily:2024-01-01 --source "landing/orders/{partition}/"
--marker _SUCCESS``: data written outside notebook_orch, complete when the marker file exists in the partition's
folder. Its data version is the hash of the marker's content when the writer put something in it (a checksum, a
batch id), else of the listed files' names, sizes and modification times, so the same files observed again are
the same version and any rewritten file is a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import PurePath

from notebook_orch.core.partitions import UNPARTITIONED_KEY
from notebook_orch.core.specs import AssetSpec


def source_folder(spec: AssetSpec, partition: str, *, root: str | PurePath) -> PurePath:
    """The folder of ``spec``'s ``partition`` (the template is relative to the project ``root`` unless absolute)."""
    if spec.source_path is None:
        raise ValueError(f"asset {spec.name!r} is not a source (no --source)")
    text = spec.source_path if partition == UNPARTITIONED_KEY else spec.source_path.replace("{partition}", partition)
    path = PurePath(text)
    return path if path.is_absolute() else PurePath(root) / path


def source_data_version(marker: bytes, files: Iterable[tuple[str, int, int]]) -> str:
    """``marker``: the marker file's content; ``files``: (relative name, size, mtime in ns) of the other files."""
    digest = hashlib.sha256()
    if marker.strip():
        digest.update(b"marker\0" + marker.strip())
    else:
        for name, size, mtime_ns in sorted(files):
            digest.update(f"{name}\0{size}\0{mtime_ns}\n".encode())
    return "src-" + digest.hexdigest()[:32]


__all__ = ["source_data_version", "source_folder"]
