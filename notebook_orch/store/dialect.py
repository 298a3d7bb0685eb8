"""The only places where SQL differs between backends: upserts and building a JSON object in SQL.

Everything else in the store is portable SQL, so PostgreSQL runs the same code as SQLite.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def upsert(conn: Connection, table: sa.Table) -> Any:
    """An ``INSERT`` that supports ``on_conflict_do_update``/``on_conflict_do_nothing`` on this connection's backend.

    SQLite (>= 3.24) and PostgreSQL share the ``INSERT ... ON CONFLICT`` syntax; SQLAlchemy exposes it through
    each dialect's own ``insert``. Note: in ``INSERT ... SELECT ... ON CONFLICT`` the SELECT needs a WHERE clause
    on SQLite, otherwise ``ON`` parses as a join constraint.
    """
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported backends
        raise NotImplementedError(f"the metadata store supports SQLite and PostgreSQL, not {name}")
    return insert(table)


def json_object(conn: Connection, *pairs: tuple[str, Any]) -> sa.ColumnElement[str]:
    """A SQL expression building a JSON object text from (key, column expression) pairs."""
    args: list[Any] = []
    for key, value in pairs:
        args.extend((sa.literal(key), value))
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.json_build_object(*args), sa.Text)
    return sa.func.json_object(*args, type_=sa.Text)
