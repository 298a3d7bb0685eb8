"""What discovery found in each notebook, remembered by the notebook's content, so that an unchanged project is not
parsed again by every new process (``nbo status`` parsed 1,000 declarations and analysed their helper cells
afresh each time: 0.4 s of a cold command).

An entry is keyed by the notebook's path and a hash of its bytes, and the whole file by a stamp of the code that
computes it (the Python version and the source of the parser, code-version and discovery modules): a notebook that
changed in any way, or a notebook_orch that parses differently, is parsed again. Content hashes, not modification
times: reading 200 notebooks costs a few milliseconds, and a file rewritten within one mtime tick is still seen.

The file is plain JSON (never pickle: a project folder may come from anywhere, and reading its status must not run
code). It lives under the project's ``.notebook_orch/cache/`` — never in the metadata store, which reads never
write — and is replaced atomically; a cache that cannot be read or written is simply not used. An entry is only
stored when decoding it gives back exactly what discovery found, so a spec field this codec does not know about
(or a value that does not survive the trip) disables the cache for that notebook instead of changing its result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from notebook_orch.core.partitions import UNPARTITIONED, parse_partitions
from notebook_orch.core.specs import AssetSpec, parse_dep
from notebook_orch.errors import Problem

__all__ = ["DiscoveryCache", "NotebookFindings"]

_FORMAT = 1
# Modules whose code decides what discovery finds in a notebook (relative to the package folder).
_STAMPED = ("discovery.py", "discovery_cache.py", "errors.py", "core")
_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(AssetSpec))
_PROBLEM_FIELDS = tuple(f.name for f in dataclasses.fields(Problem))


@dataclasses.dataclass(frozen=True)
class NotebookFindings:
    """The assets, problems and helper cells discovery found in one notebook."""

    specs: tuple[AssetSpec, ...]
    problems: tuple[Problem, ...]
    helpers: Mapping[str, tuple[int, ...]]


def content_key(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class DiscoveryCache:
    """The cache file at ``path``: ``get`` what a notebook held, ``put`` what was found, ``save`` once at the end."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp = _code_stamp()
        self._old: dict[str, Any] = self._load()
        self._new: dict[str, Any] = {}
        self._changed = False

    def get(self, notebook: str, key: str) -> NotebookFindings | None:
        entry = self._old.get(notebook)
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        try:
            found = _decode(entry)
        except Exception:  # damaged or hand-edited (any error of the parsers): parse the notebook again
            return None
        self._new[notebook] = entry
        return found

    def put(self, notebook: str, key: str, found: NotebookFindings) -> None:
        entry = _encode(found)
        try:
            back = _decode(json.loads(json.dumps(entry)))
            same = back == found and all(  # source and code_source do not take part in AssetSpec's ==
                a.source == b.source and a.code_source == b.code_source for a, b in zip(back.specs, found.specs)
            )
        except Exception:
            same = False
        if not same:  # something this codec cannot carry: never cache a result that would come back different
            return
        entry["key"] = key
        self._new[notebook] = entry
        self._changed = True

    def save(self) -> None:
        """Write the entries used or found in this discovery (notebooks that are gone drop out), if anything
        changed. Best effort: a read-only project folder just goes without the cache."""
        if not self._changed and self._new.keys() == self._old.keys():
            return
        data = {"format": _FORMAT, "stamp": self._stamp, "notebooks": self._new}
        try:
            # Only inside a folder that exists already (the project's .notebook_orch): a command that only reads,
            # on a project nothing ran in yet, leaves no trace (nbo validate writes nothing).
            self.path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".discovery-", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, ensure_ascii=False, separators=(",", ":"))
                os.replace(tmp, self.path)  # readers see the old file or the new one, never half of one
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get("stamp") != self._stamp:
            return {}
        notebooks = data.get("notebooks")
        return notebooks if isinstance(notebooks, dict) else {}


def _code_stamp() -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{_FORMAT}\0{sys.version}\0".encode())
    package = Path(__file__).resolve().parent
    for name in _STAMPED:
        path = package / name
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for file in files:
            h.update(file.name.encode() + b"\0")
            try:
                h.update(file.read_bytes())
            except OSError:
                h.update(b"\0missing\0")
    return h.hexdigest()


# -- the codec ----------------------------------------------------------------------------------------------------
def _encode(found: NotebookFindings) -> dict[str, Any]:
    return {
        "specs": [_encode_spec(s) for s in found.specs],
        "problems": [[getattr(p, f) for f in _PROBLEM_FIELDS] for p in found.problems],
        "helpers": {name: list(indexes) for name, indexes in found.helpers.items()},
    }


def _decode(entry: Mapping[str, Any]) -> NotebookFindings:
    return NotebookFindings(
        specs=tuple(_decode_spec(s) for s in entry["specs"]),
        problems=tuple(Problem(*p) for p in entry["problems"]),
        helpers=MappingProxyType({name: tuple(ix) for name, ix in entry["helpers"].items()}),
    )


def _encode_spec(spec: AssetSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _SPEC_FIELDS:
        value = getattr(spec, name)
        if name == "deps":
            value = [d.describe() for d in value]
        elif name == "partitions":
            value = None if value == UNPARTITIONED else value.describe()
        elif isinstance(value, time):
            value = value.strftime("%H:%M")
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def _decode_spec(data: Mapping[str, Any]) -> AssetSpec:
    values: dict[str, Any] = {}
    for name in _SPEC_FIELDS:
        value = data[name]
        if name == "deps":
            value = tuple(parse_dep(d) for d in value)
        elif name == "partitions":
            value = _partitions(value)
        elif name == "sla" and value is not None:
            hour, minute = value.split(":")
            value = time(int(hour), int(minute))
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return AssetSpec(**values)


_PARTITIONS: dict[str | None, Any] = {}


def _partitions(text: str | None) -> Any:
    # 1,000 assets share a handful of partition definitions: parse each once.
    if text not in _PARTITIONS:
        _PARTITIONS[text] = parse_partitions(text)
    return _PARTITIONS[text]
