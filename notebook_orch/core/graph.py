"""The asset graph (pure): validation, order, closures and selections. No business logic lives here.

``validate_specs`` collects every problem — duplicate names, unknown dependencies, cycles, mappings that do not fit —
and ``build_graph`` raises ``ProjectInvalid`` once with all of them (what ``nbo validate`` reports).

``build_valid_graph`` is what everything else uses, because a broken asset breaks only itself and what is downstream
of it: it returns the graph of the valid assets and keeps the excluded ones in ``graph.invalid`` with their problems
(a downstream one with "depends on invalid X"), so that faces show them as ``INVALID`` instead of hiding them.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from types import MappingProxyType

from notebook_orch.core.mappings import mapping_problem
from notebook_orch.core.specs import AssetSpec, DepSpec
from notebook_orch.errors import DeclarationError, Problem, ProjectInvalid, cell_number, close_matches

__all__ = [
    "AssetGraph",
    "Edge",
    "InvalidAsset",
    "build_graph",
    "build_valid_graph",
    "selected_names",
    "selection_terms",
    "unknown_dependency",
    "validate_specs",
]


@dataclass(frozen=True)
class Edge:
    """``downstream`` reads ``upstream`` through ``dep`` (which carries the mapping)."""

    upstream: str
    downstream: str
    dep: DepSpec


@dataclass(frozen=True)
class InvalidAsset:
    """An asset left out of the graph, and why.

    ``specs``: its declarations that parsed (two for a duplicate name; none when its ``%%asset`` line does not
    parse). ``invalid_deps``: the invalid upstream assets that exclude it (empty when its own declaration is
    broken). ``roots``: the assets whose own declarations are broken and cause this (itself when it is one).
    ``declared_twice``: its name is declared by more than one cell, which no edit of one cell's line can fix.
    """

    name: str
    problems: tuple[Problem, ...]
    specs: tuple[AssetSpec, ...] = ()
    invalid_deps: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()
    declared_twice: bool = False

    @property
    def spec(self) -> AssetSpec | None:
        """The first declaration that parsed (None when none did)."""
        return self.specs[0] if self.specs else None

    @property
    def deps(self) -> tuple[str, ...]:
        return self.specs[0].dep_names if self.specs else ()

    @property
    def notebook(self) -> str | None:
        return self.specs[0].notebook if self.specs else self.problems[0].notebook

    @property
    def cell_index(self) -> int | None:
        return self.specs[0].cell_index if self.specs else self.problems[0].cell

    def describe(self, *, located: bool = False) -> str:
        """One line for a person: the first problem (with its notebook and cell), and how many more there are."""
        first = self.problems[0]
        more = len(self.problems) - 1
        return (str(first) if located else first.message) + (
            f" (and {more} more; nbo validate lists every problem)" if more else "")


@dataclass(frozen=True)
class _Found:
    """A problem and every asset it excludes (all members of a cycle, for one cycle problem)."""

    problem: Problem
    assets: tuple[str, ...]
    duplicate: bool = False


def unknown_dependency(asset: str, dep: str, known: Iterable[str]) -> str:
    """The one wording of "depends on a name no asset declares" (discovery, the graph and the kernel share it)."""
    return (f"Asset {asset!r} depends on {dep!r}, which no asset declares; fix --deps, or declare {dep!r} in a "
            "notebook." + close_matches(dep, list(known)))


def _direct_problems(specs: Sequence[AssetSpec], unparsed: Iterable[str] = ()) -> list[_Found]:
    """Every problem of the declarations themselves, in a stable order, each with the assets it excludes.

    ``unparsed``: names declared by ``%%asset`` lines that do not parse; those lines are problems of their own, so
    reading such a name is not "unknown" (the reader is downstream of an invalid asset instead).
    """
    unparsed = set(unparsed)
    found: list[_Found] = []
    by_name: dict[str, AssetSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            first = by_name[spec.name]
            found.append(_Found(Problem(
                f"Asset {spec.name!r} is defined twice: in {first.location} and in {spec.location}. "
                "Asset names are unique across the project; rename one of them.",
                spec.notebook, spec.cell_index, spec.name,
            ), (spec.name,), duplicate=True))
            continue
        by_name[spec.name] = spec
    for spec in by_name.values():
        here = (spec.notebook, spec.cell_index, spec.name)
        for dep in spec.deps:
            upstream = by_name.get(dep.asset)
            if upstream is None:
                if dep.asset in unparsed:
                    continue
                found.append(_Found(Problem(unknown_dependency(spec.name, dep.asset, by_name), *here), (spec.name,)))
                continue
            if (
                upstream.notebook is not None
                and upstream.notebook == spec.notebook
                and (upstream.cell_index or 0) > (spec.cell_index or 0)
            ):
                found.append(_Found(Problem(
                    f"Asset {spec.name!r} reads {dep.asset!r}, which is defined further down the same notebook "
                    f"(cell {cell_number(upstream.cell_index)}); a notebook runs top to bottom, so move "
                    f"{dep.asset!r}'s cell above this one.",
                    *here,
                ), (spec.name,)))
            why = mapping_problem(spec.partitions, upstream.partitions, dep.mapping)
            if why:
                found.append(_Found(Problem(
                    f"Dependency {dep.describe()!r} of asset {spec.name!r} does not fit: {why}.", *here
                ), (spec.name,)))
    for cycle, members in _cycles(by_name):
        first = by_name[cycle[0]]
        found.append(_Found(Problem(
            "Dependency cycle: " + " -> ".join(cycle) + " (each feeds the next). Assets cannot depend on "
            "themselves, even indirectly; remove one of these dependencies.",
            first.notebook, first.cell_index, cycle[0],
        ), members))
    return found


def validate_specs(specs: Sequence[AssetSpec], *, unparsed: Iterable[str] = ()) -> list[Problem]:
    """Every problem with a set of specs, in a stable order (one per cycle, naming its path). ``unparsed``: names
    whose ``%%asset`` line did not parse (reported on their own), so that reading them is not reported again."""
    return [f.problem for f in _direct_problems(specs, unparsed)]


def _cycles(by_name: Mapping[str, AssetSpec]) -> list[tuple[list[str], tuple[str, ...]]]:
    """Each group of assets that feed each other (a strongly connected component with more than one member, as
    ``--deps`` cannot name the asset itself): one cycle through it as a path, and every member."""
    try:  # the common case, no cycle at all, at graphlib's speed
        graphlib.TopologicalSorter(
            {name: [d.asset for d in spec.deps if d.asset in by_name] for name, spec in by_name.items()}
        ).prepare()
        return []
    except graphlib.CycleError:
        pass
    down: dict[str, list[str]] = {name: [] for name in by_name}
    for name, spec in sorted(by_name.items()):
        for d in spec.deps:
            if d.asset in down:
                down[d.asset].append(name)
    out = []
    for component in _strongly_connected(down):
        if len(component) < 2:
            continue
        members = set(component)
        # graphlib lists [a, b, ..., a] with each node an immediate predecessor (an upstream) of the next.
        sub = {n: [d.asset for d in by_name[n].deps if d.asset in members] for n in sorted(members)}
        try:
            graphlib.TopologicalSorter(sub).prepare()
        except graphlib.CycleError as exc:
            out.append((list(exc.args[1]), tuple(sorted(members))))
    return sorted(out, key=lambda c: c[1])


def _strongly_connected(edges: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a long chain of assets must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def build_graph(specs: Sequence[AssetSpec]) -> AssetGraph:
    """The graph of ``specs``; raises ``ProjectInvalid`` with every problem when any declaration is broken."""
    problems = validate_specs(specs)
    if problems:
        raise ProjectInvalid(problems)
    return AssetGraph(specs)


def build_valid_graph(specs: Sequence[AssetSpec], *, problems: Iterable[Problem] = ()) -> AssetGraph:
    """The graph of the valid assets; the others are in ``.invalid`` with their problems.

    ``problems`` are those found before the graph (by discovery: a ``%%asset`` line that does not parse, a cell
    that never assigns its name); one naming an asset (``Problem.asset``) makes it invalid, the others (an
    unreadable notebook) are kept in ``.other_problems``.
    """
    own: dict[str, list[Problem]] = {}
    twice: set[str] = set()
    other: list[Problem] = []
    declared: dict[str, list[AssetSpec]] = {}
    for spec in specs:
        declared.setdefault(spec.name, []).append(spec)
    problems = tuple(problems)
    for problem in problems:
        if problem.asset is None:
            other.append(problem)
            continue
        own.setdefault(problem.asset, []).append(problem)
        if problem.asset in declared and _unparsed(problem, declared[problem.asset]):
            # A line that does not parse plus one that does: the same name twice, whichever one gets fixed.
            twice.add(problem.asset)
    unparsed = {p.asset for p in problems if p.asset is not None and p.asset not in declared}
    for f in _direct_problems(specs, unparsed):
        for name in f.assets:
            spec = declared[name][0]
            own.setdefault(name, []).append(
                f.problem if f.problem.asset == name else replace(f.problem, notebook=spec.notebook,
                                                                  cell=spec.cell_index, asset=name))
        if f.duplicate:
            twice.update(f.assets)
    # Downstream of an invalid asset: invalid too, naming the invalid upstream assets and the broken roots.
    roots: dict[str, set[str]] = {name: {name} for name in own}
    readers: dict[str, list[str]] = {}
    for name, versions in declared.items():
        for dep in versions[0].deps:
            readers.setdefault(dep.asset, []).append(name)
    todo = sorted(own)
    while todo:  # each reached asset's roots grow until nothing changes (a diamond reaches one twice)
        current = todo.pop()
        for reader in readers.get(current, ()):
            if reader in own and own[reader]:
                continue  # broken on its own: its own problems say what to fix
            grown = roots.setdefault(reader, set()) | roots[current]
            if reader not in own or grown != roots[reader]:
                own[reader] = []  # filled below, once every root is known
                roots[reader] = grown
                todo.append(reader)
    invalid: dict[str, InvalidAsset] = {}
    for name in sorted(roots):
        versions = tuple(declared.get(name, ()))
        bad_deps = tuple(d.asset for d in versions[0].deps if d.asset in roots) if versions and not own[name] else ()
        found = own[name] or [_downstream_problem(versions[0], bad_deps, roots[name])]
        invalid[name] = InvalidAsset(name, tuple(found), versions, bad_deps, tuple(sorted(roots[name])),
                                     declared_twice=name in twice)
    valid = [s for s in specs if s.name not in invalid]
    return AssetGraph(valid, invalid=invalid, other_problems=other)


def _unparsed(problem: Problem, parsed: list[AssetSpec]) -> bool:
    """``problem`` is about a cell other than the ones that parsed (so the name is declared in two cells)."""
    return all((problem.notebook, problem.cell) != (s.notebook, s.cell_index) for s in parsed)


def _downstream_problem(spec: AssetSpec, bad_deps: tuple[str, ...], roots: set[str]) -> Problem:
    names = ", ".join(repr(d) for d in bad_deps)
    because = sorted(roots - set(bad_deps))
    via = f" (because of {', '.join(repr(r) for r in because)})" if because else ""
    return Problem(
        f"Asset {spec.name!r} depends on invalid {names}{via}; it is left out until that declaration is fixed "
        "(nbo validate lists the problem).",
        spec.notebook, spec.cell_index, spec.name,
    )



def selection_terms(expression: str) -> list[str]:
    """A selection's terms (``+a``, ``b+``, ``*``), separated by commas or spaces."""
    return [t for t in expression.replace(",", " ").split() if t]


