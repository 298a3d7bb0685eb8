"""Data-aware triggers (the mediator) as pure functions.

An asset declared ``--auto`` runs for partition P when every upstream partition mapped to P is FRESH — an AND join
over the same mappings the runtime reads (offsets, windows, ``[all]``, grain changes), so a monthly roll-up waits
for every day of its month. A ``--trigger`` expression such as ``a & (b | c)`` states another condition: a name is
true when every partition of that upstream mapped to P is FRESH.

Evaluation is incremental: :func:`reached_joins` turns a batch of changes (an upstream partition whose *data
version changed*) into the (asset, partition) joins they reach; :func:`evaluate_joins` decides those joins, at most
``limit`` per pass, and hands back the rest untouched for the next pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from notebook_orch.core.mappings import readers_of, upstream_ranges
from notebook_orch.core.specs import AssetSpec
from notebook_orch.core.status import Status
from notebook_orch.errors import NotebookOrchError

#: Statuses a downstream partition may be started from by a trigger (FRESH needs nothing; INVALID cannot run).
STARTABLE = frozenset({Status.STALE, Status.MISSING, Status.FAILED})


class TriggerError(NotebookOrchError, ValueError):
    """A ``--trigger`` expression is malformed or names an unknown asset; the message names the asset."""


# -- expressions -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Name:
    asset: str


@dataclass(frozen=True)
class And:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Expr, ...]


Expr = Name | And | Or

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[&|()]))")


def parse_trigger(text: str, *, asset: str, known: Iterable[str] = ()) -> Expr:
    """Parse ``a & (b | c)``: names, ``&`` binding tighter than ``|``, parentheses. No eval, no other syntax."""
    tokens: list[tuple[str, int]] = []
    pos = 0
    text_s = text.rstrip()
    while pos < len(text_s):
        m = _TOKEN.match(text_s, pos)
        if not m:
            at = len(text_s) - len(text_s[pos:].lstrip())
            raise TriggerError(
                f"Asset {asset!r}: --trigger {text!r} has {text_s[at]!r} at position {at}; "
                "write asset names joined by '&' (and), '|' (or) and parentheses, e.g. 'a & (b | c)'."
            )
        tokens.append((m.group("name") or m.group("op"), m.start(m.lastindex or 0)))
        pos = m.end()
    if not tokens:
        raise TriggerError(f"Asset {asset!r}: --trigger is empty; write e.g. 'a & (b | c)'.")
    i = 0

    def fail(why: str) -> TriggerError:
        at = tokens[i][1] if i < len(tokens) else len(text_s)
        return TriggerError(f"Asset {asset!r}: --trigger {text!r}: {why} at position {at}; e.g. 'a & (b | c)'.")

    def atom() -> Expr:
        nonlocal i
        if i >= len(tokens):
            raise fail("an asset name or '(' is missing")
        tok = tokens[i][0]
        if tok == "(":
            i += 1
            inner = either()
            if i >= len(tokens) or tokens[i][0] != ")":
                raise fail("')' is missing")
            i += 1
            return inner
        if tok in "&|)":
            raise fail(f"{tok!r} needs an asset name before it")
        i += 1
        return Name(tok)

    def both() -> Expr:
        nonlocal i
        parts = [atom()]
        while i < len(tokens) and tokens[i][0] == "&":
            i += 1
            parts.append(atom())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def either() -> Expr:
        nonlocal i
        parts = [both()]
        while i < len(tokens) and tokens[i][0] == "|":
            i += 1
            parts.append(both())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    expr = either()
    if i < len(tokens):
        raise fail(f"unexpected {tokens[i][0]!r}")
    known = set(known)
    if known:
        unknown = sorted(n for n in names_in(expr) if n not in known)
        if unknown:
            from notebook_orch.errors import close_matches

            raise TriggerError(
                f"Asset {asset!r}: --trigger {text!r} names {', '.join(repr(n) for n in unknown)}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not among its dependencies; a trigger can only wait on "
                "assets listed in --deps." + close_matches(unknown[0], sorted(known))
            )
    return expr


def names_in(expr: Expr) -> set[str]:
    if isinstance(expr, Name):
        return {expr.asset}
    return set().union(*(names_in(p) for p in expr.parts))


def required_deps(expr: Expr, deps: Iterable[str]) -> set[str]:
    """The dependencies without which ``expr`` can never be true (``a`` in ``a & (b | c)``). The others — ``b``
    and ``c`` there, and any dependency the expression does not name — may be absent when a run starts: the
    runtime hands them to the cell as None (``core.reads``)."""
    return {d for d in deps if not evaluate(expr, lambda n, d=d: n != d)}


def evaluate(expr: Expr, ready: Callable[[str], bool]) -> bool:
    if isinstance(expr, Name):
        return ready(expr.asset)
    if isinstance(expr, And):
        return all(evaluate(p, ready) for p in expr.parts)
    return any(evaluate(p, ready) for p in expr.parts)


def trigger_conditions(specs: Mapping[str, AssetSpec]) -> dict[str, Expr]:
    """The parsed ``--trigger`` of every asset declaring one (the parser checked them when it read the line)."""
    return {name: parse_trigger(spec.trigger, asset=name, known=spec.dep_names)
            for name, spec in specs.items() if spec.trigger}


# -- joins -------------------------------------------------------------------------------------------------
Key = tuple[str, str]  # (asset, partition)


class _Keys:
    """Each asset's partition keys at ``now`` and their positions, computed once per pass (not once per join)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._keys: dict[str, tuple[str, ...]] = {}
        self._index: dict[str, dict[str, int]] = {}
        self._ranges: dict[tuple[str, int], tuple[list[int], list[int]]] = {}

    def keys(self, spec: AssetSpec) -> tuple[str, ...]:
        got = self._keys.get(spec.name)
        if got is None:
            got = self._keys[spec.name] = spec.partitions.keys(now=self.now)
        return got

    def ranges(self, spec: AssetSpec, j: int, up: AssetSpec) -> tuple[list[int], list[int]]:
        """``(lo, hi)`` of ``spec``'s j-th dependency as Python lists (indexing numpy per join costs ~4x)."""
        got = self._ranges.get((spec.name, j))
        if got is None:
            lo, hi = upstream_ranges(spec.partitions, up.partitions, spec.deps[j].mapping, len(self.keys(spec)),
                                     len(self.keys(up)))
            got = self._ranges[(spec.name, j)] = (lo.tolist(), hi.tolist())
        return got

    def index(self, spec: AssetSpec) -> dict[str, int]:
        got = self._index.get(spec.name)
        if got is None:
            got = self._index[spec.name] = {k: i for i, k in enumerate(self.keys(spec))}
        return got


