"""Baseline: the store's tables as notebook_orch 0.1.0 created them (schema version 1, before Alembic).

Frozen: types and constraints are spelled out here, never imported from store/schema.py, so later edits to the
models cannot change what this revision creates. Stores created before Alembic are stamped with this revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids on PostgreSQL; an autoincrement key must be declared INTEGER on SQLite (64-bit there anyway).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "schema_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("package_version", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("notebook", sa.Text(), nullable=True),
        sa.Column("assets", sa.Text(), nullable=False),
        sa.Column("partition_keys", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_cell", sa.Integer(), nullable=True),
        sa.Column("error_source", sa.Text(), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("checks", sa.Text(), server_default="[]", nullable=False),
        sa.CheckConstraint("kind IN ('interactive', 'manual', 'backfill', 'schedule', 'trigger')", name="ck_runs_kind"),
        sa.CheckConstraint("status IN ('RUNNING', 'SUCCESS', 'FAILED', 'CANCELED')", name="ck_runs_status"),
        sa.CheckConstraint("attempt >= 1", name="ck_runs_attempt"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "materializations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("code_version", sa.String(length=128), nullable=False),
        sa.Column("data_version", sa.String(length=128), nullable=False),
        sa.Column("deps_signature", sa.String(length=128), server_default="", nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("inputs_seq", Id, server_default="0", nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("null_rates", sa.Text(), nullable=False),
        sa.Column("checks", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("storage_path", sa.Text(), nullable=True),
        sa.Column("io", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("duration_s IS NULL OR duration_s >= 0", name="ck_materializations_duration"),
        sa.CheckConstraint("row_count IS NULL OR row_count >= 0", name="ck_materializations_row_count"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_materializations_asset_partition_id", "materializations", ["asset", "partition", "id"])
    op.create_table(
        "partition_state",
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.String(length=200), nullable=False),
        sa.Column("materialization_id", Id, nullable=True),
        sa.Column("code_version", sa.String(length=128), nullable=True),
        sa.Column("deps_signature", sa.String(length=128), nullable=True),
        sa.Column("data_version", sa.String(length=128), nullable=True),
        sa.Column("data_seq", Id, server_default="0", nullable=False),
        sa.Column("inputs_seq", Id, server_default="0", nullable=False),
        sa.Column("last_status", sa.String(length=16), nullable=False),
        sa.Column("last_run_id", sa.String(length=64), nullable=True),
        sa.Column("materialized_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("asset", "partition"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "partition_locks",
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        sa.PrimaryKeyConstraint("asset", "partition"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("asset", sa.String(length=200), nullable=True),
        sa.Column("partition", sa.String(length=200), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "state_cache",
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("event_id", Id, nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("asset"),
    )


def downgrade() -> None:
    for table in ("state_cache", "events", "partition_locks", "partition_state", "materializations", "runs",
                  "schema_version"):
        op.drop_table(table)
