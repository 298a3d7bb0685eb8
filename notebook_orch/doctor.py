"""``nbo doctor``: is the store consistent with the value folders, and what to do when it is not.

``examine`` reads the data folder (first) and the store (second) and hands both to the pure
``core.integrity.diagnose``. ``repair`` applies the repairs that are safe to make without a person:

* a run RUNNING with a dead heartbeat is reaped (FAILED, what it published withdrawn) — the lifecycle's own reap;
* a lock held by a run that is not running is released;
* what a run the store knows left behind (staging folders, version folders without a marker, a value of a run that
  ended without recording it, half-written markers) is removed;
* anything laid out like ours but vouched for by no run is *moved* to ``.notebook_orch/quarantine/<time>/``, never
  deleted; anything not laid out like ours is never touched.

Data a record needs and cannot find is never invented: those findings say what to run instead.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from notebook_orch.core.integrity import (
    ERROR,
    QUARANTINE,
    REAP,
    RELEASE_LOCK,
    REMOVE,
    DoctorReport,
    Finding,
    diagnose,
)
from notebook_orch.errors import NotebookOrchError

QUARANTINE_FOLDER = (".notebook_orch", "quarantine")


@dataclass(frozen=True)
class Repair:
    finding: Finding
    done: bool
    outcome: str  # what was done, or why it was not


@dataclass(frozen=True)
class DoctorResult:
    """What doctor found, what ``--fix`` did, and what is found after it (``after`` is ``before`` without a fix)."""

    before: DoctorReport
    repairs: tuple[Repair, ...] = ()
    after: DoctorReport | None = None
    quarantine: str | None = None

    @property
    def final(self) -> DoctorReport:
        return self.after if self.after is not None else self.before

    @property
    def consistent(self) -> bool:
        return self.final.consistent


def examine(project: Any, *, now: datetime | None = None) -> DoctorReport:
    """Every inconsistency between ``project``'s store and its data folder. Reads only."""
    from notebook_orch.storage import scan_values

    config = project.config
    disk = scan_values(config.data_dir)  # the disk first: see core/integrity.py's timing rules
    try:
        facts = project.store.integrity_facts()
    except NotebookOrchError as exc:
        return DoctorReport((_unreadable(config, str(exc)),))
    except Exception as exc:  # noqa: BLE001 - a damaged file fails inside the driver (sqlite3.DatabaseError)
        if type(exc).__module__.split(".")[0] not in ("sqlalchemy", "sqlite3", "psycopg"):
            raise
        return DoctorReport((_unreadable(config, f"{type(exc).__name__}: {exc}"),))
    return diagnose(disk, facts, now=_naive(now), heartbeat_timeout_s=config.heartbeat_timeout_s,
                    data_root=str(config.data_dir))


def run_doctor(project: Any, *, fix: bool = False, now: datetime | None = None) -> DoctorResult:
    """``examine``; with ``fix``, apply the safe repairs and examine again."""
    before = examine(project, now=now)
    if not fix or not before.repairable:
        return DoctorResult(before)
    stamp = _naive(now).strftime("%Y%m%dT%H%M%S%fZ")
    quarantine = Path(project.config.root).joinpath(*QUARANTINE_FOLDER, stamp)
    repairs = _reap(project, [f for f in before.findings if f.repair == REAP], now=now)
    repairs += [_apply(project, f, quarantine=quarantine) for f in before.findings
                if f.repair == RELEASE_LOCK]
    if repairs:  # a reap withdraws values: look at the folders again before touching them
        middle = examine(project, now=now)
        disk_findings = [f for f in middle.findings if f.repair in (REMOVE, QUARANTINE)]
    else:
        disk_findings = [f for f in before.findings if f.repair in (REMOVE, QUARANTINE)]
    repairs += [_apply(project, f, quarantine=quarantine) for f in disk_findings]
    after = examine(project, now=now)
    moved = str(quarantine) if quarantine.exists() else None
    return DoctorResult(before, tuple(repairs), after, moved)


def _reap(project: Any, dead: list[Finding], *, now: datetime | None) -> list[Repair]:
    """One reap for every dead run (the lifecycle's: FAILED, values withdrawn); a repair line per run."""
    if not dead:
        return []
    from notebook_orch.engine.lifecycle import reap

    config = project.config
    try:
        reaped = {r.run_id for r in reap(project.store, config.data_dir, timeout_s=config.heartbeat_timeout_s,
                                         now=now)}
    except NotebookOrchError as exc:
        return [Repair(f, False, f"could not reap: {exc}") for f in dead]
    return [Repair(f, f.target in reaped, "reaped: now FAILED, what it published withdrawn" if f.target in reaped
                   else "left alone: it is no longer RUNNING with a dead heartbeat") for f in dead]


def _apply(project: Any, finding: Finding, *, quarantine: Path) -> Repair:
    config = project.config
    try:
        if finding.repair == RELEASE_LOCK:
            asset, partition = str(finding.target).split("\x00")
            holder = project.store.running().get((asset, partition))
            done = holder is not None and project.store.release_lock(asset, partition, holder)
            return Repair(finding, done, "lock released" if done else "left alone: its run is running again")
        path = Path(str(finding.target))
        data = Path(config.data_dir).resolve()
        if not path.resolve().is_relative_to(data) or not path.exists():
            return Repair(finding, False, "left alone: no longer there, or outside the data folder")
        if finding.repair == REMOVE:
            _remove(path, data)
            return Repair(finding, True, "removed")
        target = quarantine / path.relative_to(config.data_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        _prune_empty(path.parent, data)
        return Repair(finding, True, f"moved to {target}")
    except (OSError, NotebookOrchError) as exc:
        return Repair(finding, False, f"could not repair: {type(exc).__name__}: {exc}")


def _remove(path: Path, data: Path) -> None:
    """Remove a file or folder of ours; a published version's marker goes first, so no reader sees half of it."""
    if path.is_dir() and not path.is_symlink():
        (path / "_SUCCESS").unlink(missing_ok=True)
        shutil.rmtree(path)
    else:
        path.unlink()
    _prune_empty(path.parent, data)


def _prune_empty(folder: Path, data: Path) -> None:
    """Remove the partition and asset folders a repair left empty (never the data folder itself)."""
    for f in (folder, folder.parent):
        if f.resolve() == data or not f.resolve().is_relative_to(data):
            return
        try:
            f.rmdir()
        except OSError:
            return


def _unreadable(config: Any, why: str) -> Finding:
    return Finding(
        "STORE_UNREADABLE", ERROR, config.store_url,
        f"The metadata store {config.store_url} cannot be read: {why}",
        "Stop every notebook_orch process, then restore the store file from a backup (or move it aside to start an "
        "empty one; the values stay on disk and nbo doctor will list them as unrecorded). Nothing was changed.")


def _naive(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).replace(tzinfo=None) if now.tzinfo else now


def to_json(result: DoctorResult) -> dict[str, Any]:
    from dataclasses import asdict

    def report(r: DoctorReport) -> dict[str, Any]:
        return {"consistent": r.consistent, "checked": dict(r.checked),
                "findings": [asdict(f) for f in r.findings]}

    out: dict[str, Any] = {"consistent": result.consistent, "before": report(result.before)}
    if result.after is not None:
        out["repairs"] = [{"code": r.finding.code, "subject": r.finding.subject, "repair": r.finding.repair,
                           "done": r.done, "outcome": r.outcome} for r in result.repairs]
        out["after"] = report(result.after)
        out["quarantine"] = result.quarantine
    return out


__all__ = ["DoctorResult", "Repair", "examine", "run_doctor", "to_json"]
