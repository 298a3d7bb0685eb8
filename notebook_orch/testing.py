"""Test doubles shipped with the library: an in-memory stand-in for the store's read side.

``MemoryHistory`` records materializations with the same rules as the real store (``data_seq`` kept for identical
data, ``inputs_seq`` the newest input seen, a failed or canceled attempt keeping the value before it) and hands out
``StoreSnapshot`` objects and ``consumed_versions`` lookups, so the pure core can be tested — by us and by plug-in
authors — without a database.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from notebook_orch.core.specs import AssetSpec
from notebook_orch.store.records import CANCELED, FAILED, SUCCESS, AssetStates, ConsumedInput, StoreSnapshot


class MemoryHistory:
    def __init__(self) -> None:
        self._seq = 0
        self.rows: dict[tuple[str, str], dict] = {}
        self.running: dict[tuple[str, str], str] = {}
        self.clock = time.time()
        self.reads: dict[int, tuple[tuple[str, str, str], ...]] = {}  # materialization id -> what it read
        self.lookups: list[tuple[int, ...]] = []  # every consumed_versions call, to test how often it is asked

    def materialize(
        self,
        spec: AssetSpec,
        partition: str,
        *,
        data_version: str = "v1",
        inputs: Iterable[tuple[str, str]] = (),
        code_version: str | None = None,
        deps_signature: str | None = None,
    ) -> int:
        """Record a materialization of ``spec[partition]`` that read the *current* state of ``inputs``."""
        self._seq += 1
        self.clock += 1
        consumed = [self.consumed(a, p) for a, p in inputs]
        self.reads[self._seq] = tuple((c.asset, c.partition, c.data_version) for c in consumed)
        prev = self.rows.get((spec.name, partition))
        same = prev is not None and prev["materialization_id"] is not None and prev["data_version"] == data_version
        self.rows[(spec.name, partition)] = {
            "materialization_id": self._seq,
            "code_version": spec.code_version if code_version is None else code_version,
            "deps_signature": spec.deps_signature if deps_signature is None else deps_signature,
            "data_version": data_version,
            "data_seq": prev["data_seq"] if same else self._seq,
            "inputs_seq": max((c.data_seq for c in consumed), default=0),
            "last_status": SUCCESS,
            "last_run_id": f"run{self._seq}",
            "materialized_at": self.clock,
        }
        return self._seq

    def fail(self, asset: str, partition: str, *, status: str = FAILED) -> None:
        """An attempt that ended ``status`` (FAILED or CANCELED): a value already there stays."""
        row = self.rows.setdefault((asset, partition), {
            "materialization_id": None, "code_version": None, "deps_signature": None, "data_version": None,
            "data_seq": 0, "inputs_seq": 0, "materialized_at": None,
        })
        row["last_status"] = status
        row["last_run_id"] = "failed-run" if status == FAILED else "canceled-run"

    def cancel(self, asset: str, partition: str) -> None:
        self.fail(asset, partition, status=CANCELED)

    def consumed_versions(self, ids: Iterable[int]) -> Mapping[int, tuple[tuple[str, str, str], ...]]:
        """Like ``MetadataStore.consumed_versions``: what each materialization read."""
        wanted = tuple(sorted(set(ids)))
        self.lookups.append(wanted)
        return {m: self.reads[m] for m in wanted if m in self.reads}

    def consumed(self, asset: str, partition: str) -> ConsumedInput:
        row = self.rows[(asset, partition)]
        return ConsumedInput(asset, partition, row["materialization_id"], row["data_version"], row["data_seq"])

    def snapshot(self, only: Sequence[tuple[str, str]] | None = None) -> StoreSnapshot:
        grouped: dict[str, list[tuple[str, dict]]] = {}
        keys = sorted(self.rows) if only is None else sorted(only)
        for asset, part in keys:
            grouped.setdefault(asset, []).append((part, self.rows[(asset, part)]))
        assets = {}
        for asset, items in grouped.items():
            assets[asset] = AssetStates(
                partitions=tuple(p for p, _ in items),
                **{
                    col: tuple(r[col] for _, r in items)
                    for col in ("materialization_id", "code_version", "deps_signature", "data_version", "data_seq",
                                "inputs_seq", "last_status", "last_run_id", "materialized_at")
                },
            )
        return StoreSnapshot(event_id=self._seq, assets=assets, running=dict(self.running))