def selected_names(expression: str) -> list[str]:
    """The asset names a selection's terms name (``'+a,b+ *'`` -> ``['a', 'b']``)."""
    return [t.strip("+") for t in selection_terms(expression) if t != "*"]

class AssetGraph:
    """A validated set of specs. Immutable; traversal is pure.

    ``invalid``: the assets left out (their own declaration is broken, or one upstream is), by name;
    ``other_problems``: problems that exclude no asset by name (e.g. a notebook that cannot be read).
    """

    def __init__(
        self,
        specs: Iterable[AssetSpec],
        *,
        invalid: Mapping[str, InvalidAsset] | None = None,
        other_problems: Iterable[Problem] = (),
    ) -> None:
        self._specs: dict[str, AssetSpec] = {s.name: s for s in specs}
        self.invalid: Mapping[str, InvalidAsset] = MappingProxyType(dict(invalid or {}))
        self.other_problems: tuple[Problem, ...] = tuple(other_problems)
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
            pass
        bad = self.invalid.get(name)
        if bad is not None:
            raise DeclarationError(f"Asset {name!r} is invalid, so it cannot be used until its declaration is "
                                   f"fixed: {bad.describe(located=True)}")
        raise DeclarationError(
            f"No asset named {name!r} in the project." + close_matches(name, [*self._specs, *self.invalid])
        ) from None

    def invalid_problems(self) -> dict[str, list[Problem]]:
        """Each asset left out, with its problems."""
        return {name: list(bad.problems) for name, bad in self.invalid.items()}

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
    def select(self, expression: str, *, include_invalid: bool = False) -> list[str]:
        """``name``, ``+name`` (with all upstream), ``name+`` (with all downstream), ``+name+``, ``*`` (all).

        Terms are separated by commas or spaces; the result is in topological order. An invalid asset is refused
        naming its problem — unless ``include_invalid`` (for faces that show it): then the invalid assets the
        expression reaches come after the valid ones, by name.
        """
        chosen: set[str] = set()
        terms = selection_terms(expression)
        if not terms:
            raise DeclarationError("Empty selection; name an asset, '+asset', 'asset+' or '*'.")
        for term in terms:
            if term == "*":
                chosen.update(self._specs)
                chosen.update(self.invalid if include_invalid else ())
                continue
            name = term.strip("+")
            if include_invalid and name in self.invalid:
                chosen.add(name)
                if term.startswith("+"):
                    chosen |= self._invalid_upstream(name)
                if term.endswith("+"):
                    chosen |= self._invalid_downstream({name})
                continue
            self.spec(name)  # raises naming the problem, or with close matches
            chosen.add(name)
            if term.startswith("+"):
                chosen |= self.ancestors([name])
            if term.endswith("+"):
                chosen |= self.descendants([name])
                if include_invalid:
                    chosen |= self._invalid_downstream(chosen & (self.descendants([name]) | {name}))
        valid = self.sorted(chosen & set(self._specs))
        return valid + sorted(chosen - set(self._specs))

    def _invalid_upstream(self, name: str) -> set[str]:
        """Everything an invalid asset reads, valid or not (as far as its declarations are known)."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            deps = self._specs[current].dep_names if current in self._specs else (
                self.invalid[current].deps if current in self.invalid else ())
            for dep in deps:
                if dep not in seen and (dep in self._specs or dep in self.invalid):
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def _invalid_downstream(self, names: set[str]) -> set[str]:
        """The invalid assets that read any of ``names``, directly or through other invalid ones."""
        seen: set[str] = set()
        frontier = set(names)
        while frontier:
            nxt = {n for n, bad in self.invalid.items() if n not in seen and frontier & set(bad.deps)}
            seen |= nxt
            frontier = nxt
        return seen

    def partition_keys(self, name: str, *, now: datetime) -> tuple[str, ...]:
        return self.spec(name).partitions.keys(now=now)
