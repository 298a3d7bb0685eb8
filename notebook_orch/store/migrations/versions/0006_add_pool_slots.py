"""add pool_slots (concurrency pools) and the WAITING run status

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OLD = "status IN ('RUNNING', 'SUCCESS', 'FAILED', 'CANCELED')"
_NEW = "status IN ('WAITING', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED')"


def upgrade() -> None:
    # A new, empty table: no run of an older version holds a slot.
    op.create_table(
        "pool_slots",
        sa.Column("pool", sa.String(length=210), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        sa.PrimaryKeyConstraint("pool", "run_id"),
        sqlite_with_rowid=False,
    )
    _status_check(_NEW)


def downgrade() -> None:
    op.drop_table("pool_slots")
    _status_check(_OLD)


def _status_check(condition: str) -> None:
    # SQLite cannot alter a CHECK: batch mode rebuilds runs (its other constraints are reflected and kept).
    with op.batch_alter_table("runs", recreate="auto") as batch:
        batch.drop_constraint("ck_runs_status", type_="check")
        batch.create_check_constraint("ck_runs_status", condition)
