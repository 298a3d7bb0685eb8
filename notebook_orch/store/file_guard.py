"""Watching a SQLite store file while a process uses it: deleted, replaced, overwritten in place, damaged.

Open SQLite connections do not notice any of these by themselves: a deleted file lives on for them, unseen, a
replaced one stays the old one, and a file overwritten in place (``cp other.db store.db``, a stray ``dd``, a
failing disk) is noticed only when a damaged page happens to be read — and writes into it go on meanwhile. So:

- every operation compares the file's identity (device, inode) and its 100-byte header (SQLite's magic, the page
  size) with what they were when the store was opened: a stat and one ``pread``, a few microseconds;
- ``deep_check`` runs SQLite's ``quick_check`` on a connection of its own (a pooled connection may answer from
  pages it cached before the file was overwritten); the scheduler daemon calls it every pass, and it runs at most
  every ``DEEP_EVERY_S`` and at most ~1 % of the time (its cost grows with the file);
- a problem found is a *verdict*: this process refuses every operation on the store with a message naming the file
  and what to do, and leaves it in ``<store>.damaged`` so the other processes using the file (runners, kernels,
  ``nbo``) refuse too, until the file changes (a restore): then the file is checked again, and a healthy one is
  used from then on and the note removed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from notebook_orch.errors import StoreError

MAGIC = b"SQLite format 3\x00"
DEEP_EVERY_S = 10.0
DEEP_SHARE = 0.01  # quick_check may take this share of the time between two checks at most

# One read-only descriptor per store file and process, never closed: closing any descriptor of a file drops every
# POSIX lock this process holds on it, SQLite's included ("How To Corrupt An SQLite Database File", 2.2).
_FDS: dict[tuple[int, int], int] = {}
_FDS_LOCK = threading.Lock()


@dataclass(frozen=True)
class FileState:
    identity: tuple[int, int]
    size: int
    mtime_ns: int


def file_state(path: Path) -> FileState | None:
    """None when the file is missing or empty (what a connection opened after a delete would have made)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileState((st.st_dev, st.st_ino), st.st_size, st.st_mtime_ns) if st.st_size else None


def read_header(path: Path, identity: tuple[int, int]) -> bytes | None:
    """The file's first 100 bytes, read through the kept descriptor; None if ``path`` is no longer ``identity``."""
    with _FDS_LOCK:
        fd = _FDS.get(identity)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
            st = os.fstat(fd)
            # Keyed by what was opened: the path may have been replaced since the caller's stat.
            fd = _FDS.setdefault((st.st_dev, st.st_ino), fd)
            if (st.st_dev, st.st_ino) != identity:
                return None
    return os.pread(fd, 100, 0)


def header_problem(header: bytes, page_size: bytes) -> str | None:
    if len(header) < 100:
        return f"it is now {len(header)} bytes long, shorter than a SQLite header"
    if header[:16] != MAGIC:
        return f"its first bytes are no longer a SQLite header (they read {header[:16]!r})"
    if header[16:18] != page_size:
        return "its page size in the header changed"
    return None


