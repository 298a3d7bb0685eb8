"""The asset graph (pure): validation, order, closures and selections. No business logic lives here.

``build_graph`` collects every problem — duplicate names, unknown dependencies, cycles, mappings that do not fit
— and raises ``ProjectInvalid`` once with all of them.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from notebook_orch.core.mappings import mapping_problem
from notebook_orch.core.specs import AssetSpec, DepSpec
from notebook_orch.errors import DeclarationError, Problem, ProjectInvalid, close_matches


@dataclass(frozen=True)
class Edge:
    """``downstream`` reads ``upstream`` through ``dep`` (which carries the mapping)."""

    upstream: str
    downstream: str
    dep: DepSpec


def validate_specs(specs: Sequence[AssetSpec]) -> list[Problem]:
    """Every problem with a set of specs, in a stable order."""
    problems: list[Problem] = []
    by_name: dict[str, AssetSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            first = by_name[spec.name]
            problems.append(
                Problem(
                    f"Asset {spec.name!r} is defined twice: in {first.location} and in {spec.location}. "
                    "Asset names are unique across the project; rename one of them.",
                    spec.notebook,
                    spec.cell_index,
                    spec.name,
                )
            )
            continue
        by_name[spec.name] = spec
    for spec in by_name.values():
        for dep in spec.deps:
            upstream = by_name.get(dep.asset)
            if upstream is None:
                problems.append(
                    Problem(
                        f"Asset {spec.name!r} depends on {dep.asset!r}, which is not defined in any notebook."
                        + close_matches(dep.asset, list(by_name)),
                        spec.notebook,
                        spec.cell_index,
                        spec.name,
                    )
                )
                continue
            if (
                upstream.notebook is not None
                and upstream.notebook == spec.notebook
                and (upstream.cell_index or 0) > (spec.cell_index or 0)
            ):
                problems.append(
                    Problem(
                        f"Asset {spec.name!r} reads {dep.asset!r}, which is defined further down the same notebook "
                        f"(cell {upstream.cell_index}); a notebook runs top to bottom, so move {dep.asset!r}'s cell "
                        "above this one.",
                        spec.notebook,
                        spec.cell_index,
                        spec.name,
                    )
                )
            why = mapping_problem(spec.partitions, upstream.partitions, dep.mapping)
            if why:
                problems.append(
                    Problem(
                        f"Dependency {dep.describe()!r} of asset {spec.name!r} does not fit: {why}.",
                        spec.notebook,
                        spec.cell_index,
                        spec.name,
                    )
                )
    cycle = _find_cycle(by_name)
    if cycle:
        first = by_name[cycle[0]]
        problems.append(
            Problem(
                "Dependency cycle: " + " -> ".join(cycle) + " (each feeds the next). Assets cannot depend on "
                "themselves, even indirectly; remove one of these dependencies.",
                first.notebook,
                first.cell_index,
                cycle[0],
            )
        )
    return problems


def _find_cycle(by_name: dict[str, AssetSpec]) -> list[str] | None:
    sorter = graphlib.TopologicalSorter(
        {name: [d.asset for d in spec.deps if d.asset in by_name] for name, spec in sorted(by_name.items())}
    )
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists [a, b, ..., a] with each node an immediate predecessor (an upstream) of the next.
        return list(exc.args[1])
    return None


def build_graph(specs: Sequence[AssetSpec]) -> AssetGraph:
    problems = validate_specs(specs)
    if problems:
        raise ProjectInvalid(problems)
    return AssetGraph(specs)


class AssetGraph:
    """A validated set of specs. Immutable; traversal is pure."""

    def __init__(self, specs: Iterable[AssetSpec]) -> None:
        self._specs: dict[str, AssetSpec] = {s.name: s for s in specs}
        self._down: dict[str, list[Edge]] = {name: [] for name in self._specs}
        for spec in self._specs.values():
            for dep in spec.deps:
                self._down[dep.asset].append(Edge(dep.asset, spec.name, dep))

    # -- lookups -------------------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self.order

    @property
    def specs(self) -> tuple[AssetSpec, ...]:
        return tuple(self._specs[n] for n in self.order)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, name: str) -> AssetSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise DeclarationError(
                f"No asset named {name!r} in the project." + close_matches(name, list(self._specs))
            ) from None

    @cached_property
    def order(self) -> tuple[str, ...]:
        """Topological order, upstream first; ties broken by name so the order is stable."""
        sorter = graphlib.TopologicalSorter(
            {name: [d.asset for d in spec.deps] for name, spec in sorted(self._specs.items())}
        )
        sorter.prepare()
        out: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            out.extend(ready)
            sorter.done(*ready)
        return tuple(out)

    @cached_property
    def position(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.order)}

    def upstream_edges(self, name: str) -> list[Edge]:
        return [Edge(d.asset, name, d) for d in self.spec(name).deps]

    def downstream_edges(self, name: str) -> list[Edge]:
        self.spec(name)
        return list(self._down[name])

    def upstream(self, name: str) -> tuple[str, ...]:
        return self.spec(name).dep_names

    def downstream(self, name: str) -> tuple[str, ...]:
        return tuple(e.downstream for e in self.downstream_edges(name))

    def ancestors(self, names: Iterable[str]) -> set[str]:
        return self._closure(names, lambda n: self.upstream(n))

    def descendants(self, names: Iterable[str]) -> set[str]:
        return self._closure(names, lambda n: self.downstream(n))

    def _closure(self, names: Iterable[str], step) -> set[str]:  # noqa: ANN001 - private
        seen: set[str] = set()
        todo = list(names)
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def sorted(self, names: Iterable[str]) -> list[str]:
        pos = self.position
        return sorted(set(names), key=pos.__getitem__)

    # -- selection ---------------------------------------------------------------------------------------
    def select(self, expression: str) -> list[str]:
        """``name``, ``+name`` (with all upstream), ``name+`` (with all downstream), ``+name+``, ``*`` (all).

        Terms are separated by commas or spaces; the result is in topological order.
        """
        chosen: set[str] = set()
        terms = [t for t in expression.replace(",", " ").split() if t]
        if not terms:
            raise DeclarationError("Empty selection; name an asset, '+asset', 'asset+' or '*'.")
        for term in terms:
            if term == "*":
                chosen.update(self._specs)
                continue
            name = term.strip("+")
            self.spec(name)  # raises with close matches
            chosen.add(name)
            if term.startswith("+"):
                chosen |= self.ancestors([name])
            if term.endswith("+"):
                chosen |= self.descendants([name])
        return self.sorted(chosen)

    def partition_keys(self, name: str, *, now: datetime) -> tuple[str, ...]:
        return self.spec(name).partitions.keys(now=now)
