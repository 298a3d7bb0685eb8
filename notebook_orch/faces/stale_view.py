"""``nbo stale`` / ``%nbo stale``: what is stale, grouped for people, with each code change shown once as a diff.

The edge part of the stale summary: it reads which code version each stale partition was built with and the
sources the store kept for those versions; grouping and wording are pure (``core.stale_summary``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notebook_orch.core.ranges import key_ranges
from notebook_orch.core.stale_summary import CodeChange, StaleAssetSummary, render_stale, summarize_stale


@dataclass(frozen=True)
class StaleView:
    stale: list  # every PartitionStatus, in full
    assets: list[StaleAssetSummary]
    code_changes: dict[str, list[CodeChange]]

    def lines(self) -> list[str]:
        if not self.stale:
            return ["Nothing is stale."]
        n_assets = len(self.assets)
        return [*render_stale(self.assets, self.code_changes),
                f"{len(self.stale)} stale partition{'s' if len(self.stale) != 1 else ''} in {n_assets} "
                f"asset{'s' if n_assets != 1 else ''}"]

    def to_json(self) -> dict[str, Any]:
        """Every detail: each stale partition with all its causes, the groups, and each code change's full diff."""
        return {
            "stale": self.stale,
            "assets": self.assets,
            "code_changes": [
                {"asset": c.asset, "location": c.location, "built_version": c.built_version,
                 "current_version": c.current_version, "partitions": c.partitions, "count": c.count,
                 "built_source": c.built_source, "current_source": c.current_source,
                 "diff": c.diff(max_lines=None)}
                for changes in self.code_changes.values() for c in changes
            ],
        }


def stale_view(project: Any, assets: list[str]) -> StaleView:
    from notebook_orch.core.staleness import stale_partitions

    report = project.status()
    stale = stale_partitions(report, assets)
    summaries = summarize_stale(stale, report.keys)
    return StaleView(stale, summaries, _code_changes(project, stale, report.keys))


def _code_changes(project: Any, stale: list, order: Any) -> dict[str, list[CodeChange]]:
    changed = [s for s in stale if s.materialization_id is not None and any(c.kind == "code_changed"
                                                                           for c in s.causes)]
    if not changed:
        return {}
    store = project.store
    built = store.materializations_by_id([s.materialization_id for s in changed])
    by_version: dict[tuple[str, str], list[str]] = {}
    for s in changed:
        record = built.get(s.materialization_id)
        if record is not None:
            by_version.setdefault((s.asset, record.code_version), []).append(s.partition)
    sources = store.code_sources(by_version)
    out: dict[str, list[CodeChange]] = {}
    for (asset, version), partitions in by_version.items():
        spec = project.graph.spec(asset)
        out.setdefault(asset, []).append(CodeChange(
            asset=asset, location=spec.location, current_version=spec.code_version,
            current_source=spec.code_source, built_version=version, built_source=sources.get((asset, version)),
            partitions=key_ranges(partitions, order(asset)), count=len(partitions),
        ))
    return out
