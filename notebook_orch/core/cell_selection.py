"""Which cells of a notebook a run executes: what the code version hashes, and nothing else.

A run of assets ``A`` in a notebook executes these code cells:

* the asset cells of ``A``;
* the helper cells their code versions count — discovery's answer (``DiscoveryReport.helpers``, from
  ``codeversion.select_helpers``), passed in and never re-derived here, so that what can change a result is hashed
  and what is hashed is run;
* the cell that loads the extension (``%load_ext notebook_orch``): without it ``%%asset`` is an unknown magic;
* papermill's ``parameters`` and ``injected-parameters`` cells: the partition and the run's context;
* cells the user tags ``nbo-setup``: side-effect-only set-up every run needs although no asset reads a name from it
  (logging, warning filters, a plotting backend, ``sys.path``).

Every other code cell is skipped: display cells (``delay_rank`` alone on a line, which fails with ``NameError``
in a run that does not build ``delay_rank``), plots, ``%nbo`` magics (``%nbo status`` is slow, ``%nbo materialize``
would start runs from inside a run) and the cells of assets not selected. Markdown and raw cells never execute.
Pure: cells in, a plan out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["EXTENSION", "PARAMETER_TAGS", "SETUP_TAG", "CellPlan", "NotebookCell", "plan_cells"]

SETUP_TAG = "nbo-setup"
PARAMETER_TAGS = frozenset({"parameters", "injected-parameters"})
EXTENSION = "notebook_orch"
_LOADS_EXTENSION = re.compile(rf"^[ \t]*%(?:re)?load_ext[ \t]+{EXTENSION}[ \t]*(?:#.*)?$", re.MULTILINE)


@dataclass(frozen=True)
class NotebookCell:
    """One cell as the plan sees it: its type, its source and its tags."""

    cell_type: str
    source: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CellPlan:
    """``execute``: indexes of the code cells to run; ``skip``: the other code cells, in order; ``why``: for each
    executed cell, the reason it runs (``asset x``, ``helper of x, y``, ``extension``, ``parameters``, ``set-up``);
    ``missing``: selected assets with no asset cell in the notebook (the run will say so)."""

    execute: frozenset[int]
    skip: tuple[int, ...]
    why: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    missing: tuple[str, ...] = ()

    def runs(self, index: int) -> bool:
        return index in self.execute


def plan_cells(
    cells: Sequence[NotebookCell],
    *,
    assets: Collection[str],
    asset_cells: Mapping[str, int],
    helpers: Mapping[str, Sequence[int]],
) -> CellPlan:
    """The cells a run of ``assets`` executes in the notebook ``cells``.

    ``asset_cells`` maps each asset declared in the notebook to its cell index and ``helpers`` each asset to the
    indexes of its helper cells, both as discovery found them in these same ``cells``.
    """
    why: dict[int, list[str]] = {}

    def add(index: int, reason: str) -> None:
        if 0 <= index < len(cells) and cells[index].cell_type == "code":
            why.setdefault(index, []).append(reason)

    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        if PARAMETER_TAGS.intersection(cell.tags):
            add(index, "parameters")
        if SETUP_TAG in cell.tags:
            add(index, "set-up")
        if _LOADS_EXTENSION.search(cell.source):
            add(index, "extension")
    missing = []
    helped: dict[int, list[str]] = {}
    for name in sorted(assets):
        if name not in asset_cells:
            missing.append(name)
            continue
        add(asset_cells[name], f"asset {name}")
        for index in helpers.get(name, ()):
            helped.setdefault(index, []).append(name)
    for index, names in helped.items():
        add(index, "helper of " + ", ".join(names))
    skip = tuple(i for i, c in enumerate(cells) if c.cell_type == "code" and i not in why)
    return CellPlan(
        execute=frozenset(why),
        skip=skip,
        why=MappingProxyType({i: "; ".join(reasons) for i, reasons in sorted(why.items())}),
        missing=tuple(missing),
    )
