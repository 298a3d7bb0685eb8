"""The snapshot: every (asset, partition)'s latest state, the running locks and the event mark, in one read.

The hot read path: 1,000 assets x 365 partitions must load in well under half a second. Fetching 365,000 rows
of 10 values through any Python driver costs more than that on our 2-core machines (each value is a new Python
object: ~0.65 s at best, measured), so unchanged assets come from ``state_cache``: one packed blob per asset,
current as of an event id. An asset's blob is reused only if no event for that asset came after it; changed
and new assets are read from partition_state and their blobs rewritten after the read (best effort).

The SQL of these reads and of the cache writes lives in state_read.py (plain DBAPI, shared with the sqlite3 read
path of ``nbo status``); this module adds the keyed read of an incremental refresh and the SQLAlchemy glue.

The cache needs event ids that follow commit order, so that "no event after N" means "no change after N". That
holds on SQLite (one writer at a time) and on PostgreSQL, where every transaction that changes partition_state
appends events under the event-log advisory lock (event_log.py). Cache writes there wait at most a moment for
row locks (lock_timeout), like SQLite's short busy timeout.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from notebook_orch.store import state_read
from notebook_orch.store.records import AssetStates, StoreSnapshot
from notebook_orch.store.schema import partition_state
from notebook_orch.store.state_read import STATE_COLUMNS, CacheUpdate

CACHE_DIALECTS = frozenset({"sqlite", "postgresql"})

__all__ = ["CACHE_DIALECTS", "CacheUpdate", "dbapi", "read_all", "take", "write_cache"]


def dbapi(conn: Connection) -> state_read.Dbapi:
    """The DBAPI connection under ``conn`` (same transaction), for state_read's plain SQL."""
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        return state_read.Dbapi(conn.connection.cursor, "%s", lambda: driver.cursor(binary=True))
    return state_read.Dbapi(conn.connection.cursor, "?" if conn.dialect.paramstyle == "qmark" else "%s")


def take(
    conn: Connection, *, keys: Sequence[tuple[str, str]] | None, use_cache: bool
) -> tuple[StoreSnapshot, CacheUpdate | None]:
    """Read a snapshot inside the caller's consistent read transaction; also say what to write to the cache."""
    db = dbapi(conn)
    if keys is None:
        return state_read.take_all(db, use_cache=use_cache and conn.dialect.name in CACHE_DIALECTS)
    mark = state_read.last_event_id(db)  # first: in a consistent read, what came after is absent below too
    return StoreSnapshot(event_id=mark, assets=_read_keys(conn, keys), running=state_read.running(db)), None


def read_all(conn: Connection) -> dict[str, AssetStates]:
    """Every asset's states from partition_state (no cache)."""
    return state_read.read_all(dbapi(conn))


def _read_keys(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[str, AssetStates]:
    ps = partition_state
    cols = [ps.c[name] for name in STATE_COLUMNS]
    key = sa.tuple_(ps.c.asset, ps.c.partition)
    wanted = sorted(set(keys))
    found: dict[str, AssetStates] = {}
    for i in range(0, len(wanted), state_read.CHUNK):
        query = (sa.select(ps.c.asset, *cols).where(key.in_(wanted[i : i + state_read.CHUNK]))
                 .order_by(ps.c.asset, ps.c.partition))
        _group_into(found, conn.execute(query))
    return found


def _group_into(found: dict[str, AssetStates], rows: sa.CursorResult) -> None:
    by_asset: dict[str, list[tuple]] = {}
    for row in rows:
        by_asset.setdefault(row[0], []).append(row[1:])
    for asset, items in by_asset.items():
        if asset in found:  # an asset split across chunks: keep partition order
            before = found[asset]
            items = sorted([*zip(*(getattr(before, f) for f in _fields())), *items])
        found[asset] = AssetStates(*zip(*items))


def _fields() -> tuple[str, ...]:
    return tuple(AssetStates.__dataclass_fields__)


def write_cache(conn: Connection, update: CacheUpdate) -> None:
    """Store the packed assets at the update's event mark, never replacing an entry with an older one."""
    state_read.write_cache(dbapi(conn), update)
