"""add pool_waits: the first-come, first-served queue of runs WAITING for a pool slot

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new, empty table. A run an older version left WAITING has no ticket: it queues behind the ticketed waiters
    # (writes.take_pool_slots), so it still starts once they have.
    op.create_table(
        "pool_waits",
        sa.Column("pool", sa.String(length=210), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("ticket", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        sa.PrimaryKeyConstraint("pool", "run_id"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("pool_waits")
