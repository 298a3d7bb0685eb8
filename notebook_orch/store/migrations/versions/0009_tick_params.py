"""add schedule_ticks.params: a schedule's --param as they were at tick time (every attempt of its runs gets them)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no backfill: a tick recorded before this revision has NULL, and its retries read the schedule's
    # current parameters, as before.
    with op.batch_alter_table("schedule_ticks", recreate="auto") as batch:
        batch.add_column(sa.Column("params", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedule_ticks", recreate="auto") as batch:
        batch.drop_column("params")
