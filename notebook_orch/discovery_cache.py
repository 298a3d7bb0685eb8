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
from datetime import datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from notebook_orch.core.partitions import (
    UNPARTITIONED,
    StaticPartitions,
    TimeWindowPartitions,
    Unpartitioned,
    parse_partitions,
)
from notebook_orch.core.specs import AssetSpec, DepSpec, parse_dep
from notebook_orch.errors import Problem

__all__ = ["DiscoveryCache", "NotebookFindings"]

_FORMAT = 3
# Modules whose code decides what discovery finds in a notebook (relative to the package folder).
_STAMPED = ("discovery.py", "discovery_cache.py", "errors.py", "core")
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
        try:
            entry = _encode(found)
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
                os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from the rest of a team sharing the project
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
# Values are JSON: plain scalars, lists for tuples' items under {"t": ...}, dates and durations tagged, and the
# declaration's own frozen dataclasses (specs, mappings, partitions, SLAs) by class name and init fields. Only the
# classes below are ever built, from decoded JSON values: nothing in a cache file can make this run other code.
def _classes() -> dict[str, type]:
    from notebook_orch.core import partitions, specs

    modules = [specs, partitions]
    try:
        from notebook_orch.core import sla

        modules.append(sla)
    except ImportError:  # a notebook_orch without SLAs
        pass
    return {
        cls.__name__: cls
        for module in modules
        for cls in vars(module).values()
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
    }


_CLASSES = _classes()


def _encode(found: NotebookFindings) -> dict[str, Any]:
    return {
        "specs": [_value(s) for s in found.specs],
        "problems": [[getattr(p, f) for f in _PROBLEM_FIELDS] for p in found.problems],
        "helpers": {name: list(indexes) for name, indexes in found.helpers.items()},
    }


def _decode(entry: Mapping[str, Any]) -> NotebookFindings:
    specs = tuple(_build(s) for s in entry["specs"])
    if not all(isinstance(s, AssetSpec) for s in specs):
        raise ValueError("not a spec")
    return NotebookFindings(
        specs=specs,
        problems=tuple(Problem(*p) for p in entry["problems"]),
        helpers=MappingProxyType({name: tuple(ix) for name, ix in entry["helpers"].items()}),
    )


def _value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"t": [_value(v) for v in value]}
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, time):
        return {"tm": value.isoformat()}
    if isinstance(value, timedelta):
        return {"td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, DepSpec):  # as written (a[-1], b[all]): short, and parsed back through a memo
        return {"dep": value.describe()}
    if isinstance(value, (Unpartitioned, StaticPartitions, TimeWindowPartitions)):
        return {"pt": value.describe()}
    cls = type(value)
    if _CLASSES.get(cls.__name__) is cls:
        # Fields left at their default are not written: most of a spec is, and decoding 1,000 specs is the point
        fields = {}
        for f in dataclasses.fields(cls):
            if f.init:
                item = getattr(value, f.name)
                if f.default is dataclasses.MISSING or item != f.default:
                    fields[f.name] = _value(item)
        return {"dc": cls.__name__, "f": fields}
    raise TypeError(f"cannot cache a {cls.__name__}")


def _build(data: Any) -> Any:
    if not isinstance(data, dict):
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        raise ValueError(f"unexpected cached value {data!r:.60}")
    if "dc" in data:
        obj = _CLASSES[data["dc"]](**{k: _build(v) for k, v in data["f"].items()})
        return UNPARTITIONED if obj == UNPARTITIONED else obj
    ((tag, item),) = data.items()
    if tag == "dep" or tag == "pt":
        return _parsed(tag, item)
    if tag == "t":
        return tuple(v if isinstance(v, str) else _build(v) for v in item)
    if tag == "dt":
        return datetime.fromisoformat(item)
    if tag == "tm":
        return time.fromisoformat(item)
    if tag == "td":
        days, seconds, micro = item
        return timedelta(days=days, seconds=seconds, microseconds=micro)
    raise ValueError(f"unexpected cached value {data!r:.60}")


_PARSED: dict[tuple[str, str], Any] = {}


def _parsed(tag: str, text: str) -> Any:
    # 1,000 specs share a handful of partition definitions and dependency spellings: parse each once. (``put``
    # caches nothing whose text does not parse back to the same value.)
    found = _PARSED.get((tag, text))
    if found is None:
        if tag == "dep":
            found = parse_dep(text)
        else:
            found = UNPARTITIONED if text == UNPARTITIONED.describe() else parse_partitions(text)
        _PARSED[(tag, text)] = found
    return found
