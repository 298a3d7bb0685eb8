"""Alembic's environment for the store. Migrations run only on a connection handed in by store/migrate.py
(``config.attributes["connection"]``), inside the transaction that opens the store: either every step applies
or none does."""

from __future__ import annotations

from alembic import context

from notebook_orch.store.migrate import ALEMBIC_TABLE
from notebook_orch.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "The store's migrations run through notebook_orch: open_store(url) applies them, and "
        "`python -m notebook_orch.store.migrate revision -m MESSAGE` writes a new one (docs/store-migrations.md)."
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # autogenerate writes op.batch_alter_table: SQLite rebuilds tables, PostgreSQL alters
    transaction_per_migration=False,
    version_table=ALEMBIC_TABLE,  # not "alembic_version": the database may be shared with an Alembic user
    compare_type=True,
)
with context.begin_transaction():  # the caller's transaction is open already: this adds none
    context.run_migrations()
