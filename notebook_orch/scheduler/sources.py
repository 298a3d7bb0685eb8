"""The daemon's eyes on external sources: a partition is recorded when its marker appears (or changes).

Each pass stats the marker of every partition of every source (``os.stat`` only: a thousand partitions cost a few
milliseconds); a marker whose size or modification time differs from what this daemon last saw is read, the data
version computed (``core.sources.source_data_version``), and when it differs from the recorded one the partition
is recorded — one ``observe`` run per source and pass, its materializations committed with the run in one
transaction, so the MATERIALIZED events reach the ``--auto`` readers through the event log like any other.
No marker, no record: a partition being written is never seen half-done. A daemon that restarts re-reads every
marker once and records only what changed meanwhile.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from notebook_orch.core.sources import source_data_version, source_folder
from notebook_orch.core.specs import SOURCE_IO, AssetSpec

log = logging.getLogger("notebook_orch.scheduler")

MAX_LISTED = 10_000  # files listed for a data version; past this a partition needs a marker with content


class SourceObserver:
    def __init__(self, project: Any, *, min_interval_s: float = 1.0) -> None:
        self.project = project
        self.min_interval_s = min_interval_s
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}  # (source, partition) -> marker (mtime_ns, size)
        self._last = float("-inf")
        self._graph: Any = None
        self._sources: list[AssetSpec] = []

    @property
    def watching(self) -> bool:
        """Whether the graph of the last pass declares a source (the daemon then passes every interval)."""
        return bool(self._sources)

    def observe(self, now: datetime) -> list[tuple[str, str]]:
        """Record every source partition whose marker appeared or changed; returns them."""
        graph = self.project.graph
        if graph is not self._graph:  # the sources of a graph, found once (a daemon at rest passes every second)
            self._graph, self._sources = graph, [s for s in graph.specs if s.source_path is not None]
        sources = self._sources
        if not sources or time.monotonic() - self._last < self.min_interval_s:
            return []
        self._last = time.monotonic()
        naive = now.astimezone(timezone.utc).replace(tzinfo=None)
        recorded: list[tuple[str, str]] = []
        for spec in sources:
            recorded += self._observe_one(spec, naive)
        return recorded

    def _observe_one(self, spec: AssetSpec, now: datetime) -> list[tuple[str, str]]:
        from notebook_orch.store.records import NewMaterialization

        root = self.project.config.root
        changed: dict[str, tuple[Path, str]] = {}
        for key in spec.partitions.keys(now=now):
            folder = Path(source_folder(spec, key, root=root))
            try:
                st = os.stat(folder / spec.marker)
            except OSError:
                continue  # no marker: not complete (or not there at all)
            sig = (st.st_mtime_ns, st.st_size)
            if self._seen.get((spec.name, key)) == sig:
                continue
            try:
                version = _data_version(folder, spec.marker)
            except OSError as exc:  # removed or unreadable between the stat and the read: next pass
                log.warning("source %s[%s]: cannot read %s (%s); trying again next pass", spec.name, key, folder, exc)
                continue
            self._seen[(spec.name, key)] = sig
            changed[key] = (folder, version)
        if not changed:
            return []
        states = self.project.store.snapshot(keys=[(spec.name, k) for k in changed], use_cache=False).assets
        rows = states.get(spec.name)
        have = {} if rows is None else {k: (rows.data_version[j], rows.code_version[j])
                                        for j, k in enumerate(rows.partitions)}
        new = [NewMaterialization(asset=spec.name, partition=k, code_version=spec.code_version, data_version=v,
                                  storage_path=str(folder), io=SOURCE_IO)
               for k, (folder, v) in changed.items() if have.get(k) != (v, spec.code_version)]
        if not new:
            return []
        return self._record(spec, new)

    def _record(self, spec: AssetSpec, new: list[Any]) -> list[tuple[str, str]]:
        from notebook_orch.errors import StoreError

        store = self.project.store
        try:
            run = store.start_run(notebook=spec.notebook, targets=[(m.asset, m.partition) for m in new], kind="observe")
            store.finalize_success(run.run_id, new)
        except StoreError as exc:  # a partition locked by another observer, say: look again next pass
            for m in new:
                self._seen.pop((m.asset, m.partition), None)
            log.warning("source %s: could not record %d partition(s): %s", spec.name, len(new), exc)
            return []
        keys = [m.partition for m in new]
        log.info("source %s: recorded %s (marker %s present)", spec.name, _shown(keys), spec.marker)
        return [(spec.name, k) for k in keys]


def _data_version(folder: Path, marker: str) -> str:
    content = (folder / marker).read_bytes()
    files: list[tuple[str, int, int]] = []
    if not content.strip():
        for path in sorted(folder.rglob("*")):
            if len(files) >= MAX_LISTED:
                break
            if path.is_file() and path.name != marker:
                st = path.stat()
                files.append((path.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns))
    return source_data_version(content, files)


def _shown(keys: list[str]) -> str:
    return ", ".join(keys) if len(keys) <= 5 else f"{keys[0]} .. {keys[-1]} ({len(keys)} partitions)"


__all__ = ["SourceObserver"]
