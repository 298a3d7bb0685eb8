"""Which upstream partitions one partition of an asset reads: the one answer every face and the kernel use.

``upstream_reads(spec, upstream_specs, partition)`` turns the declaration's dependencies and mappings into the
exact upstream keys, in partition order, plus how the value arrives in the cell: one value, or — for windows,
``[all]`` and finer upstream grains — several combined (DataFrames concatenated, other values as a dict).
Pure: the keys of open-ended partitions depend on ``now``, which is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from notebook_orch.core.partitions import TimeWindowPartitions, Unpartitioned
from notebook_orch.core.specs import AllPartitions, AssetSpec, Window

_GRAIN_ORDER = {"hourly": 0, "daily": 1, "weekly": 2, "monthly": 3}


@dataclass(frozen=True)
class UpstreamRead:
    """One dependency of one partition: the upstream ``asset``, the ``keys`` it reads, in partition order."""

    asset: str
    describe: str  # as declared, e.g. "raw[-2:0]"
    keys: tuple[str, ...]
    several: bool  # the cell gets the keys' values combined rather than one value
    existing_only: bool  # [all]: read the partitions materialized so far, not every key
    # Not required by the asset's --trigger (``b`` of 'a | b'): when any of its keys is not materialized the cell
    # gets None for it instead of the run failing (a run the trigger started on ``a`` alone must not need ``b``).
    optional: bool = False

    def to_json(self) -> dict:
        return {"asset": self.asset, "describe": self.describe, "keys": list(self.keys), "several": self.several,
                "existing_only": self.existing_only, "optional": self.optional}

    @classmethod
    def from_json(cls, data: Mapping) -> UpstreamRead:
        return cls(str(data["asset"]), str(data["describe"]), tuple(data["keys"]), bool(data["several"]),
                   bool(data["existing_only"]), bool(data.get("optional", False)))


def upstream_reads(spec: AssetSpec, upstream: Mapping[str, AssetSpec], partition: str, *,
                   now: datetime) -> list[UpstreamRead]:
    """What ``spec[partition]`` reads from each dependency (``upstream`` maps each dependency's name to its spec)."""
    from notebook_orch.core.mappings import upstream_ranges

    required = None
    if spec.trigger:  # validated at discovery: parsing cannot fail here
        from notebook_orch.core.triggers import parse_trigger, required_deps

        required = required_deps(parse_trigger(spec.trigger, asset=spec.name), spec.dep_names)
    down_keys = spec.partitions.keys(now=now)
    i = 0 if isinstance(spec.partitions, Unpartitioned) else down_keys.index(partition)
    out = []
    for dep in spec.deps:
        up = upstream[dep.asset]
        up_keys = up.partitions.keys(now=now)
        lo, hi = upstream_ranges(spec.partitions, up.partitions, dep.mapping, len(down_keys), len(up_keys))
        keys = tuple(up_keys[q] for q in range(int(lo[i]), int(hi[i])))
        several = not isinstance(up.partitions, Unpartitioned) and (
            isinstance(dep.mapping, (Window, AllPartitions))
            or (isinstance(spec.partitions, TimeWindowPartitions) and isinstance(up.partitions, TimeWindowPartitions)
                and _GRAIN_ORDER[spec.partitions.grain] > _GRAIN_ORDER[up.partitions.grain]))
        out.append(UpstreamRead(dep.asset, dep.describe(), keys, several, isinstance(dep.mapping, AllPartitions),
                                optional=required is not None and dep.asset not in required))
    return out


__all__ = ["UpstreamRead", "upstream_reads"]