def _keys(spec: AssetSpec, now: datetime) -> tuple[str, ...]:
    return spec.partitions.keys(now=now)


def join_inputs(specs: Mapping[str, AssetSpec], asset: str, partition: str, *, now: datetime,
                cache: _Keys | None = None) -> dict[str, list[str]]:
    """Every upstream partition ``asset[partition]`` reads, per upstream asset, through each dependency's mapping."""
    cache = cache or _Keys(now)
    spec = specs[asset]
    i = cache.index(spec).get(partition)
    if i is None:
        return {}
    out: dict[str, list[str]] = {}
    for j, dep in enumerate(spec.deps):
        up = specs[dep.asset]
        lo, hi = cache.ranges(spec, j, up)
        out.setdefault(dep.asset, []).extend(cache.keys(up)[lo[i]:hi[i]])
    return out


def reached_joins(
    specs: Mapping[str, AssetSpec], changes: Iterable[Key], *, now: datetime, automated: Callable[[str], bool],
) -> list[Key]:
    """The (asset, partition) of automated assets that read any changed upstream partition, in a stable order.

    ``changes`` must hold only partitions whose data version changed: an unchanged one reaches nothing.
    """
    import numpy as np

    by_asset: dict[str, set[str]] = {}
    for a, p in changes:
        if a in specs:
            by_asset.setdefault(a, set()).add(p)
    downstream: dict[str, list[AssetSpec]] = {}
    for spec in specs.values():
        if automated(spec.name):
            for dep in spec.deps:
                downstream.setdefault(dep.asset, []).append(spec)
    out: dict[Key, None] = {}
    for up_name, parts in sorted(by_asset.items()):
        up = specs[up_name]
        up_keys = _keys(up, now)
        index = {k: q for q, k in enumerate(up_keys)}
        changed = np.array(sorted(index[p] for p in parts if p in index), dtype=np.int64)
        for down in downstream.get(up_name, []):
            down_keys = _keys(down, now)
            for dep in down.deps:
                if dep.asset != up_name:
                    continue
                lo, hi = upstream_ranges(down.partitions, up.partitions, dep.mapping, len(down_keys), len(up_keys))
                for i in readers_of(lo, hi, changed):
                    out[(down.name, down_keys[int(i)])] = None
    return list(out)