def quick_check(path: Path) -> list[str]:
    """SQLite's own check of every page, on a read-only connection of its own; [] when healthy."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        rows = [str(r[0]) for r in con.execute("PRAGMA quick_check(10)")]
    except sqlite3.Error as exc:
        return [str(exc)]
    finally:
        con.close()
    return [] if rows == ["ok"] else rows


def restore_steps(path: Path) -> str:
    return (f"Stop notebook_orch's processes writing to it, remove {path} and its -wal and -shm files, copy a good "
            f"backup to {path} (a new file, not over it in place), then run nbo doctor; processes still running "
            "pick the restored file up by themselves.")


def damage_note(path: Path) -> Path:
    """Where the verdict on a damaged store file is left for the other processes."""
    return path.with_name(path.name + ".damaged")


class FileGuard:
    """The checks of one store file in one process (``MetadataStore`` owns one for a SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.note = damage_note(path)
        self.state = file_state(path)
        header = (read_header(path, self.state.identity) if self.state else None) or b""
        self.page_size = header[16:18] if header[:16] == MAGIC else b""
        self.verdict: tuple[FileState | None, str] | None = None  # (file state when found, message)
        self._next_deep = time.monotonic() + DEEP_EVERY_S

    @property
    def identity(self) -> tuple[int, int] | None:
        return self.state.identity if self.state else None

    def check(self) -> str | None:
        """Raise ``StoreError`` while the file is gone, overwritten or damaged. Returns "replaced" when another file
        took its place, "restored" when it changed after it was found damaged (the caller drops its connections
        and checks the schema: either way they hold pages of the old file), None when all is as before."""
        now = file_state(self.path)
        if now is None:
            raise StoreError(
                f"The store file {self.path} was deleted while this process was using it; nothing was read or "
                "written. Put it back (restore it from a backup): this process picks it up again by itself. Runs "
                "that ended meanwhile could not be recorded; the restored store shows them RUNNING until they are "
                "reaped as FAILED."
            )
        if self.verdict is not None or self._noted(now):
            self._recheck(now)  # raises while still damaged
            self._adopt(now)
            return "restored"
        if now.identity != self.identity:
            self._adopt(now)
            return "replaced"
        header = read_header(self.path, now.identity)
        problem = None if header is None else header_problem(header, self.page_size)
        if problem:
            self._condemn(now, f"The store file {self.path} was overwritten in place while this process was using "
                               f"it: {problem}. Nothing was read or written, and nothing more will be. "
                               + restore_steps(self.path))
        self.state = now
        return None

    def _adopt(self, now: FileState) -> None:
        self.state = now
        header = read_header(self.path, now.identity) or b""
        self.page_size = header[16:18]

    def deep_check(self, *, now: bool = False) -> None:
        """``quick_check`` when due (see the module's docstring), or ``now`` (SQLite just said "malformed");
        raises ``StoreError`` naming the damage."""
        if self.verdict is not None or (not now and time.monotonic() < self._next_deep):
            return
        started = time.monotonic()
        damage = quick_check(self.path)
        took = time.monotonic() - started
        self._next_deep = time.monotonic() + max(DEEP_EVERY_S, took / DEEP_SHARE)
        if damage:
            self._condemn(file_state(self.path), self._damaged(damage))

    def _damaged(self, damage: list[str]) -> str:
        lines = [line for text in damage for line in text.splitlines() if line and not line.startswith("***")]
        shown = "; ".join(lines[:3]) + (f"; {len(lines) - 3} more" if len(lines) > 3 else "")
        return (f"The store file {self.path} is damaged (SQLite's quick_check: {shown}): it was "
                "changed in place under notebook_orch (overwritten, or the disk failed). Nothing more is written "
                "to it. " + restore_steps(self.path))

    def _noted(self, now: FileState) -> bool:
        """Another process left a note that the file is damaged: take its verdict while the file is as it found
        it; True too when the file changed since (``_recheck`` looks at it again and removes the note)."""
        try:
            note = json.loads(self.note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if note.get("state") == [list(now.identity), now.size, now.mtime_ns]:
            self.verdict = (now, str(note.get("message") or f"The store file {self.path} is damaged."))
        return True

    def _recheck(self, now: FileState) -> None:
        """Under a verdict: refuse while the file is as it was found; once it changed, check it again, and lift
        the verdict (and the note) when it is healthy."""
        if self.verdict is not None and self.verdict[0] == now:
            raise StoreError(self.verdict[1])
        header = read_header(self.path, now.identity) or b""
        problem = header_problem(header, header[16:18])  # a restored file may have another page size
        damage = [problem] if problem else quick_check(self.path)
        if damage:
            self._condemn(now, self.verdict[1] if self.verdict else self._damaged(damage))
        self.verdict = None
        try:
            self.note.unlink(missing_ok=True)
        except OSError:
            pass

    def _condemn(self, state: FileState | None, message: str) -> None:
        self.verdict = (state, message)
        if state is not None:
            try:  # best effort: a read-only folder still leaves this process refusing
                tmp = self.note.with_name(f"{self.note.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps({"state": [list(state.identity), state.size, state.mtime_ns],
                                           "message": message}), encoding="utf-8")
                os.replace(tmp, self.note)
            except OSError:
                pass
        raise StoreError(message)


__all__ = ["FileGuard", "quick_check"]
