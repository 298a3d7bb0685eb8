"""The snapshot: every (asset, partition)'s latest state, the running locks and the event mark, in one read.

The hot read path: 1,000 assets x 365 partitions must load in well under half a second. Fetching 365,000 rows
of 10 values through any Python driver costs more than that on our 2-core machines (each value is a new Python
object: ~0.65 s at best, measured), so unchanged assets come from ``state_cache``: one packed blob per asset,
current as of an event id. An asset's blob is reused only if no event for that asset came after it; changed
and new assets are read from partition_state and their blobs rewritten after the read (best effort).

The cache needs event ids that follow commit order, so that "no event after N" means "no change after N". That
holds on SQLite (one writer at a time) and on PostgreSQL, where every transaction that changes partition_state
appends events under the event-log advisory lock (event_log.py). Cache writes there wait at most a moment for
row locks (lock_timeout), like SQLite's short busy timeout.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from notebook_orch.store import state_pack
from notebook_orch.store.dialect import upsert
from notebook_orch.store.reads import last_event_id, running
from notebook_orch.store.records import AssetStates, StoreSnapshot
from notebook_orch.store.schema import events, partition_state, state_cache

CACHE_DIALECTS = frozenset({"sqlite", "postgresql"})
_CHUNK = 500
# Reading this share of assets or more anyway: one full scan beats many IN lists.
_FULL_READ_SHARE = 0.15
# Record a new verified mark after this many events even if no asset changed, to keep the event scan short.
_REVERIFY_EVENTS = 10_000
# The state_cache row holding the event id every entry is verified through (asset names are never empty).
_VERIFIED = ""

# Portable SQL run straight through the DBAPI cursor: no per-row work beyond the driver's own. The column order
# is AssetStates' field order, so each asset's rows zip into its columns.
_COLUMNS = (
    '"partition", materialization_id, code_version, deps_signature, data_version, data_seq, inputs_seq, '
    "last_status, last_run_id, materialized_at"
)
_ALL_ROWS = f'SELECT {_COLUMNS} FROM partition_state ORDER BY asset, "partition"'
_ASSET_COUNTS = "SELECT asset, COUNT(*) FROM partition_state GROUP BY asset ORDER BY asset"


@dataclass
class CacheUpdate:
    """Blobs to store after a snapshot: assets whose cache entry was missing or stale."""

    event_id: int
    payloads: dict[str, bytes | None] = field(default_factory=dict)


def take(
    conn: Connection, *, keys: Sequence[tuple[str, str]] | None, use_cache: bool
) -> tuple[StoreSnapshot, CacheUpdate | None]:
    """Read a snapshot inside the caller's consistent read transaction; also say what to write to the cache."""
    # The event mark first: in a consistent read, everything after it is also absent from the rows below.
    mark = last_event_id(conn)
    update = None
    if keys is not None:
        assets = _read_keys(conn, keys)
    elif use_cache and conn.dialect.name in CACHE_DIALECTS:
        assets, update = _read_cached(conn, mark)
    else:
        assets = read_all(conn)
    return StoreSnapshot(event_id=mark, assets=assets, running=running(conn)), update


