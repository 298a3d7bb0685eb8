"""Impact analysis, pure: what a delay of one (asset, partition) does downstream.

Every downstream partition that reads the source (through each dependency's mapping: offsets, windows, ``[all]``,
grain changes — the same ranges the runtime and the triggers use) is affected, level after level. For each, a
projected completion:

- the source completes at its usual time plus the delay: usual = now when it is FRESH (a re-delivery), the run's
  start plus its median duration when it is RUNNING, otherwise (its window's end or now, whichever is later) plus
  its median duration;
- a downstream partition starts when its last affected input completes (inputs not affected are taken as ready),
  never before its own window has ended (a monthly roll-up waits for the month), and completes its median
  duration later. The input that decided the start is its step on the **critical path**.

Medians come from past successful runs (the caller reads them); an asset without history counts 0 s and is flagged.
The same projection without the delay tells SLA misses caused by the delay from those that would happen anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from notebook_orch.core.mappings import readers_of, upstream_ranges
from notebook_orch.core.partitions import TimeWindowPartitions
from notebook_orch.core.sla import deadline as sla_deadline
from notebook_orch.core.specs import AssetSpec
from notebook_orch.core.status import Status

Key = tuple[str, str]
# Far enough ahead that the partitions a delayed source feeds exist (a month's roll-up of today's day).
HORIZON = timedelta(days=32)


@dataclass(frozen=True)
class ImpactNode:
    asset: str
    partition: str
    depth: int  # 0 for the source, 1 for what reads it directly, ...
    done: datetime  # projected completion with the delay (naive UTC)
    done_without_delay: datetime
    duration_s: float  # the median used
    has_history: bool
    via: Key | None  # the input on the critical path (None: the source, or its window's end decided)
    deadline: datetime | None = None  # its SLA deadline, if it has an SLA
    sla: str | None = None
    deadline_passed: bool = False  # the deadline is behind us: its verdict is history, not a projection

    @property
    def misses(self) -> bool:
        return self.deadline is not None and not self.deadline_passed and self.done > self.deadline

    @property
    def misses_anyway(self) -> bool:
        return self.deadline is not None and not self.deadline_passed and self.done_without_delay > self.deadline

    @property
    def slack_s(self) -> float | None:
        """Seconds between the projected completion and the deadline (negative: late)."""
        return None if self.deadline is None else (self.deadline - self.done).total_seconds()


@dataclass(frozen=True)
class ImpactReport:
    source: Key
    delay: timedelta
    now: datetime
    nodes: tuple[ImpactNode, ...]  # the source first, then downstream in dependency order

    def node(self, asset: str, partition: str) -> ImpactNode:
        return next(n for n in self.nodes if (n.asset, n.partition) == (asset, partition))

    @property
    def downstream(self) -> tuple[ImpactNode, ...]:
        return self.nodes[1:]

    @property
    def sla_misses(self) -> tuple[ImpactNode, ...]:
        """SLAs the delay makes miss (they would be met without it)."""
        return tuple(n for n in self.nodes if n.misses and not n.misses_anyway)

    @property
    def missed_anyway(self) -> tuple[ImpactNode, ...]:
        return tuple(n for n in self.nodes if n.misses_anyway)

    def critical_path(self, to: Key | None = None) -> tuple[Key, ...]:
        """From the source to ``to`` (default: of the partitions the delay moves, the one projected to complete
        last), step by step."""
        if not self.nodes:
            return ()
        by_key = {(n.asset, n.partition): n for n in self.nodes}
        moved = [n for n in self.nodes if n.done > n.done_without_delay] or list(self.nodes)
        end = by_key[to] if to is not None else max(moved, key=lambda n: (n.done, n.depth))
        path = [(end.asset, end.partition)]
        while by_key[path[-1]].via is not None:
            path.append(by_key[path[-1]].via)
        return tuple(reversed(path))


def _window_end(spec: AssetSpec, key: str) -> datetime | None:
    pdef = spec.partitions
    if not isinstance(pdef, TimeWindowPartitions):
        return None
    return pdef.window(pdef.index_at_time(pdef.parse_key(key)))[1]


def _deadline(spec: AssetSpec, key: str) -> datetime | None:
    if spec.sla is None or not isinstance(spec.partitions, TimeWindowPartitions):
        return None
    return sla_deadline(spec.sla, spec.partitions, key)


def project_impact(
    specs: Mapping[str, AssetSpec],
    order: Sequence[str],
    source: Key,
    *,
    delay: timedelta,
    now: datetime,
    durations: Mapping[str, float | None],
    status_of: Callable[[str, str], Status],
    running_since: Mapping[Key, datetime] | None = None,
    limit: int = 100_000,
) -> ImpactReport:
    """The affected partitions of everything downstream of ``source`` with projected completions (module doc).

    ``order`` is a dependency order of the asset names; ``durations`` the median seconds per asset (None or absent:
    no history). At most ``limit`` partitions are projected (a guard against ``[all]`` fan-outs of huge graphs).
    """
    import numpy as np

    running_since = running_since or {}
    asset, key = source
    src = specs[asset]
    horizon = max(now, _window_end(src, key) or now) + delay + HORIZON
    keys_at: dict[str, tuple[str, ...]] = {}

    def keys(name: str) -> tuple[str, ...]:
        if name not in keys_at:
            keys_at[name] = specs[name].partitions.keys(now=horizon)
        return keys_at[name]

    def duration(name: str) -> tuple[float, bool]:
        d = durations.get(name)
        return (float(d), True) if d is not None else (0.0, False)

    # The source.
    d, known = duration(asset)
    st = status_of(asset, key)
    if st == Status.FRESH:
        usual = now
    elif st == Status.RUNNING and source in running_since:
        usual = max(now, running_since[source] + timedelta(seconds=d))
    else:
        usual = max(now, _window_end(src, key) or now) + timedelta(seconds=d)
    dl = _deadline(src, key)
    nodes: list[ImpactNode] = [ImpactNode(asset, key, 0, usual + delay, usual, d, known, None, dl,
                                          src.sla.text if src.sla else None, dl is not None and dl <= now)]
    # Per affected asset: sorted partition indexes and, aligned, their completions (with and without the delay).
    index_of = {k: i for i, k in enumerate(keys(asset))}
    affected: dict[str, tuple[np.ndarray, list[datetime], list[datetime], list[Key]]] = {
        asset: (np.array([index_of[key]], dtype=np.int64), [usual + delay], [usual], [source])}
    position = {name: i for i, name in enumerate(order)}
    readers: dict[str, list[AssetSpec]] = {}
    for s in specs.values():
        for dep in s.deps:
            readers.setdefault(dep.asset, []).append(s)
    todo = sorted({s.name for s in readers.get(asset, [])}, key=lambda n: position.get(n, 0))
    seen = set(todo)
    depth = {asset: 0}
    count = 1
    while todo:
        name = todo.pop(0)
        spec = specs[name]
        down_keys = keys(name)
        hit: dict[int, tuple[datetime, datetime, Key | None]] = {}  # index -> (latest input with, without, via)
        for dep in spec.deps:
            got = affected.get(dep.asset)
            if got is None:
                continue
            ups, done, base, names = got
            lo, hi = upstream_ranges(spec.partitions, specs[dep.asset].partitions, dep.mapping, len(down_keys),
                                     len(keys(dep.asset)))
            for i in readers_of(lo, hi, ups).tolist():
                a, b = np.searchsorted(ups, lo[i]), np.searchsorted(ups, hi[i])
                j = max(range(a, b), key=lambda j: done[j])
                with_d, without = done[j], max(base[a:b])
                old = hit.get(i)
                if old is None or with_d > old[0]:
                    hit[i] = (with_d, max(without, old[1]) if old else without, names[j])
                else:
                    hit[i] = (old[0], max(without, old[1]), old[2])
        if not hit:
            continue
        d, known = duration(name)
        depth[name] = 1 + max(depth.get(dep.asset, -1) for dep in spec.deps if dep.asset in affected)
        idx = sorted(hit)
        done_list, base_list, name_list = [], [], []
        for i in idx:
            k = down_keys[i]
            with_d, without, via = hit[i]
            end = _window_end(spec, k)
            start = max(with_d, now, end or now)
            start0 = max(without, now, end or now)
            finish = start + timedelta(seconds=d)
            dl = _deadline(spec, k)
            nodes.append(ImpactNode(name, k, depth[name], finish, start0 + timedelta(seconds=d), d, known,
                                    via if start == with_d else None, dl, spec.sla.text if spec.sla else None,
                                    dl is not None and dl <= now))
            done_list.append(finish)
            base_list.append(start0 + timedelta(seconds=d))
            name_list.append((name, k))
            count += 1
            if count > limit:
                raise ValueError(f"more than {limit:,} partitions are downstream of {asset}[{key}]; narrow the "
                                 "question to fewer partitions or assets.")
        affected[name] = (np.array(idx, dtype=np.int64), done_list, base_list, name_list)
        for r in readers.get(name, []):
            if r.name not in seen:
                seen.add(r.name)
                todo.append(r.name)
        todo.sort(key=lambda n: position.get(n, 0))
    return ImpactReport(source, delay, now, tuple(nodes))


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
