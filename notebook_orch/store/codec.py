"""JSON columns and row -> record conversion. ORM/Core rows never leave the store: callers get frozen records."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from notebook_orch.errors import StoreError
from notebook_orch.store.records import (
    CheckResult,
    ConsumedInput,
    EventRecord,
    MaterializationRecord,
    NewMaterialization,
    RunRecord,
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def dumps(value: Any) -> str:
    # Most materializations carry empty inputs/schema/checks: skip the encoder for those (bulk-ingest hot path).
    if not value:
        return "[]" if isinstance(value, (list, tuple)) else "{}" if isinstance(value, Mapping) else _dumps(value)
    return _dumps(value)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def inputs_json(inputs: Iterable[ConsumedInput]) -> str:
    return dumps([[c.asset, c.partition, c.materialization_id, c.data_version, c.data_seq] for c in inputs])


def checks_json(checks: Iterable[CheckResult]) -> str:
    return dumps([[c.expr, c.passed, c.detail] for c in checks])


def _inputs(text: str) -> tuple[ConsumedInput, ...]:
    return tuple(ConsumedInput(*item) for item in json.loads(text)) if text != "[]" else ()


def _checks(text: str) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(*item) for item in json.loads(text)) if text != "[]" else ()


def materialization_row(m: NewMaterialization, index: int) -> dict[str, Any]:
    """The column values of one new materialization (without run_id/created_at, which the statement binds)."""
    try:
        return {
            "asset": m.asset,
            "partition": m.partition,
            "code_version": m.code_version,
            "data_version": m.data_version,
            "deps_signature": m.deps_signature,
            "inputs": inputs_json(m.inputs),
            "inputs_seq": max((c.data_seq for c in m.inputs), default=0),
            "row_count": m.row_count,
            "schema": dumps(dict(m.schema)),
            "null_rates": dumps(dict(m.null_rates)),
            "checks": checks_json(m.checks),
            "duration_s": m.duration_s,
            "storage_path": m.storage_path,
            "io": m.io,
        }
    except (TypeError, ValueError, AttributeError) as exc:
        raise StoreError(
            f"Materialization #{index} ({getattr(m, 'asset', '?')}[{getattr(m, 'partition', '?')}]) cannot be "
            f"recorded: {exc}. Pass a NewMaterialization whose schema, null rates, inputs and checks are plain "
            "JSON values (no NaN); nothing was written."
        ) from exc


def materialization_record(row: Sequence[Any] | Any) -> MaterializationRecord:
    m = row._mapping
    return MaterializationRecord(
        id=m["id"],
        asset=m["asset"],
        partition=m["partition"],
        run_id=m["run_id"],
        code_version=m["code_version"],
        data_version=m["data_version"],
        deps_signature=m["deps_signature"],
        inputs=_inputs(m["inputs"]),
        row_count=m["row_count"],
        schema=json.loads(m["schema"]),
        null_rates=json.loads(m["null_rates"]),
        checks=_checks(m["checks"]),
        duration_s=m["duration_s"],
        storage_path=m["storage_path"],
        io=m["io"],
        created_at=m["created_at"],
    )


def run_record(row: Any) -> RunRecord:
    m = row._mapping
    return RunRecord(
        run_id=m["run_id"],
        notebook=m["notebook"],
        assets=tuple(json.loads(m["assets"])),
        partition_keys=tuple(json.loads(m["partition_keys"])),
        status=m["status"],
        kind=m["kind"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        heartbeat_at=m["heartbeat_at"],
        error=m["error"],
        error_cell=m["error_cell"],
        error_source=m["error_source"],
        output_path=m["output_path"],
        attempt=m["attempt"],
        checks=_checks(m["checks"]),
    )


def event_record(row: Any) -> EventRecord:
    m = row._mapping
    return EventRecord(
        id=m["id"],
        kind=m["kind"],
        run_id=m["run_id"],
        asset=m["asset"],
        partition=m["partition"],
        timestamp=m["timestamp"],
        payload=json.loads(m["payload"]),
    )
