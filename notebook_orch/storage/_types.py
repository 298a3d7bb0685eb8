"""The value-handler protocol and the plain records value storage hands out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ValueMetadata:
    """What a stored value looks like: rows, column -> dtype, column -> fraction of nulls (0.0 .. 1.0).

    Non-DataFrames have an empty schema and null rates; their row count is ``len(value)`` for containers and
    ``None`` otherwise (strings count as scalars: a "row count" of characters would mislead).
    """

    row_count: int | None = None
    schema: Mapping[str, str] = field(default_factory=dict)
    null_rates: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class ValueHandler(Protocol):
    """How one storage format writes, reads, versions and describes values.

    ``data_version`` hashes the value's *content* (not the bytes of a file format), so identical data written
    twice has the same version. ``write`` may raise anything; the store wraps it and removes what was written.
    """

    name: str
    extension: str

    def can_handle(self, value: Any) -> bool: ...

    def write(self, value: Any, path: Path) -> None: ...

    def read(self, path: Path) -> Any: ...

    def data_version(self, value: Any) -> str: ...

    def describe(self, value: Any) -> ValueMetadata: ...


@dataclass(frozen=True)
class StagedValue:
    """A value written and verified in a temporary folder, not yet visible: ``commit`` or ``discard`` it."""

    asset: str
    partition: str
    run_id: str
    handler: str
    temp_dir: Path
    file_name: str
    data_version: str
    metadata: ValueMetadata

    @property
    def temp_path(self) -> Path:
        return self.temp_dir / self.file_name


@dataclass(frozen=True)
class PublishedValue:
    """A value visible to readers: ``path`` is its version folder (holding ``_SUCCESS``), ``storage_path`` the file."""

    asset: str
    partition: str
    version_id: str
    path: Path
    storage_path: Path
    handler: str
    data_version: str
    metadata: ValueMetadata
    run_id: str
    written_at: datetime
