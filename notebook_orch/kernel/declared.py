"""Which declaration an interactive ``%%asset`` cell runs from: the saved one, or the kernel's own.

The saved notebooks are the truth for background runs. But a person writes a cell and runs it before saving, so an
interactive cell runs from what the kernel was given when the asset is new (in no saved notebook yet), when its
cell was edited and not saved, or when the saved declaration is broken and the edit in the kernel fixes it. The
one-line summary says so (``note``). What cannot run is refused before anything is recorded: a dependency that no
asset declares ("unknown", with close matches — saving the notebook would not help), one that is invalid, one whose
mapping does not fit, a cycle, and an unchanged broken declaration (with its own problem). Each is a
``DeclarationError`` (shown as ``DeclarationError: ...``): nothing ran, so it is not a failed run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from notebook_orch.core.codeversion import normalize_source
from notebook_orch.core.graph import AssetGraph, InvalidAsset, unknown_dependency
from notebook_orch.core.mappings import mapping_problem
from notebook_orch.core.specs import AssetSpec
from notebook_orch.errors import DeclarationError

# (notebook, cell index or None for "below every saved cell", body) -> the code version discovery would give the
# body once saved there; notebook None: the kernel does not know its notebook (the body alone)
VersionWithHelpers = Callable[[str | None, int | None, str], str]


@dataclass(frozen=True)
class InteractiveSpec:
    """The spec an interactive cell runs, and a note for its summary line when that is not the saved one."""

    spec: AssetSpec
    note: str | None = None


def resolve_interactive_spec(graph: AssetGraph, declared: AssetSpec, body: str, *,
                             version_with_helpers: VersionWithHelpers,
                             kernel_notebook: str | None = None) -> InteractiveSpec:
    """The spec to run for the kernel's ``declared`` cell with ``body`` (raises ``DeclarationError`` naming the
    problem).

    ``kernel_notebook``: the saved notebook this kernel belongs to (JupyterLab tells the kernel), so that a new asset
    is versioned with that notebook's helper cells, as discovery will once the cell is saved there.
    """
    name = declared.name
    if name in graph:
        saved = graph.spec(name)
        if _unchanged(saved, declared, body):
            return InteractiveSpec(saved)
        if (declared.deps, declared.partitions) != (saved.deps, saved.partitions):
            check_kernel_deps(graph, declared)
        if declared.code_version_override:
            version = declared.code_version_override
        elif normalize_source(saved.source) == normalize_source(body):
            version = saved.code_version
        else:  # versioned as discovery will version it once saved, so saving does not make it look changed
            version = version_with_helpers(saved.notebook, saved.cell_index, body)
        spec = replace(declared, notebook=saved.notebook, cell_index=saved.cell_index, source=body,
                       code_version=version)
        return InteractiveSpec(spec, f"unsaved: differs from {saved.notebook}")
    bad = graph.invalid.get(name)
    if bad is not None:
        return _instead_of_invalid(graph, bad, declared, body, version_with_helpers)
    check_kernel_deps(graph, declared)
    version = declared.code_version_override or version_with_helpers(kernel_notebook, None, body)
    return InteractiveSpec(replace(declared, notebook=None, cell_index=None, source=body, code_version=version),
                           "new: not in any saved notebook yet")


def _instead_of_invalid(graph: AssetGraph, bad: InvalidAsset, declared: AssetSpec, body: str,
                        version_with_helpers: VersionWithHelpers) -> InteractiveSpec:
    """The saved declaration of this name is broken: run the kernel's only when it is an edit that fixes it."""
    if bad.declared_twice or (bad.spec is not None and _unchanged(bad.spec, declared, body)):
        raise DeclarationError(  # the saved cell is named in the problem (located)
            f"Asset {declared.name!r} is invalid, so it cannot run until its declaration is fixed: "
            f"{bad.describe(located=True)}",
            asset=declared.name,
        )
    check_kernel_deps(graph, declared)
    version = declared.code_version_override or version_with_helpers(bad.notebook, bad.cell_index, body)
    spec = replace(declared, notebook=bad.notebook, cell_index=bad.cell_index, source=body, code_version=version)
    return InteractiveSpec(spec, f"unsaved: differs from {bad.notebook}, where it is invalid"
                           if bad.notebook else "new: not in any saved notebook yet")


def check_kernel_deps(graph: AssetGraph, declared: AssetSpec) -> None:
    """The checks discovery and the graph make of a saved declaration, made of the kernel's: every dependency is
    a valid asset, the mapping fits, and no cycle. Raises ``DeclarationError`` naming the first problem, as one in
    the cell being run (the saved file may well be fine)."""
    name = declared.name
    for dep in declared.deps:
        if dep.asset in graph.invalid:
            problem = (f"Asset {name!r} depends on {dep.asset!r}, which is invalid: "
                       f"{graph.invalid[dep.asset].describe(located=True)}")
        elif dep.asset not in graph:
            problem = unknown_dependency(name, dep.asset, [*graph.names, *graph.invalid])
        elif name in graph and name in graph.ancestors([dep.asset]):
            problem = (f"Asset {name!r} now reads {dep.asset!r}, which reads {name!r}: that is a cycle; "
                       "fix --deps.")
        else:
            why = mapping_problem(declared.partitions, graph.spec(dep.asset).partitions, dep.mapping)
            problem = f"Asset {name!r} cannot read {dep.describe()}: {why}." if why else None
        if problem:
            raise DeclarationError(f"This cell's %%asset declaration cannot run: {problem}", asset=name)


def _unchanged(saved: AssetSpec, declared: AssetSpec, body: str) -> bool:
    return normalize_source(saved.source) == normalize_source(body) and _declaration(saved) == _declaration(declared)


def _declaration(spec: AssetSpec) -> tuple:
    """What of a declaration decides how the cell runs (inputs, partitions, checks, storage)."""
    return (spec.deps, spec.partitions, spec.checks, spec.io, spec.code_version_override)


__all__ = ["InteractiveSpec", "check_kernel_deps", "resolve_interactive_spec"]
