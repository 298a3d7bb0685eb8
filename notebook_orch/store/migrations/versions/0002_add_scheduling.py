"""Add the scheduler's tables: schedules, schedule_ticks (unique per schedule and tick time), scheduler_lease,
scheduler_cursor and pending_joins. New tables only: nothing existing changes, so no batch mode is needed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("cron", sa.String(length=120), nullable=False),
        sa.Column("selection", sa.Text(), nullable=False),
        sa.Column("partition_rule", sa.String(length=200), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("catchup", sa.String(length=16), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("active_since", sa.DateTime(), nullable=False),
        sa.CheckConstraint("origin IN ('cli', 'asset')", name="ck_schedules_origin"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "schedule_ticks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("schedule", sa.String(length=200), nullable=False),
        sa.Column("tick_at", sa.DateTime(), nullable=False),
        sa.Column("partition", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_ids", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule", "tick_at", name="uq_schedule_ticks_schedule_tick"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "scheduler_cursor",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("event_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "pending_joins",
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.String(length=200), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("asset", "partition"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    for table in ("pending_joins", "scheduler_cursor", "scheduler_lease", "schedule_ticks", "schedules"):
        op.drop_table(table)
