"""The store's tables, on the package's own ``MetaData`` so a user's SQLModel/SQLAlchemy tables never collide.

Plain SQLAlchemy Core tables: every hot path (finalize, event append, bulk reads) uses Core statements, and
measurements on this machine showed ORM object construction dominating those paths. Nothing here is
SQLite-only: the ``sqlite_*`` table options are ignored by every other dialect.

Column conventions:
- datetimes are timezone-naive UTC;
- JSON columns are ``Text`` holding JSON the store serializes itself (cheap fast path for the common empty
  values, identical bytes on every backend);
- ``partition_state.materialized_at`` is POSIX seconds (float): it is only read by the snapshot, the hot path
  that must build 365,000 rows in well under 0.5 s, and parsing that many datetimes alone would cost ~0.15 s.
"""

from __future__ import annotations

import sqlalchemy as sa

from notebook_orch.store.records import RUN_KINDS, RUN_STATUSES

# Bump when the tables change; ``open_store`` refuses stores written by a newer version and migrates older ones.
SCHEMA_VERSION = 1

metadata = sa.MetaData()

# 64-bit ids and sequence numbers on PostgreSQL; on SQLite an autoincrement key must be declared INTEGER (which
# is 64-bit there anyway).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


schema_version = sa.Table(
    "schema_version",
    metadata,
    # A single row (id = 1): the schema version of the tables and which package wrote it.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("package_version", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    # Time-ordered ids (see ids.new_run_id): appends land at the right edge of the primary-key b-tree.
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("notebook", sa.Text),
    sa.Column("assets", sa.Text, nullable=False),  # JSON list, unique, in target order
    sa.Column("partition_keys", sa.Text, nullable=False),  # JSON list, unique, in target order
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime),
    sa.Column("heartbeat_at", sa.DateTime),
    sa.Column("error", sa.Text),
    sa.Column("error_cell", sa.Integer),
    sa.Column("error_source", sa.Text),
    sa.Column("output_path", sa.Text),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("checks", sa.Text, nullable=False, server_default="[]"),  # JSON list of failed-run check results
    sa.CheckConstraint(_in("status", RUN_STATUSES), name="ck_runs_status"),
    sa.CheckConstraint(_in("kind", RUN_KINDS), name="ck_runs_kind"),
    sa.CheckConstraint("attempt >= 1", name="ck_runs_attempt"),
    # list_runs is newest first; the reaper scans RUNNING runs. Runs are few next to materializations.
    sa.Index("ix_runs_started_at", "started_at"),
    sa.Index("ix_runs_status", "status"),
)

materializations = sa.Table(
    "materializations",
    metadata,
    # AUTOINCREMENT: ids are never reused, so data_seq (a materialization id) only ever grows.
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("asset", sa.String(200), nullable=False),
    sa.Column("partition", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("code_version", sa.String(128), nullable=False),
    sa.Column("data_version", sa.String(128), nullable=False),
    sa.Column("deps_signature", sa.String(128), nullable=False, server_default=""),
    sa.Column("inputs", sa.Text, nullable=False),  # JSON list of ConsumedInput
    # max(data_seq) of the inputs, kept on the row so partition_state can be derived set-based in SQL.
    sa.Column("inputs_seq", Id, nullable=False, server_default="0"),
    sa.Column("row_count", sa.BigInteger),
    sa.Column("schema", sa.Text, nullable=False),  # JSON object column -> dtype
    sa.Column("null_rates", sa.Text, nullable=False),  # JSON object column -> rate
    sa.Column("checks", sa.Text, nullable=False),  # JSON list of CheckResult
    sa.Column("duration_s", sa.Float),
    sa.Column("storage_path", sa.Text),
    sa.Column("io", sa.String(32)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.CheckConstraint("row_count IS NULL OR row_count >= 0", name="ck_materializations_row_count"),
    sa.CheckConstraint("duration_s IS NULL OR duration_s >= 0", name="ck_materializations_duration"),
    # The one secondary index: history and latest-of-one-partition lookups (82 ms -> 1 ms measured).
    sa.Index("ix_materializations_asset_partition_id", "asset", "partition", "id"),
    sqlite_autoincrement=True,
)

partition_state = sa.Table(
    "partition_state",
    metadata,
    # The latest state of every (asset, partition), kept up to date on every write; the snapshot reads only this.
    sa.Column("asset", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(200), primary_key=True),
    # No foreign keys here: rows are derived from materializations/runs in the same transactions that write
    # those, and the checks cost ~5% of bulk ingest.
    sa.Column("materialization_id", Id),
    sa.Column("code_version", sa.String(128)),
    sa.Column("deps_signature", sa.String(128)),
    sa.Column("data_version", sa.String(128)),
    sa.Column("data_seq", Id, nullable=False, server_default="0"),
    sa.Column("inputs_seq", Id, nullable=False, server_default="0"),
    sa.Column("last_status", sa.String(16), nullable=False),
    sa.Column("last_run_id", sa.String(64)),
    sa.Column("materialized_at", sa.Float),  # POSIX seconds, UTC (see module docstring)
    # Clustered on the key: one b-tree instead of a rowid table plus a key index, and the snapshot's
    # ORDER BY asset, partition is a plain scan.
    sqlite_with_rowid=False,
)

partition_locks = sa.Table(
    "partition_locks",
    metadata,
    # At most one RUNNING run per (asset, partition): the primary key is the enforcement.
    sa.Column("asset", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
    sqlite_with_rowid=False,
)

events = sa.Table(
    "events",
    metadata,
    # Append-only; followers read by id, so no secondary index slows the append.
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("asset", sa.String(200)),
    sa.Column("partition", sa.String(200)),
    sa.Column("timestamp", sa.DateTime, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON object
    sqlite_autoincrement=True,
)

state_cache = sa.Table(
    "state_cache",
    metadata,
    # partition_state packed per asset (state_pack.py), current as of event ``event_id``: a snapshot decodes
    # unchanged assets from here instead of reading 365 rows each. Derived data: deleting rows is always safe.
    # Correctness rests on every partition_state change appending an event that names its asset - keep it so
    # (and empty this table if events are ever pruned). Emptying it is always safe.
    sa.Column("asset", sa.String(200), primary_key=True),
    sa.Column("event_id", Id, nullable=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("payload", sa.LargeBinary),  # NULL: not packable, read this asset from partition_state
    sa.Column("entries", sa.Integer),  # on the "verified" row only: how many asset entries it vouched for
)

OWN_TABLES = tuple(metadata.sorted_tables)
