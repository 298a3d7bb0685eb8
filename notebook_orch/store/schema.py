"""The store's tables, on the package's own ``MetaData`` so a user's SQLModel/SQLAlchemy tables never collide.

The tables are declared as SQLModel models on a base with its own registry (``StoreModel``): that is the
package's own MetaData, and the models serve ORM-style reads where speed does not matter. Every hot path
(finalize, event append, bulk reads) uses Core statements on ``Model.__table__`` (exported below as ``runs``,
``materializations``, ...), because measurements on this machine showed ORM object construction dominating those
paths. Nothing here is
SQLite-only: the ``sqlite_*`` table options are ignored by every other dialect.

Column conventions:
- datetimes are timezone-naive UTC;
- JSON columns are ``Text`` holding JSON the store serializes itself (cheap fast path for the common empty
  values, identical bytes on every backend);
- ``partition_state.materialized_at`` is POSIX seconds (float): it is only read by the snapshot, the hot path
  that must build 365,000 rows in well under 0.5 s, and parsing that many datetimes alone would cost ~0.15 s.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from notebook_orch.store.constants import SCHEMA_VERSION  # noqa: F401 - re-exported
from notebook_orch.store.records import RUN_KINDS, RUN_STATUSES

# SCHEMA_VERSION lives in constants.py (code that never imports SQLAlchemy needs it); re-exported here.


class StoreModel(SQLModel, registry=registry()):
    """Base of the store's models: its own registry and MetaData, so a user's SQLModel tables never collide."""


metadata = StoreModel.metadata

# 64-bit ids and sequence numbers on PostgreSQL; on SQLite an autoincrement key must be declared INTEGER (which
# is 64-bit there anyway).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _col(*args: object, **kwargs: object) -> object:
    """A field backed by exactly this column (types, defaults and keys as the Core statements expect)."""
    return Field(default=None, sa_column=sa.Column(*args, **kwargs))


class SchemaVersionRow(StoreModel, table=True):
    """A single row (id = 1): the schema version of the tables and which package wrote it."""

    __tablename__ = "schema_version"
    id: int = _col("id", sa.Integer, primary_key=True, autoincrement=False)
    version: int = _col("version", sa.Integer, nullable=False)
    package_version: str = _col("package_version", sa.String(40), nullable=False)
    updated_at: datetime = _col("updated_at", sa.DateTime, nullable=False)


class RunRow(StoreModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        sa.CheckConstraint(_in("status", RUN_STATUSES), name="ck_runs_status"),
        sa.CheckConstraint(_in("kind", RUN_KINDS), name="ck_runs_kind"),
        sa.CheckConstraint("attempt >= 1", name="ck_runs_attempt"),
        # list_runs is newest first; the reaper scans RUNNING runs. Runs are few next to materializations.
        sa.Index("ix_runs_started_at", "started_at"),
        sa.Index("ix_runs_status", "status"),
    )
    # Time-ordered ids (see ids.new_run_id): appends land at the right edge of the primary-key b-tree.
    run_id: str = _col("run_id", sa.String(64), primary_key=True)
    notebook: str | None = _col("notebook", sa.Text)
    assets: str = _col("assets", sa.Text, nullable=False)  # JSON list, unique, in target order
    partition_keys: str = _col("partition_keys", sa.Text, nullable=False)  # JSON list, in target order
    status: str = _col("status", sa.String(16), nullable=False)
    kind: str = _col("kind", sa.String(16), nullable=False)
    started_at: datetime = _col("started_at", sa.DateTime, nullable=False)
    ended_at: datetime | None = _col("ended_at", sa.DateTime)
    heartbeat_at: datetime | None = _col("heartbeat_at", sa.DateTime)
    error: str | None = _col("error", sa.Text)
    error_cell: int | None = _col("error_cell", sa.Integer)
    error_source: str | None = _col("error_source", sa.Text)
    output_path: str | None = _col("output_path", sa.Text)
    attempt: int = _col("attempt", sa.Integer, nullable=False, server_default="1")
    checks: str = _col("checks", sa.Text, nullable=False, server_default="[]")  # JSON: failed-run check results


class MaterializationRow(StoreModel, table=True):
    __tablename__ = "materializations"
    __table_args__ = (
        sa.CheckConstraint("row_count IS NULL OR row_count >= 0", name="ck_materializations_row_count"),
        sa.CheckConstraint("duration_s IS NULL OR duration_s >= 0", name="ck_materializations_duration"),
        # The one secondary index: history and latest-of-one-partition lookups (82 ms -> 1 ms measured).
        sa.Index("ix_materializations_asset_partition_id", "asset", "partition", "id"),
        {"sqlite_autoincrement": True},
    )
    # AUTOINCREMENT: ids are never reused, so data_seq (a materialization id) only ever grows.
    id: int | None = _col("id", Id, primary_key=True, autoincrement=True)
    asset: str = _col("asset", sa.String(200), nullable=False)
    partition: str = _col("partition", sa.String(200), nullable=False)
    run_id: str = _col("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False)
    code_version: str = _col("code_version", sa.String(128), nullable=False)
    data_version: str = _col("data_version", sa.String(128), nullable=False)
    deps_signature: str = _col("deps_signature", sa.String(128), nullable=False, server_default="")
    inputs: str = _col("inputs", sa.Text, nullable=False)  # JSON list of ConsumedInput
    # max(data_seq) of the inputs, kept on the row so partition_state can be derived set-based in SQL.
    inputs_seq: int = _col("inputs_seq", Id, nullable=False, server_default="0")
    row_count: int | None = _col("row_count", sa.BigInteger)
    # "schema" would shadow pydantic's BaseModel.schema: the attribute differs, the column (and its key) do not.
    value_schema: str = _col("schema", sa.Text, nullable=False)  # JSON object column -> dtype
    null_rates: str = _col("null_rates", sa.Text, nullable=False)  # JSON object column -> rate
    checks: str = _col("checks", sa.Text, nullable=False)  # JSON list of CheckResult
    duration_s: float | None = _col("duration_s", sa.Float)
    storage_path: str | None = _col("storage_path", sa.Text)
    io: str | None = _col("io", sa.String(32))
    created_at: datetime = _col("created_at", sa.DateTime, nullable=False)


class PartitionStateRow(StoreModel, table=True):
    """The latest state of every (asset, partition), kept up to date on every write; the snapshot reads only this.

    No foreign keys: rows are derived from materializations/runs in the same transactions that write those, and
    the checks cost ~5% of bulk ingest. Clustered on the key (WITHOUT ROWID): one b-tree instead of a rowid table
    plus a key index, and the snapshot's ORDER BY asset, partition is a plain scan.
    """

    __tablename__ = "partition_state"
    __table_args__ = ({"sqlite_with_rowid": False},)
    asset: str = _col("asset", sa.String(200), primary_key=True)
    partition: str = _col("partition", sa.String(200), primary_key=True)
    materialization_id: int | None = _col("materialization_id", Id)
    code_version: str | None = _col("code_version", sa.String(128))
    deps_signature: str | None = _col("deps_signature", sa.String(128))
    data_version: str | None = _col("data_version", sa.String(128))
    data_seq: int = _col("data_seq", Id, nullable=False, server_default="0")
    inputs_seq: int = _col("inputs_seq", Id, nullable=False, server_default="0")
    last_status: str = _col("last_status", sa.String(16), nullable=False)
    last_run_id: str | None = _col("last_run_id", sa.String(64))
    materialized_at: float | None = _col("materialized_at", sa.Float)  # POSIX seconds, UTC (module docstring)


class PartitionLockRow(StoreModel, table=True):
    """At most one RUNNING run per (asset, partition): the primary key is the enforcement."""

    __tablename__ = "partition_locks"
    __table_args__ = ({"sqlite_with_rowid": False},)
    asset: str = _col("asset", sa.String(200), primary_key=True)
    partition: str = _col("partition", sa.String(200), primary_key=True)
    run_id: str = _col("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False)


class EventRow(StoreModel, table=True):
    """Append-only; followers read by id, so no secondary index slows the append."""

    __tablename__ = "events"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: int | None = _col("id", Id, primary_key=True, autoincrement=True)
    kind: str = _col("kind", sa.String(32), nullable=False)
    run_id: str | None = _col("run_id", sa.String(64))
    asset: str | None = _col("asset", sa.String(200))
    partition: str | None = _col("partition", sa.String(200))
    timestamp: datetime = _col("timestamp", sa.DateTime, nullable=False)
    payload: str = _col("payload", sa.Text, nullable=False)  # JSON object


class StateCacheRow(StoreModel, table=True):
    """partition_state packed per asset (state_pack.py), current as of event ``event_id``: a snapshot decodes
    unchanged assets from here instead of reading 365 rows each. Derived data: deleting rows is always safe.
    Correctness rests on every partition_state change appending an event that names its asset - keep it so
    (and empty this table if events are ever pruned)."""

    __tablename__ = "state_cache"
    asset: str = _col("asset", sa.String(200), primary_key=True)
    event_id: int = _col("event_id", Id, nullable=False)
    format: str = _col("format", sa.String(32), nullable=False)
    payload: bytes | None = _col("payload", sa.LargeBinary)  # NULL: not packable, read from partition_state
    entries: int | None = _col("entries", sa.Integer)  # on the "verified" row only: entries it vouched for


# -- scheduling (notebook_orch/scheduler, store/scheduling.py) --------------------------------------------
class ScheduleRow(StoreModel, table=True):
    """A cron schedule over a selection; ``origin`` says whether ``nbo schedule add`` or an asset's ``--schedule``
    declared it (declared ones follow the notebooks; added ones are the user's to delete)."""

    __tablename__ = "schedules"
    __table_args__ = (sa.CheckConstraint("origin IN ('cli', 'asset')", name="ck_schedules_origin"),)
    name: str = _col("name", sa.String(200), primary_key=True)
    cron: str = _col("cron", sa.String(120), nullable=False)
    selection: str = _col("selection", sa.Text, nullable=False)
    partition_rule: str = _col("partition_rule", sa.String(200), nullable=False)
    params: str = _col("params", sa.Text, nullable=False)  # JSON object
    timezone: str = _col("timezone", sa.String(64), nullable=False)
    catchup: str = _col("catchup", sa.String(16), nullable=False)
    paused: bool = _col("paused", sa.Boolean, nullable=False)
    origin: str = _col("origin", sa.String(16), nullable=False)
    created_at: datetime = _col("created_at", sa.DateTime, nullable=False)
    # Catch-up counts missed ticks from here when the schedule has no tick yet (and again after a resume).
    active_since: datetime = _col("active_since", sa.DateTime, nullable=False)


class ScheduleTickRow(StoreModel, table=True):
    """One tick of one schedule, written before its runs start; the unique key is what makes a tick fire once."""

    __tablename__ = "schedule_ticks"
    __table_args__ = (
        sa.UniqueConstraint("schedule", "tick_at", name="uq_schedule_ticks_schedule_tick"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = _col("id", Id, primary_key=True, autoincrement=True)
    schedule: str = _col("schedule", sa.String(200), nullable=False)
    tick_at: datetime = _col("tick_at", sa.DateTime, nullable=False)
    partition: str | None = _col("partition", sa.String(200))
    status: str = _col("status", sa.String(16), nullable=False)  # STARTED, SUBMITTED, SKIPPED, FAILED
    run_ids: str = _col("run_ids", sa.Text, nullable=False)  # JSON list
    message: str | None = _col("message", sa.Text)
    created_at: datetime = _col("created_at", sa.DateTime, nullable=False)
    # The schedule's --param at tick time (JSON object): every attempt of the tick's runs gets them, even after the
    # schedule changed or was deleted. NULL for ticks recorded before revision 0009.
    params: str | None = _col("params", sa.Text)


class SchedulerLeaseRow(StoreModel, table=True):
    """Who runs the scheduler daemon now; another daemon takes over only after ``expires_at``."""

    __tablename__ = "scheduler_lease"
    name: str = _col("name", sa.String(64), primary_key=True)
    holder: str = _col("holder", sa.String(200), nullable=False)
    expires_at: datetime = _col("expires_at", sa.DateTime, nullable=False)


class SchedulerCursorRow(StoreModel, table=True):
    """The event-log cursor of the daemon's one follower: a restart resumes here and loses nothing."""

    __tablename__ = "scheduler_cursor"
    name: str = _col("name", sa.String(64), primary_key=True)
    event_id: int = _col("event_id", Id, nullable=False)


class PendingJoinRow(StoreModel, table=True):
    """An (asset, partition) of an ``--auto`` asset reached by a data change and not decided yet."""

    __tablename__ = "pending_joins"
    __table_args__ = ({"sqlite_with_rowid": False},)
    asset: str = _col("asset", sa.String(200), primary_key=True)
    partition: str = _col("partition", sa.String(200), primary_key=True)
    since: datetime = _col("since", sa.DateTime, nullable=False)
class CodeVersionRow(StoreModel, table=True):
    """The normalized source each code version of an asset stands for (``codeversion.code_source``), written with
    the first materialization recorded under it: ``nbo stale`` shows a code change as a diff against it. Keyed by
    asset too, because an explicit ``--code-version 1`` may be shared by several assets. Added by revision 0003.
    """

    __tablename__ = "code_versions"
    __table_args__ = ({"sqlite_with_rowid": False},)
    code_version: str = _col("code_version", sa.String(128), primary_key=True)
    asset: str = _col("asset", sa.String(200), primary_key=True)
    normalized_source: str = _col("normalized_source", sa.Text, nullable=False)
    created_at: datetime = _col("created_at", sa.DateTime, nullable=False)


# -- SLAs and alerts (store/sla.py, scheduler/sla_watch.py) -----------------------------------------------
class SlaWatchRow(StoreModel, table=True):
    """Per asset with ``--sla``: the SLA text watched and how far its deadlines have been judged. A new or
    changed SLA starts at the moment it was first seen, so old partitions never flood the alert hook. Revision 0004.
    """

    __tablename__ = "sla_watch"
    asset: str = _col("asset", sa.String(200), primary_key=True)
    sla: str = _col("sla", sa.String(200), nullable=False)
    since: datetime = _col("since", sa.DateTime, nullable=False)
    checked_until: datetime = _col("checked_until", sa.DateTime, nullable=False)


class SlaVerdictRow(StoreModel, table=True):
    """One verdict per (asset, partition), written once when its deadline passed: MET or MISSED (with why)."""

    __tablename__ = "sla_verdicts"
    __table_args__ = (
        sa.CheckConstraint("verdict IN ('MET', 'MISSED')", name="ck_sla_verdicts_verdict"),
        sa.Index("ix_sla_verdicts_deadline", "deadline"),
        {"sqlite_with_rowid": False},
    )
    asset: str = _col("asset", sa.String(200), primary_key=True)
    partition: str = _col("partition", sa.String(200), primary_key=True)
    sla: str = _col("sla", sa.String(200), nullable=False)
    deadline: datetime = _col("deadline", sa.DateTime, nullable=False)
    verdict: str = _col("verdict", sa.String(16), nullable=False)
    reason: str = _col("reason", sa.String(16), nullable=False)
    judged_at: datetime = _col("judged_at", sa.DateTime, nullable=False)


class AlertRow(StoreModel, table=True):
    """An alert for the project's hook (an SLA miss, a run that failed after its last retry): written in the
    transaction that found it, delivered afterwards, so a crash in between delays an alert but never loses it.
    ``key`` is unique: the same miss or failure is alerted once."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.UniqueConstraint("key", name="uq_alerts_key"),
        sa.Index("ix_alerts_state", "state"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = _col("id", Id, primary_key=True, autoincrement=True)
    key: str = _col("key", sa.String(400), nullable=False)
    kind: str = _col("kind", sa.String(32), nullable=False)
    payload: str = _col("payload", sa.Text, nullable=False)  # JSON object: what the hook receives
    state: str = _col("state", sa.String(16), nullable=False)  # PENDING, SENT, FAILED, NO_HOOK
    attempts: int = _col("attempts", sa.Integer, nullable=False, server_default="0")
    last_error: str | None = _col("last_error", sa.Text)
    created_at: datetime = _col("created_at", sa.DateTime, nullable=False)
    sent_at: datetime | None = _col("sent_at", sa.DateTime)
class PoolSlotRow(StoreModel, table=True):
    """One concurrency-pool slot a live run holds (core/pools.py): rows per pool counted against its limit, taken
    and released in the same transactions that start and end runs. Added by revision 0006."""

    __tablename__ = "pool_slots"
    __table_args__ = ({"sqlite_with_rowid": False},)
    pool: str = _col("pool", sa.String(210), primary_key=True)
    run_id: str = _col("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True)
    acquired_at: datetime = _col("acquired_at", sa.DateTime, nullable=False)


class PoolWaitRow(StoreModel, table=True):
    """A WAITING run's place in the queue of one pool it needs (core/pools.py): ``ticket`` orders the waiters of
    every pool first come, first served, across processes (taken under the store's write lock). Rows go when the
    run takes its slots or ends. Added by revision 0007."""

    __tablename__ = "pool_waits"
    __table_args__ = ({"sqlite_with_rowid": False},)
    pool: str = _col("pool", sa.String(210), primary_key=True)
    run_id: str = _col("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True)
    ticket: int = _col("ticket", sa.Integer, nullable=False)
    since: datetime = _col("since", sa.DateTime, nullable=False)


class AutoPauseRow(StoreModel, table=True):
    """Automation of one ``--auto`` asset paused (``nbo auto pause``) or resumed. A resumed row keeps
    ``after_event``: events up to it reach nothing for the asset, so a resume acts only on what changes from then
    on (no flood of what happened while paused). Added by revision 0008."""

    __tablename__ = "auto_pauses"
    __table_args__ = ({"sqlite_with_rowid": False},)
    asset: str = _col("asset", sa.String(200), primary_key=True)
    paused: bool = _col("paused", sa.Boolean, nullable=False)
    changed_at: datetime = _col("changed_at", sa.DateTime, nullable=False)
    after_event: int | None = _col("after_event", Id)


# Core handles on the same tables, for the hot paths.
schema_version = SchemaVersionRow.__table__
runs = RunRow.__table__
materializations = MaterializationRow.__table__
partition_state = PartitionStateRow.__table__
partition_locks = PartitionLockRow.__table__
events = EventRow.__table__
state_cache = StateCacheRow.__table__
schedules = ScheduleRow.__table__
schedule_ticks = ScheduleTickRow.__table__
scheduler_lease = SchedulerLeaseRow.__table__
scheduler_cursor = SchedulerCursorRow.__table__
pending_joins = PendingJoinRow.__table__
code_versions = CodeVersionRow.__table__
sla_watch = SlaWatchRow.__table__
sla_verdicts = SlaVerdictRow.__table__
alerts = AlertRow.__table__
pool_slots = PoolSlotRow.__table__
pool_waits = PoolWaitRow.__table__
auto_pauses = AutoPauseRow.__table__

OWN_TABLES = tuple(metadata.sorted_tables)