@dataclass(frozen=True)
class JoinDecision:
    asset: str
    partition: str
    start: bool
    waiting_on: tuple[Key, ...] = ()  # upstream partitions not FRESH (empty when started or skipped)
    reason: str = ""


@dataclass(frozen=True)
class TriggerPlan:
    """What one pass decided: runs to start, joins still waiting, joins dropped, and joins left for the next pass."""

    start: tuple[Key, ...] = ()
    waiting: tuple[JoinDecision, ...] = ()
    dropped: tuple[JoinDecision, ...] = ()
    deferred: tuple[Key, ...] = field(default=())


def evaluate_joins(
    specs: Mapping[str, AssetSpec],
    joins: Iterable[Key],
    *,
    status_of: Callable[[str, str], Status],
    running: Callable[[str, str], bool],
    now: datetime,
    conditions: Mapping[str, Expr] | None = None,
    limit: int = 10_000,
) -> TriggerPlan:
    """Decide each pending join: start it, keep it waiting, or drop it.

    A join starts when its condition holds (default: every mapped upstream partition FRESH) and the partition
    itself needs a run (STALE, MISSING or FAILED). While a run of the same (asset, partition) is going the join
    waits: at most one running and one pending per partition. Joins past ``limit`` are deferred unchanged.
    """
    conditions = conditions or {}
    cache = _Keys(now)
    start: list[Key] = []
    waiting: list[JoinDecision] = []
    dropped: list[JoinDecision] = []
    deferred: list[Key] = []
    for n, (asset, partition) in enumerate(joins):
        if n >= limit:
            deferred.append((asset, partition))
            continue
        if asset not in specs:
            dropped.append(JoinDecision(asset, partition, False, reason="asset no longer defined"))
            continue
        inputs = join_inputs(specs, asset, partition, now=now, cache=cache)
        not_fresh = tuple((a, k) for a, ks in inputs.items() for k in ks if status_of(a, k) != Status.FRESH)
        expr = conditions.get(asset)
        if expr is None:
            ready = not not_fresh
        else:
            bad = {a for a, _ in not_fresh}
            ready = evaluate(expr, lambda name, inputs=inputs, bad=bad: bool(inputs.get(name)) and name not in bad)
        if not ready:
            waiting.append(JoinDecision(asset, partition, False, not_fresh, "inputs not fresh"))
            continue
        if running(asset, partition):
            waiting.append(JoinDecision(asset, partition, False, (), "a run of this partition is going"))
            continue
        own = status_of(asset, partition)
        if own not in STARTABLE:
            dropped.append(JoinDecision(asset, partition, False, reason=f"already {own.value}"))
            continue
        start.append((asset, partition))
    return TriggerPlan(tuple(start), tuple(waiting), tuple(dropped), tuple(deferred))
