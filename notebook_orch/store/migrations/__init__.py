"""Alembic migrations of the metadata store, shipped with the package and run by ``open_store`` (store/migrate.py).

Revision ids are the schema versions they produce, zero-padded: ``0001`` is the baseline (the tables as of
notebook_orch 0.1.0), ``0002`` the next one, and so on. How to add one: docs/store-migrations.md.
"""
