"""add auto_pauses: automation paused or resumed per asset (nbo auto pause/resume)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A new, empty table: no asset of an older store is paused.
    op.create_table(
        "auto_pauses",
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("after_event", Id, nullable=True),
        sa.PrimaryKeyConstraint("asset"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("auto_pauses")
