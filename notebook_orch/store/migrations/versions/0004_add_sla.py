"""add sla_watch, sla_verdicts and alerts: per-partition SLA verdicts and the alert hook's queue

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # New, empty tables: nothing existing changes. An SLA already declared starts being judged when the daemon
    # first sees it (sla_watch.since), so an upgraded store does not alert for its old partitions.
    op.create_table(
        "sla_watch",
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("sla", sa.String(length=200), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("checked_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("asset"),
    )
    op.create_table(
        "sla_verdicts",
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.String(length=200), nullable=False),
        sa.Column("sla", sa.String(length=200), nullable=False),
        sa.Column("deadline", sa.DateTime(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("judged_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("verdict IN ('MET', 'MISSED')", name="ck_sla_verdicts_verdict"),
        sa.PrimaryKeyConstraint("asset", "partition"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_sla_verdicts_deadline", "sla_verdicts", ["deadline"])
    op.create_table(
        "alerts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_alerts_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alerts_state", "alerts", ["state"])


def downgrade() -> None:
    op.drop_index("ix_alerts_state", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_sla_verdicts_deadline", table_name="sla_verdicts")
    op.drop_table("sla_verdicts")
    op.drop_table("sla_watch")
