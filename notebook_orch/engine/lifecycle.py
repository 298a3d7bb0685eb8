"""One run lifecycle for every way a run executes: interactive cells, local papermill runs, any executor.

    start (the store grants the (asset, partition) locks)  ->  heartbeat  ->  publish values (the kernel)
      ->  succeed: materializations + SUCCESS + events in one transaction
      ->  fail / cancel: withdraw whatever the run published, then FAILED / CANCELED with the reason

A run whose process is gone (its worker died, the command was interrupted, its heartbeat stopped) is *settled* by
whoever notices: ``settle`` reads what its kernel reported in the run folder's manifest, withdraws it and records the
outcome, unless the run has already ended. Reaping (``reap``) is the same for every run whose heartbeat stopped.
Values are withdrawn by run id (``ValueStore.withdraw_run``): only versions whose marker names the run are touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from notebook_orch.errors import StoreError
from notebook_orch.faults import fault_point
from notebook_orch.store.records import (
    CANCELED,
    FAILED,
    LIVE_STATUSES,
    RUNNING,
    WAITING,
    CheckResult,
    NewMaterialization,
    RunRecord,
)

RUNS_FOLDER = (".notebook_orch", "runs")


def run_folder(project_root: str | Path, run_id: str) -> Path:
    """Where a run keeps its output notebook, manifest and context."""
    return Path(project_root).joinpath(*RUNS_FOLDER, run_id)


def output_notebook_path(project_root: str | Path, run_id: str, notebook: str) -> Path:
    return run_folder(project_root, run_id) / Path(notebook).name


def manifest_path(project_root: str | Path, run_id: str) -> Path:
    return run_folder(project_root, run_id) / "manifest.jsonl"


@dataclass
class RunLifecycle:
    """A started run of ``targets``; every way of ending it goes through here."""

    store: Any
    data_dir: Path
    run: RunRecord

    @classmethod
    def start(cls, store: Any, data_dir: str | Path, *, notebook: str | None, targets: Sequence[tuple[str, str]],
              kind: str, attempt: int = 1, run_id: str | None = None, pools: Mapping[str, int] | None = None
              ) -> RunLifecycle:
        """Record the run RUNNING and lock its targets; raises ``PartitionLocked`` naming the holder. With
        ``pools`` the run may start WAITING for a slot: ``wait_for_slots`` then waits (heartbeating meanwhile)."""
        run = store.start_run(notebook=notebook, targets=targets, kind=kind, attempt=attempt, run_id=run_id,
                              **({"pools": pools} if pools else {}))
        return cls(store, Path(data_dir), run)

    def wait_for_slots(self, pools: Mapping[str, int], *, poll_s: float = 1.0,
                       on_wait: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        """Block until the store gives this WAITING run a slot in every pool (it is RUNNING then). Woken by the
        event log (a run ending frees slots and appends events; PostgreSQL notifies), polling at least every
        ``poll_s``. Raises ``StoreError`` when the run ended while it waited (canceled, reaped). ``on_wait`` gets
        the pools it still waits for (``[{"pool", "limit", "in_use", "ahead"}]``) whenever that changes."""
        import random
        import time

        if self.run.status != WAITING:
            return
        told: list[dict[str, Any]] | None = None
        while True:
            seen = self.store.last_event_id()
            status = self.store.take_pool_slots(self.run_id, pools)
            if status == RUNNING:
                self.run = self.store.get_run(self.run_id) or self.run
                return
            if status != WAITING:
                raise StoreError(f"Run {self.run_id} ended as {status} while it waited for a pool slot; nothing ran.")
            if on_wait is not None:
                blocked = self.store.blocked_pools(self.run_id, pools)
                if blocked != told:
                    told = blocked
                    on_wait(blocked)
            self.store.wait_for_events(seen, timeout=poll_s)
            # Many waiters wake on the same event: spread their attempts a little instead of queueing at once.
            time.sleep(random.uniform(0.0, 0.05))

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def targets(self) -> list[tuple[str, str]]:
        return [(a, p) for a in self.run.assets for p in self.run.partition_keys]

    def heartbeats(self, interval_s: float) -> AbstractContextManager[Any]:
        from notebook_orch.engine.heartbeats import Heartbeat

        return Heartbeat(self.store, self.run_id, interval_s=interval_s)

    def succeed(self, materializations: Sequence[NewMaterialization], *, output_path: str | None = None
                ) -> RunRecord:
        """Commit every materialization with SUCCESS in one transaction. If the store refuses (the run was reaped
        meanwhile), nothing was committed, so nothing may stay published: withdraw, then re-raise."""
        fault_point("before_finalize")
        try:
            done = self.store.finalize_success(self.run_id, list(materializations), output_path=output_path)
        except StoreError:
            self.withdraw()
            raise
        fault_point("after_finalize")
        return done

    def fail(self, error: str, *, cell: int | None = None, source: str | None = None,
             checks: Sequence[CheckResult] = (), output_path: str | None = None, status: str = FAILED) -> RunRecord:
        """Withdraw what the run published, then record it FAILED (or CANCELED). A run already ended (reaped) stays
        as recorded; its record is returned."""
        self.withdraw()
        try:
            return self.store.finalize_failure(self.run_id, error=error, error_cell=cell, error_source=source,
                                               checks=tuple(checks), output_path=output_path, status=status)
        except StoreError:
            return self.store.get_run(self.run_id) or self.run

    def cancel(self, reason: str, *, output_path: str | None = None) -> RunRecord:
        return self.fail(reason, output_path=output_path, status=CANCELED)

    def withdraw(self) -> list[Path]:
        from notebook_orch.storage import ValueStore

        return ValueStore(self.data_dir).withdraw_run(self.run_id, self.targets)


def settle(store: Any, data_dir: str | Path, run_ids: Sequence[str], *, project_root: str | Path, notebook: str,
           error: str, status: str = FAILED) -> list[RunRecord]:
    """The attempts among ``run_ids`` that started, after their process went away: if the last is still RUNNING,
    withdraw what it published and record ``status`` with ``error``. Returns the started attempts in order, the last
    as it stands now; empty when no attempt ever started."""
    records = [r for r in (store.get_run(run_id) for run_id in run_ids) if r is not None]
    if not records or records[-1].status not in LIVE_STATUSES:
        return records
    last = records[-1]
    output = output_notebook_path(project_root, last.run_id, notebook)
    records[-1] = RunLifecycle(store, Path(data_dir), last).fail(
        error, output_path=str(output) if output.exists() else None, status=status)
    return records


def reap(store: Any, data_dir: str | Path, *, timeout_s: float, now: datetime | None = None) -> list[RunRecord]:
    """Fail the runs whose heartbeat stopped and withdraw what they had published: no row will ever point at it."""
    reaped = store.reap_stale_runs(timeout_s=timeout_s, now=now)
    for run in reaped:
        RunLifecycle(store, Path(data_dir), run).withdraw()
    return reaped


__all__ = ["RunLifecycle", "manifest_path", "output_notebook_path", "reap", "run_folder", "settle"]
