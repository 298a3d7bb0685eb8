"""add code_versions: the normalized source of each (code version, asset), for ``nbo stale``'s diffs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new, empty table: older materializations simply have no source kept (nbo stale says so).
    op.create_table(
        "code_versions",
        sa.Column("code_version", sa.String(length=128), nullable=False),
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("normalized_source", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code_version", "asset"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("code_versions")
