"""Helpers shared by the store tests (times and new materializations)."""

from __future__ import annotations

from datetime import datetime, timedelta

from notebook_orch.store import NewMaterialization

T0 = datetime(2026, 3, 1, 12, 0, 0)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``: tests pass explicit times."""
    return T0 + timedelta(seconds=seconds)


def mat(asset: str, partition: str, data_version: str = "d1", **fields: object) -> NewMaterialization:
    fields.setdefault("code_version", "c1")
    return NewMaterialization(asset=asset, partition=partition, data_version=data_version, **fields)  # type: ignore[arg-type]
