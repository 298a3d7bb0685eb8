"""What ``nbo doctor`` concludes from the value folders and the store's rows: pure, no disk, no SQL.

The edges (``notebook_orch.doctor``) hand in what they read — every entry of the data folder (``DiskEntry``) and the
store's rows that matter (``StoreFacts``) — and get a ``DoctorReport`` back: one ``Finding`` per problem, naming
what is wrong, what to do, and the repair ``--fix`` may apply (``None`` when only a person can decide).

Timing rules that keep a live project from looking broken: a RUNNING run whose heartbeat is recent is *in flight*,
so its staging folders, its unmarked version folders and its published-but-not-yet-recorded values are normal.
The disk is read before the store, so a value finalized in between has its record by the time the store is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# DiskEntry.kind
PUBLISHED = "published"  # a version folder with a valid _SUCCESS marker and its value file
BROKEN = "broken"  # a valid marker whose value file is missing
UNMARKED = "unmarked"  # a version folder without a (valid) marker: invisible to readers
STAGING = "staging"  # a .tmp-<run>-<random> folder: a value being written
MARKER_TEMP = "marker_temp"  # a _SUCCESS.tmp-* file left by a writer killed while writing the marker
FOREIGN = "foreign"  # not laid out by notebook_orch: never touched

# Finding.repair
REAP = "reap"  # fail the dead run and withdraw what it published (the lifecycle's reap)
REMOVE = "remove"  # delete: named by a run the store knows, so it is ours
QUARANTINE = "quarantine"  # move aside: ours by its layout, but nothing in the store vouches for it
RELEASE_LOCK = "release_lock"  # delete a partition lock row whose run is not running

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class DiskEntry:
    """One entry under ``<data>/<asset>/<partition>/`` (or anything else found in the data folder)."""

    path: str
    kind: str
    asset: str | None = None
    partition: str | None = None
    run_ids: tuple[str, ...] = ()  # the run it belongs to: the marker's, or the candidates its name allows
    data_version: str | None = None  # from the marker
    value_file: str | None = None  # the value file the marker names (published / broken)
    mtime: float = 0.0


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    status: str
    last_sign: datetime  # heartbeat, or start when no heartbeat came yet (naive UTC)
    targets: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MaterializationFacts:
    id: int
    asset: str
    partition: str
    run_id: str
    data_version: str
    storage_path: str | None


@dataclass(frozen=True)
class StoreFacts:
    """The rows doctor compares; the anti-joins over big tables (events) are computed by the store in SQL."""

    runs: Mapping[str, RunFacts]
    materializations: Sequence[MaterializationFacts]
    latest: Mapping[tuple[str, str], int | None]  # partition_state: (asset, partition) -> materialization id
    locks: Sequence[tuple[str, str, str]]  # (asset, partition, run_id)
    events_without_run: Sequence[tuple[int, str]] = ()  # (event id, run id), a sample
    events_without_run_count: int = 0
    damage: Sequence[str] = ()  # what the database's own integrity check said, if anything


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    subject: str  # what it is about: a path, a run id, asset[partition]
    message: str  # what is wrong
    fix: str  # what to do about it (what --fix does, or what the user must do)
    repair: str | None = None  # the repair --fix applies (REAP, REMOVE, ...); None: not repairable safely
    target: str | None = None  # what the repair acts on: a path or a run id


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[Finding, ...]
    checked: Mapping[str, int] = field(default_factory=dict)  # what was looked at: runs, materializations, ...

    @property
    def consistent(self) -> bool:
        """No error (warnings name things that are not ours, which doctor never touches)."""
        return not any(f.severity == ERROR for f in self.findings)

    @property
    def repairable(self) -> list[Finding]:
        return [f for f in self.findings if f.repair is not None]


# A run holding its locks: executing, or WAITING for a concurrency-pool slot (core/pools.py).
_LIVE = ("RUNNING", "WAITING")


def diagnose(disk: Iterable[DiskEntry], facts: StoreFacts, *, now: datetime, heartbeat_timeout_s: float,
             data_root: str = "") -> DoctorReport:
    """Every inconsistency between the data folder and the store, as of ``now`` (naive UTC)."""
    disk = list(disk)
    dead_before = now - timedelta(seconds=heartbeat_timeout_s)
    live = {r.run_id for r in facts.runs.values() if r.status in _LIVE and r.last_sign >= dead_before}
    findings: list[Finding] = [
        Finding("STORE_DAMAGED", ERROR, "metadata store", f"The database's integrity check failed: {what}",
                "Stop every notebook_orch process and restore the store file from a backup; the values under "
                f"{data_root or 'the data folder'} stay valid (nbo doctor maps them again).")
        for what in facts.damage
    ]
    findings += _dead_runs(facts, dead_before)
    findings += _records(disk, facts)
    findings += _values(disk, facts, live, data_root)
    findings += _locks(facts)
    findings += _events(facts)
    checked = {
        "runs": len(facts.runs),
        "materializations": len(facts.materializations),
        "value_folders": sum(1 for e in disk if e.kind in (PUBLISHED, BROKEN, UNMARKED, STAGING)),
        "locks": len(facts.locks),
    }
    return DoctorReport(tuple(findings), checked)


def _dead_runs(facts: StoreFacts, dead_before: datetime) -> list[Finding]:
    out = []
    for run in sorted(facts.runs.values(), key=lambda r: r.run_id):
        if run.status in _LIVE and run.last_sign < dead_before:
            out.append(Finding(
                "DEAD_RUN", ERROR, run.run_id,
                f"Run {run.run_id} is {run.status} but its last heartbeat was at "
                f"{run.last_sign:%Y-%m-%d %H:%M:%S} UTC: "
                "its process is gone (killed, crashed, or the machine restarted).",
                "Reap it: it becomes FAILED and what it published is withdrawn (nbo doctor --fix, or nbo reap); "
                "then materialize again.", REAP, run.run_id))
    return out


def _records(disk: list[DiskEntry], facts: StoreFacts) -> list[Finding]:
    """Materialization rows whose value is missing or is not the value they describe."""
    by_folder = {e.path: e for e in disk}
    out = []
    latest_ids = {mid for mid in facts.latest.values() if mid is not None}
    for m in facts.materializations:
        if m.storage_path is None:  # imported history / benchmarks: no value file was ever recorded
            continue
        folder = _parent(m.storage_path)
        entry = by_folder.get(folder)
        key = f"{m.asset}[{m.partition}]"
        latest = m.id in latest_ids
        redo = (f"Materialize it again (nbo materialize {m.asset} --partition {m.partition})" if latest else
                "It is an older version (history only): nothing reads it, nbo lineage cannot show its data")
        if entry is None or entry.kind not in (PUBLISHED, BROKEN, UNMARKED):
            out.append(Finding(
                "VALUE_MISSING", ERROR, key,
                f"Materialization {m.id} of {key} (run {m.run_id}) points at {m.storage_path}, which does not exist"
                + (" — this is the partition's current value" if latest else "") + ".",
                f"{redo}. Check whether the data folder was moved, cleaned or restored from an older backup."))
        elif entry.kind != PUBLISHED or entry.value_file != m.storage_path:
            what = ("has no valid _SUCCESS marker" if entry.kind == UNMARKED else
                    "lost its value file" if entry.kind == BROKEN else "holds another value file")
            out.append(Finding(
                "VALUE_MISSING", ERROR, key,
                f"Materialization {m.id} of {key} (run {m.run_id}) points at {m.storage_path}, whose folder {what}.",
                f"{redo}."))
        elif entry.data_version != m.data_version:
            out.append(Finding(
                "VALUE_MISMATCH", ERROR, key,
                f"Materialization {m.id} of {key} records data version {m.data_version[:16]} but the value at "
                f"{folder} carries {str(entry.data_version)[:16]}: the file was replaced after it was recorded.",
                f"{redo}; move the replaced file aside first if it is yours."))
        if m.run_id not in facts.runs:
            out.append(Finding(
                "MATERIALIZATION_WITHOUT_RUN", ERROR, key,
                f"Materialization {m.id} of {key} names run {m.run_id}, which the store does not hold.",
                "The store was edited or partly restored: restore the whole store file from one backup."))
    known = {m.id for m in facts.materializations}
    for (asset, partition), mid in sorted(facts.latest.items()):
        if mid is not None and mid not in known:
            out.append(Finding(
                "STATE_WITHOUT_MATERIALIZATION", ERROR, f"{asset}[{partition}]",
                f"The latest state of {asset}[{partition}] names materialization {mid}, which does not exist.",
                f"Materialize it again (nbo materialize {asset} --partition {partition})."))
    return out


def _values(disk: list[DiskEntry], facts: StoreFacts, live: set[str], data_root: str) -> list[Finding]:
    """Folders and files in the data folder that no record accounts for."""
    recorded = {_parent(m.storage_path) for m in facts.materializations if m.storage_path}
    out = []
    prefix = data_root.rstrip("/") + "/" if data_root else ""
    for e in disk:
        shown = e.path[len(prefix):] if prefix and e.path.startswith(prefix) else e.path
        run = next((facts.runs[r] for r in e.run_ids if r in facts.runs), None)
        if run is not None and run.run_id in live:
            continue  # in flight: its staging, unmarked and unrecorded folders are normal
        where = f"{e.asset}[{e.partition}]" if e.asset else e.path
        owner = f"run {run.run_id} ({run.status})" if run else "a run the store does not know"
        if e.kind == FOREIGN:
            out.append(Finding(
                "FOREIGN_FILE", WARNING, shown,
                f"{shown} is not laid out by notebook_orch (values live in <asset>/<partition>/<version>/).",
                "Nothing to repair: doctor never touches it. Move it out of the data folder if it is yours."))
        elif e.kind == MARKER_TEMP:
            out.append(Finding(
                "LEFTOVER_TEMP", ERROR, shown,
                f"{shown} is a half-written _SUCCESS marker of a killed writer.",
                "Remove it (nbo doctor --fix).", REMOVE, e.path))
        elif e.kind in (STAGING, UNMARKED):
            what = "value being staged" if e.kind == STAGING else "version folder without a _SUCCESS marker"
            out.append(Finding(
                "LEFTOVER_TEMP", ERROR, shown,
                f"{shown} is a {what} of {where} left by {owner}; readers never see it.",
                "Remove it (nbo doctor --fix)" + ("" if run else "; it goes to the quarantine folder, since no "
                                                   "run vouches for it") + ".",
                REMOVE if run else QUARANTINE, e.path))
        elif e.kind in (PUBLISHED, BROKEN) and e.path not in recorded:
            ended = run is not None and run.status in ("FAILED", "CANCELED")
            out.append(Finding(
                "UNRECORDED_VALUE", ERROR, shown,
                f"{shown} is published for {where} by {owner}, but no materialization records it: readers of the "
                "folder alone (ValueStore.latest_published) would take it for the current value.",
                "Withdraw it (nbo doctor --fix): " + ("its run ended without it, so it is removed." if ended else
                                                       "it is moved to the quarantine folder, to look at."),
                REMOVE if ended else QUARANTINE, e.path))
    return out


def _locks(facts: StoreFacts) -> list[Finding]:
    out = []
    for asset, partition, run_id in facts.locks:
        run = facts.runs.get(run_id)
        if run is None or run.status not in _LIVE:
            state = "does not exist" if run is None else f"ended {run.status}"
            out.append(Finding(
                "ORPHAN_LOCK", ERROR, f"{asset}[{partition}]",
                f"{asset}[{partition}] is locked by run {run_id}, which {state}: every request to materialize it "
                "is refused.", "Release the lock (nbo doctor --fix).", RELEASE_LOCK, f"{asset}\x00{partition}"))
    return out


def _events(facts: StoreFacts) -> list[Finding]:
    if not facts.events_without_run_count:
        return []
    sample = ", ".join(f"{eid} ({rid})" for eid, rid in list(facts.events_without_run)[:5])
    return [Finding(
        "EVENT_WITHOUT_RUN", ERROR, "event log",
        f"{facts.events_without_run_count} event(s) name runs the store does not hold, e.g. {sample}.",
        "The log is append-only history and is not rewritten: the store was edited or partly restored; restore "
        "the whole store file from one backup.")]


def _parent(path: str) -> str:
    cut = path.rstrip("/").rfind("/")
    return path[:cut] if cut > 0 else path


__all__ = [
    "BROKEN", "ERROR", "FOREIGN", "MARKER_TEMP", "PUBLISHED", "QUARANTINE", "REAP", "RELEASE_LOCK", "REMOVE",
    "STAGING", "UNMARKED", "WARNING", "DiskEntry", "DoctorReport", "Finding", "MaterializationFacts", "RunFacts",
    "StoreFacts", "diagnose",
]
