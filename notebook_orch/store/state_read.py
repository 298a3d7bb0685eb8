"""The snapshot's reads and cache writes in plain SQL over any DBAPI connection — no SQLAlchemy.

One copy of the snapshot's SQL, run two ways: inside the store's SQLAlchemy transactions (snapshot.py, every
backend) and straight through ``sqlite3`` by ``sqlite_read.py``, so that ``nbo status`` on a SQLite file never
imports SQLAlchemy or SQLModel (~0.45 s, more than half of a cold ``nbo status``). The table and column names are
those of schema.py (tests/store/test_status_read_path.py checks partition_state's).

How the cache works and why it is correct: snapshot.py's docstring.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from notebook_orch.store import state_pack
from notebook_orch.store.records import AssetStates, StoreSnapshot

# partition_state's columns in AssetStates' field order (``partition`` for ``partitions``): each asset's rows zip
# into its columns.
STATE_COLUMNS = ("partition", "materialization_id", "code_version", "deps_signature", "data_version", "data_seq",
                 "inputs_seq", "last_status", "last_run_id", "materialized_at")
assert len(STATE_COLUMNS) == len(AssetStates.__dataclass_fields__)

_SELECT_STATES = ", ".join(f'"{c}"' for c in STATE_COLUMNS)
_ALL_ROWS = f'SELECT {_SELECT_STATES} FROM partition_state ORDER BY asset, "partition"'
_ASSET_COUNTS = "SELECT asset, COUNT(*) FROM partition_state GROUP BY asset ORDER BY asset"
_ASSETS_ROWS = (f"SELECT asset, {_SELECT_STATES} FROM partition_state WHERE asset IN ({{marks}}) "
                'ORDER BY asset, "partition"')
_CACHE_ROWS = "SELECT asset, event_id, format, payload, entries FROM state_cache"
_CHANGED = "SELECT asset, MAX(id) FROM events WHERE id > {p} AND asset IS NOT NULL GROUP BY asset"
_LAST_EVENT = "SELECT MAX(id) FROM events"
_RUNNING = 'SELECT asset, "partition", run_id FROM partition_locks'
_INPUTS_OF = "SELECT id, inputs FROM materializations WHERE id IN ({marks})"
_UPSERT_CACHE = (
    "INSERT INTO state_cache (asset, event_id, format, payload) VALUES ({p}, {p}, {p}, {p}) "
    "ON CONFLICT (asset) DO UPDATE SET event_id = excluded.event_id, format = excluded.format, "
    "payload = excluded.payload "
    "WHERE state_cache.event_id <= excluded.event_id"  # equal marks: same state (maybe re-packed)
)
_COUNT_ENTRIES = "SELECT COUNT(*) FROM state_cache WHERE asset <> {p}"
_SET_ENTRIES = "UPDATE state_cache SET entries = {p} WHERE asset = {p}"

CHUNK = 500
# Reading this share of assets or more anyway: one full scan beats many IN lists.
_FULL_READ_SHARE = 0.15
# Record a new verified mark after this many events even if no asset changed, to keep the event scan short.
_REVERIFY_EVENTS = 10_000
# The state_cache row holding the event id every entry is verified through (asset names are never empty).
_VERIFIED = ""


@dataclass(frozen=True)
class Dbapi:
    """A DBAPI connection as the snapshot uses it: new cursors, the driver's placeholder, and for PostgreSQL a
    binary cursor for the cache's blobs (in text format psycopg decodes hex in Python: 1.2 s for 1,000 assets x
    365 measured, a tenth of that in binary)."""

    cursor: Callable[[], Any]
    placeholder: str = "?"
    blob_cursor: Callable[[], Any] | None = None

    def rows(self, sql: str, params: Sequence[Any] = (), *, blobs: bool = False) -> list[Any]:
        cursor = (self.blob_cursor or self.cursor)() if blobs else self.cursor()
        try:
            if params:
                cursor.execute(sql, tuple(params))
            else:
                cursor.execute(sql)
            return cursor.fetchall() if cursor.description is not None else []
        finally:
            cursor.close()

    def sql(self, template: str, marks: int = 0) -> str:
        return template.format(p=self.placeholder, marks=", ".join([self.placeholder] * marks))


@dataclass
class CacheUpdate:
    """Blobs to store after a snapshot: assets whose cache entry was missing or stale."""

    event_id: int
    payloads: dict[str, bytes | None] = field(default_factory=dict)


def last_event_id(db: Dbapi) -> int:
    return db.rows(_LAST_EVENT)[0][0] or 0


def running(db: Dbapi) -> dict[tuple[str, str], str]:
    return {(a, p): r for a, p, r in db.rows(_RUNNING)}


def take_all(db: Dbapi, *, use_cache: bool) -> tuple[StoreSnapshot, CacheUpdate | None]:
    """Every asset's states, the locks and the event mark, inside the caller's consistent read transaction; also
    what to write to the cache (``use_cache``: reuse packed unchanged assets from state_cache)."""
    # The event mark first: in a consistent read, everything after it is also absent from the rows below.
    mark = last_event_id(db)
    update = None
    if use_cache:
        assets, update = _read_cached(db, mark)
    else:
        assets = read_all(db)
    return StoreSnapshot(event_id=mark, assets=assets, running=running(db)), update


def read_all(db: Dbapi) -> dict[str, AssetStates]:
    """Every asset's states from partition_state (no cache)."""
    counts = db.rows(_ASSET_COUNTS)
    with _gc_paused():
        rows = db.rows(_ALL_ROWS)
        if sum(n for _, n in counts) != len(rows):
            raise AssertionError("partition_state changed inside a consistent read")
        assets: dict[str, AssetStates] = {}
        start = 0
        for asset, n in counts:
            assets[asset] = AssetStates(*zip(*rows[start : start + n]))
            start += n
    return assets


