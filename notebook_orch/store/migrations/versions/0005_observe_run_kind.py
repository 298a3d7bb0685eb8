"""runs.kind may be 'observe': the scheduler records an external source's partition when its marker appears

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OLD = "kind IN ('interactive', 'manual', 'backfill', 'schedule', 'trigger')"
_NEW = "kind IN ('interactive', 'manual', 'backfill', 'schedule', 'trigger', 'observe')"


def _replace_check(sql: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode copies the table there (indexes kept); PostgreSQL alters.
    with op.batch_alter_table("runs", recreate="auto") as batch:
        batch.drop_constraint("ck_runs_kind", type_="check")
        batch.create_check_constraint("ck_runs_kind", sql)


def upgrade() -> None:
    _replace_check(_NEW)


def downgrade() -> None:
    op.execute("DELETE FROM runs WHERE kind = 'observe'")
    _replace_check(_OLD)
