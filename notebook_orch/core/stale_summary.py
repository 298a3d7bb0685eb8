"""What is stale and why, grouped for a person: one block per asset, one line per cause, partitions as ranges.

Pure: a list of ``PartitionStatus`` (every detail, as ``--json`` prints it) plus the partition order of each asset
in; ``StaleAssetSummary`` records and text lines out. A code change is shown once per asset, with the cell and a
short unified diff of the normalized source it was built with against the cell's current one (the face fetches
the old source from the store and passes it in as ``CodeChange``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from notebook_orch.core.partitions import UNPARTITIONED_KEY
from notebook_orch.core.ranges import KeyRange, describe_ranges, key_ranges
from notebook_orch.core.status import CauseKind

__all__ = [
    "CauseGroup",
    "CodeChange",
    "RootGroup",
    "StaleAssetSummary",
    "render_stale",
    "source_diff",
    "summarize_stale",
]

DIFF_LINES = 20  # a longer diff is cut (``--json`` and the output notebook keep it whole)


@dataclass(frozen=True)
class CauseGroup:
    """One kind of cause (per upstream asset) shared by ``count`` stale partitions of the asset."""

    kind: str
    upstream: str | None
    partitions: tuple[KeyRange, ...]
    count: int
    upstream_partitions: tuple[KeyRange, ...] = ()
    upstream_count: int = 0
    detail: str | None = None  # e.g. which dependencies were added or removed


@dataclass(frozen=True)
class RootGroup:
    """Upstream partitions that are not fresh for their own reasons (missing, failed, code changed ...)."""

    asset: str
    status: str
    kinds: tuple[str, ...]
    partitions: tuple[KeyRange, ...]
    count: int


@dataclass(frozen=True)
class CodeChange:
    """The cell of ``asset`` changed since ``partitions`` were built with ``built_version``.

    ``built_source`` is None when the store does not know that version's source (built before it kept sources).
    """

    asset: str
    location: str
    current_version: str
    current_source: str
    built_version: str
    built_source: str | None
    partitions: tuple[KeyRange, ...] = ()
    count: int = 0

    def diff(self, *, max_lines: int | None = DIFF_LINES) -> list[str]:
        if self.built_source is None:
            return []
        return source_diff(self.built_source, self.current_source, before=f"built ({self.built_version})",
                           after=f"now ({self.current_version})", max_lines=max_lines)


@dataclass(frozen=True)
class StaleAssetSummary:
    asset: str
    partitions: tuple[KeyRange, ...]
    count: int
    causes: tuple[CauseGroup, ...]
    roots: tuple[RootGroup, ...]
    # Information that is not a cause (an [all] dependency's coverage) -> how many stale partitions it is about
    notes: tuple[tuple[str, int], ...] = ()


def source_diff(old: str, new: str, *, before: str = "built", after: str = "now",
                max_lines: int | None = DIFF_LINES) -> list[str]:
    """A unified diff (one line of context) of two normalized sources; cut after ``max_lines`` lines."""
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), before, after, n=1, lineterm=""))
    if max_lines is not None and len(lines) > max_lines:
        rest = len(lines) - max_lines
        lines = [*lines[:max_lines], f"... {rest} more diff line{'s' if rest > 1 else ''} (--json shows all)"]
    return lines


def summarize_stale(statuses: Iterable, order: Callable[[str], Sequence[str]]) -> list[StaleAssetSummary]:
    """Group stale partitions (``PartitionStatus`` records) by asset, then by cause kind and upstream asset.

    ``order(asset)`` gives the asset's partition keys in order (for ranges). Assets keep the order they come in.
    """
    by_asset: dict[str, list] = {}
    for st in statuses:
        by_asset.setdefault(st.asset, []).append(st)
    out = []
    for asset, items in by_asset.items():
        keys = order(asset)
        causes: dict[tuple, tuple[set[str], set[str]]] = {}
        roots: dict[tuple, set[str]] = {}
        notes: dict[str, int] = {}
        for st in items:
            for c in st.causes:
                # Dependency edits differ in what was added/removed: those stay apart; the rest group by upstream.
                detail = c.message.split(": ", 1)[-1] if c.kind == CauseKind.DEPENDENCIES_CHANGED else None
                mine, theirs = causes.setdefault((c.kind, c.upstream, detail), (set(), set()))
                mine.add(st.partition)
                theirs.update(c.upstream_partitions)
            for r in st.root_causes:
                roots.setdefault((r.asset, r.status, tuple(r.kinds)), set()).add(r.partition)
            for note in getattr(st, "notes", ()):
                notes[note] = notes.get(note, 0) + 1
        groups = []
        for (kind, upstream, detail), (mine, theirs) in causes.items():
            up_keys = order(upstream) if upstream else ()
            groups.append(CauseGroup(kind, upstream, key_ranges(mine, keys), len(mine),
                                     key_ranges(theirs, up_keys), len(theirs), detail))
        root_groups = []
        for (root, status, kinds), parts in roots.items():
            if not kinds and any(g.upstream == root and g.kind == f"upstream_{status.lower()}"
                                 and g.upstream_count == len(parts) for g in groups):
                continue  # the direct cause line already says exactly this
            root_groups.append(RootGroup(root, status, kinds, key_ranges(parts, order(root)), len(parts)))
        out.append(StaleAssetSummary(asset, key_ranges([s.partition for s in items], keys), len(items),
                                     tuple(groups), tuple(root_groups), tuple(notes.items())))
    return out


def _what(kinds: Sequence[str], status: str) -> str:
    return ", ".join(k.replace("_", " ") for k in kinds) or status.lower()


def _cause_line(g: CauseGroup) -> str:
    kind = g.kind.replace("_", " ")
    if g.kind == CauseKind.CODE_CHANGED:
        return kind
    if g.kind == CauseKind.DEPENDENCIES_CHANGED:
        return f"{kind}: {g.detail}"
    inherited = g.kind.startswith("upstream_") and g.kind != CauseKind.UPSTREAM_DATA_CHANGED
    word = g.kind.split("_", 1)[1] if inherited else ""
    what = f"{g.upstream_count} {word}" if word else f"{g.upstream_count} with new data"
    return f"{kind}: {g.upstream} {describe_ranges(g.upstream_partitions)}: {what}"


def render_stale(summaries: Sequence[StaleAssetSummary], code_changes: Mapping[str, Sequence[CodeChange]] = {},
                 *, max_diff_lines: int | None = DIFF_LINES) -> list[str]:
    """Plain text lines: per asset a heading, one line per cause group and root cause, and each code change once
    with its diff. ``code_changes``: asset -> one ``CodeChange`` per code version its stale partitions were built
    with."""
    lines: list[str] = []
    for s in summaries:
        whole = len(s.partitions) == 1 and s.partitions[0].first == UNPARTITIONED_KEY
        lines.append(f"{s.asset}: stale" if whole else f"{s.asset} {describe_ranges(s.partitions)}: {s.count} stale")
        for g in s.causes:
            changes = code_changes.get(s.asset, ()) if g.kind == CauseKind.CODE_CHANGED else ()
            line = "  " + _cause_line(g)
            if changes:
                line += f" in {changes[0].location}"
            if g.count != s.count:
                line += f" (for {describe_ranges(g.partitions)}: {g.count})"
            lines.append(line)
            for change in changes:
                lines.extend(_code_change_lines(change, several=len(changes) > 1, max_diff_lines=max_diff_lines))
        for r in s.roots:
            what = _what(r.kinds, r.status)
            lines.append(f"  root cause: {r.asset} {describe_ranges(r.partitions)}: {r.count} {what}")
        for note, count in s.notes:
            lines.append(f"  note: {note}" + (f" ({count} of the {s.count} stale partitions)" if count != s.count
                                                else ""))
    return lines


def _code_change_lines(change: CodeChange, *, several: bool, max_diff_lines: int | None) -> list[str]:
    lines = []
    if several:  # partitions built with different versions: say which diff is whose
        lines.append(f"    built with {change.built_version} ({describe_ranges(change.partitions)}: {change.count}):")
    if change.built_source is None:
        return [*lines, f"    (built with {change.built_version}, whose source the store does not have: it was "
                        "built before sources were kept)"]
    diff = change.diff(max_lines=max_diff_lines)
    if not diff:
        return [*lines, f"    (built with {change.built_version}: the same normalized source; the code version "
                        "was set with --code-version or by another package version)"]
    return [*lines, *("    " + d for d in diff)]