def read_assets(db: Dbapi, names: Iterable[str]) -> dict[str, AssetStates]:
    """The states of the named assets (those with any)."""
    wanted = sorted(set(names))
    by_asset: dict[str, list[tuple]] = {}
    for i in range(0, len(wanted), CHUNK):
        chunk = wanted[i : i + CHUNK]
        for row in db.rows(db.sql(_ASSETS_ROWS, len(chunk)), chunk):
            by_asset.setdefault(row[0], []).append(row[1:])  # chunks hold whole assets, in partition order
    return {asset: AssetStates(*zip(*items)) for asset, items in by_asset.items()}


def consumed_versions(db: Dbapi, ids: Iterable[int]) -> dict[int, tuple[tuple[str, str, str], ...]]:
    """For each materialization id: the (asset, partition, data version) of every input it read."""
    wanted = sorted(set(ids))
    found: dict[int, tuple[tuple[str, str, str], ...]] = {}
    for i in range(0, len(wanted), CHUNK):
        chunk = wanted[i : i + CHUNK]
        for mid, text in db.rows(db.sql(_INPUTS_OF, len(chunk)), chunk):
            # Items are [asset, partition, materialization_id, data_version, data_seq] (codec.materialization_values).
            found[mid] = tuple((c[0], c[1], c[3]) for c in json.loads(text)) if text != "[]" else ()
    return found


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


class _CacheRow(NamedTuple):
    asset: str
    event_id: int
    format: str
    payload: bytes | None
    entries: int | None


def _cache_rows(db: Dbapi) -> dict[str, _CacheRow]:
    return {row[0]: _CacheRow(row[0], row[1], row[2], None if row[3] is None else bytes(row[3]), row[4])
            for row in db.rows(_CACHE_ROWS, blobs=True)}


def _read_cached(db: Dbapi, mark: int) -> tuple[dict[str, AssetStates], CacheUpdate | None]:
    rows = _cache_rows(db)
    verified = rows.pop(_VERIFIED, None)
    current = {a: row for a, row in rows.items() if row.format == state_pack.FORMAT}
    if verified is None or verified.format != state_pack.FORMAT or len(rows) < (verified.entries or 0):
        # No cache, another format, or entries deleted since it was verified (an asset without an entry and
        # without new events would go unseen): start over from partition_state.
        assets = read_all(db)
        return assets, _update(mark, assets)
    # Invariant (kept by write_cache): every asset that had state at event ``verified.event_id`` has an entry,
    # and every entry is current as of max(its event_id, verified.event_id). So only later events matter.
    changed = db.rows(db.sql(_CHANGED), (verified.event_id,))
    stale = {asset for asset, last in changed if asset not in current or last > current[asset].event_id}
    stale.update(rows.keys() - current.keys())  # written in another format: read and rewrite
    unpackable = {a for a, row in current.items() if row.payload is None} - stale  # valid, but read every time
    to_read = stale | unpackable
    if len(to_read) >= _FULL_READ_SHARE * max(len(rows), 1):
        assets = read_all(db)
        return assets, _update(mark, {a: assets[a] for a in stale if a in assets})
    fresh = read_assets(db, to_read)
    assets: dict[str, AssetStates] = {}
    broken: list[str] = []
    shared: dict[bytes, tuple[str, ...]] = {}
    with _gc_paused():
        for asset in sorted(current.keys() | fresh.keys()):
            if asset in fresh:
                assets[asset] = fresh[asset]
            else:
                try:
                    assets[asset] = state_pack.unpack(current[asset].payload, shared=shared)
                except ValueError:  # a damaged entry: read it as it is and rewrite it
                    broken.append(asset)
    if broken:
        repaired = read_assets(db, broken)
        stale.update(repaired)
        assets = dict(sorted({**assets, **repaired}.items()))
    if stale or mark - verified.event_id > _REVERIFY_EVENTS:
        return assets, _update(mark, {a: assets[a] for a in stale if a in assets})
    return assets, None


def _update(mark: int, changed: dict[str, AssetStates]) -> CacheUpdate:
    return CacheUpdate(mark, {asset: state_pack.pack(states) for asset, states in changed.items()})


def write_cache(db: Dbapi, update: CacheUpdate) -> None:
    """Store the packed assets at the update's event mark, never replacing an entry with an older one; inside the
    caller's write transaction."""
    # The entries written plus those found current make every entry current as of this mark: record it, so the
    # next snapshot scans only later events. (Entries written by a concurrent, older snapshot are older than
    # ours only where ours is newer and wins; see the invariant in _read_cached.)
    payloads = {**update.payloads, _VERIFIED: None}
    rows = [(asset, update.event_id, state_pack.FORMAT, payload) for asset, payload in payloads.items()]
    cursor = db.cursor()
    try:
        cursor.executemany(db.sql(_UPSERT_CACHE), rows)
        cursor.execute(db.sql(_COUNT_ENTRIES), (_VERIFIED,))
        entries = cursor.fetchone()[0]
        cursor.execute(db.sql(_SET_ENTRIES), (entries, _VERIFIED))
    finally:
        cursor.close()
