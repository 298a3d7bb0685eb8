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

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_dumps() -> Any:
    # JSONEncoder.encode builds a C encoder per call, 3x the cost of encoding a small value (the bulk ingest
    # encodes up to four per materialization); build the same C encoder once (markers=None: no circular-reference
    # check, whose bookkeeping dict could not be shared between calls). Falls back where there is no C speedup.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _encoder.encode
    try:
        c_encode = make(None, _not_serializable, json.encoder.encode_basestring, None, ":", ",", False, False, False)
        assert "".join(c_encode({"a": [1, None, "x"]}, 0)) == '{"a":[1,null,"x"]}'
    except Exception:  # a different C signature in some Python: keep the portable path
        return _encoder.encode
    return lambda value: "".join(c_encode(value, 0))


_dumps = _make_dumps()


def dumps(value: Any) -> str:
    """Compact JSON, without NaN. No circular-reference check: the store only encodes plain data it built."""
    if not value:
        return "[]" if isinstance(value, (list, tuple)) else "{}" if isinstance(value, Mapping) else _dumps(value)
    return _dumps(value)


def checks_json(checks: Iterable[CheckResult]) -> str:
    return dumps([[c.expr, c.passed, c.detail] for c in checks])


def _inputs(text: str) -> tuple[ConsumedInput, ...]:
    return tuple(ConsumedInput(*item) for item in json.loads(text)) if text != "[]" else ()


def _checks(text: str) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(*item) for item in json.loads(text)) if text != "[]" else ()


def materialization_values(m: NewMaterialization, index: int, run_id: str, created_at: Any) -> tuple[Any, ...]:
    """One new materialization as a row tuple in ``statements.MATERIALIZATION_COLUMNS`` order.

    Written for the bulk path (~100,000 calls a second): the empty values skip the encoder, the rest go straight
    to the C encoder.
    """
    if type(m.asset) is not str or type(m.partition) is not str or type(m.code_version) is not str or (
        type(m.data_version) is not str
    ):
        raise StoreError(
            f"Materialization #{index} ({m.asset!r}[{m.partition!r}]): asset, partition, code_version and "
            f"data_version must be str (got {type(m.asset).__name__}, {type(m.partition).__name__}, "
            f"{type(m.code_version).__name__}, {type(m.data_version).__name__}); nothing was written."
        )
    try:
        inputs = m.inputs
        if inputs:
            inputs_text = _dumps([[c.asset, c.partition, c.materialization_id, c.data_version, c.data_seq]
                                  for c in inputs])
            inputs_seq = max([c.data_seq for c in inputs])
        else:
            inputs_text, inputs_seq = "[]", 0
        schema, null_rates, checks = m.schema, m.null_rates, m.checks
        return (
            m.asset, m.partition, run_id, m.code_version, m.data_version, m.deps_signature, inputs_text, inputs_seq,
            m.row_count, _dumps(schema if type(schema) is dict else dict(schema)) if schema else "{}",
            _dumps(null_rates if type(null_rates) is dict else dict(null_rates)) if null_rates else "{}",
            _dumps([[c.expr, c.passed, c.detail] for c in checks]) if checks else "[]",
            m.duration_s, m.storage_path, m.io, created_at,
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise StoreError(
            f"Materialization #{index} ({m.asset}[{m.partition}]) cannot be recorded: {exc}. Pass a "
            "NewMaterialization whose schema, null rates, inputs and checks are plain JSON values (no NaN); "
            "nothing was written."
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
