"""A run's manifest: what the kernel published, one JSON line per asset, read by the executor at finalize.

The kernel appends a line as each asset cell publishes its value; the executor reads it after the
kernel is gone and commits every materialization with the run's SUCCESS in one transaction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from notebook_orch.store.records import CheckResult, ConsumedInput, NewMaterialization


def append_manifest(path: str, entry: dict) -> None:
    # One JSON line per event, written whole before the cell returns: the executor reads it after the kernel is
    # done or gone. No fsync: the file only has to outlive the kernel process, not the machine — after an OS crash
    # the run is reaped (its heartbeat stopped) and what it published is withdrawn by run id, never read from here.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def materialization_to_json(mat: NewMaterialization) -> dict:
    return asdict(mat)


def materialization_from_json(data: Mapping[str, Any]) -> NewMaterialization:
    data = dict(data)
    data["inputs"] = tuple(ConsumedInput(**c) for c in data.get("inputs", ()))
    data["checks"] = tuple(CheckResult(**c) for c in data.get("checks", ()))
    return NewMaterialization(**data)


def secret_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the secrets the run's kernel read (``{"secret": NAME}`` lines; values are never written)."""
    p = Path(path)
    if not p.exists():
        return []
    names = []
    for line in p.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line) if line.strip() else {}
        if isinstance(entry, dict) and isinstance(entry.get("secret"), str) and entry["secret"] not in names:
            names.append(entry["secret"])
    return names


def read_manifest(path: str | os.PathLike[str]) -> tuple[list[NewMaterialization], list[CheckResult]]:
    """Materializations a run's kernel published, and the check results of a failed asset (if any)."""
    mats, checks = [], []
    p = Path(path)
    if not p.exists():
        return mats, checks
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if "materialization" in entry:
            mats.append(materialization_from_json(entry["materialization"]))
        elif "checks" in entry:
            checks.extend(CheckResult(**c) for c in entry["checks"])
    return mats, checks