def read_all(conn: Connection) -> dict[str, AssetStates]:
    """Every asset's states from partition_state (no cache)."""
    counts = conn.exec_driver_sql(_ASSET_COUNTS).fetchall()
    with _gc_paused():
        cursor = conn.connection.cursor()
        try:
            cursor.execute(_ALL_ROWS)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if sum(n for _, n in counts) != len(rows):
            raise AssertionError("partition_state changed inside a consistent read")
        assets: dict[str, AssetStates] = {}
        start = 0
        for asset, n in counts:
            assets[asset] = AssetStates(*zip(*rows[start : start + n]))
            start += n
    return assets


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Building millions of objects triggers the cyclic GC over and over for nothing (none of them can form a
    # cycle): pausing it saves ~15%. Process-wide but brief; re-enabled only if it was on.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_assets(conn: Connection, names: Sequence[str]) -> dict[str, AssetStates]:
    ps = partition_state
    cols = [ps.c[name] for name in ("partition", *_fields()[1:])]
    found: dict[str, AssetStates] = {}
    wanted = sorted(set(names))
    for i in range(0, len(wanted), _CHUNK):
        query = (
            sa.select(ps.c.asset, *cols)
            .where(ps.c.asset.in_(wanted[i : i + _CHUNK]))
            .order_by(ps.c.asset, ps.c.partition)
        )
        _group_into(found, conn.execute(query))
    return found


def _read_keys(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[str, AssetStates]:
    ps = partition_state
    cols = [ps.c[name] for name in ("partition", *_fields()[1:])]
    key = sa.tuple_(ps.c.asset, ps.c.partition)
    wanted = sorted(set(keys))
    found: dict[str, AssetStates] = {}
    for i in range(0, len(wanted), _CHUNK):
        query = sa.select(ps.c.asset, *cols).where(key.in_(wanted[i : i + _CHUNK])).order_by(ps.c.asset, ps.c.partition)
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


class _CacheRow(NamedTuple):
    asset: str
    event_id: int
    format: str
    payload: bytes | None
    entries: int | None


_CACHE_ROWS = "SELECT asset, event_id, format, payload, entries FROM state_cache"


def _cache_rows(conn: Connection) -> dict[str, _CacheRow]:
    """Every state_cache row, straight from the driver. On PostgreSQL in binary format: in text format each
    payload travels hex-encoded and psycopg decodes it in Python (1.2 s for 1,000 assets x 365 measured, against
    a tenth of that in binary)."""
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor(binary=True)
    else:
        cursor = conn.connection.cursor()
    try:
        cursor.execute(_CACHE_ROWS)
        return {row[0]: _CacheRow(row[0], row[1], row[2], None if row[3] is None else bytes(row[3]), row[4])
                for row in cursor.fetchall()}
    finally:
        cursor.close()


def _read_cached(conn: Connection, mark: int) -> tuple[dict[str, AssetStates], CacheUpdate | None]:
    rows = _cache_rows(conn)
    verified = rows.pop(_VERIFIED, None)
    current = {a: row for a, row in rows.items() if row.format == state_pack.FORMAT}
    if verified is None or verified.format != state_pack.FORMAT or len(rows) < (verified.entries or 0):
        # No cache, another format, or entries deleted since it was verified (an asset without an entry and
        # without new events would go unseen): start over from partition_state.
        assets = read_all(conn)
        return assets, _update(mark, assets)
    # Invariant (kept by write_cache): every asset that had state at event ``verified.event_id`` has an entry,
    # and every entry is current as of max(its event_id, verified.event_id). So only later events matter.
    changed = conn.execute(
        sa.select(events.c.asset, sa.func.max(events.c.id))
        .where(events.c.id > verified.event_id, events.c.asset.is_not(None))
        .group_by(events.c.asset)
    )
    stale = {asset for asset, last in changed if asset not in current or last > current[asset].event_id}
    stale.update(rows.keys() - current.keys())  # written in another format: read and rewrite
    unpackable = {a for a, row in current.items() if row.payload is None} - stale  # valid, but read every time
    to_read = stale | unpackable
    if len(to_read) >= _FULL_READ_SHARE * max(len(rows), 1):
        assets = read_all(conn)
        return assets, _update(mark, {a: assets[a] for a in stale if a in assets})
    fresh = _read_assets(conn, sorted(to_read))
    assets: dict[str, AssetStates] = {}
    broken: list[str] = []
    with _gc_paused():
        for asset in sorted(current.keys() | fresh.keys()):
            if asset in fresh:
                assets[asset] = fresh[asset]
            else:
                try:
                    assets[asset] = state_pack.unpack(current[asset].payload)
                except ValueError:  # a damaged entry: read it as it is and rewrite it
                    broken.append(asset)
    if broken:
        repaired = _read_assets(conn, broken)
        stale.update(repaired)
        assets = dict(sorted({**assets, **repaired}.items()))
    if stale or mark - verified.event_id > _REVERIFY_EVENTS:
        return assets, _update(mark, {a: assets[a] for a in stale if a in assets})
    return assets, None


def _update(mark: int, changed: dict[str, AssetStates]) -> CacheUpdate:
    return CacheUpdate(mark, {asset: state_pack.pack(states) for asset, states in changed.items()})


def write_cache(conn: Connection, update: CacheUpdate) -> None:
    """Store the packed assets at the update's event mark, never replacing an entry with an older one."""
    stmt = upsert(conn, state_cache)
    stmt = stmt.on_conflict_do_update(
        index_elements=[state_cache.c.asset],
        set_={"event_id": stmt.excluded.event_id, "format": stmt.excluded.format, "payload": stmt.excluded.payload},
        where=state_cache.c.event_id <= stmt.excluded.event_id,  # equal marks: same state (maybe re-packed)
    )
    # The entries written plus those found current make every entry current as of this mark: record it, so the
    # next snapshot scans only later events. (Entries written by a concurrent, older snapshot are older than
    # ours only where ours is newer and wins; see the invariant in _read_cached.)
    payloads = {**update.payloads, _VERIFIED: None}
    rows = [
        {"asset": asset, "event_id": update.event_id, "format": state_pack.FORMAT, "payload": payload}
        for asset, payload in payloads.items()
    ]
    for i in range(0, len(rows), _CHUNK):
        conn.execute(stmt, rows[i : i + _CHUNK])
    entries = conn.execute(sa.select(sa.func.count()).where(state_cache.c.asset != _VERIFIED)).scalar_one()
    conn.execute(
        state_cache.update().where(state_cache.c.asset == _VERIFIED).values(entries=entries)
    )
