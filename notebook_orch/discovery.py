"""Discovery: read every notebook of the project and turn its ``%%asset`` cells into ``AssetSpec``s.

An edge: it reads files, but starts no kernel and executes nothing. Every ``*.ipynb`` under the notebooks folder
is read (recursively, in sorted order, skipping hidden folders such as ``.ipynb_checkpoints``); a code cell whose
source starts with ``%%asset`` is an asset cell, its first line is parsed by the one declaration parser
(``notebook_orch.core.specs``) and its code version is computed from its body and the helper cells it relies on
(``notebook_orch.core.codeversion``). Editing a helper therefore makes its assets code-changed; editing a markdown
cell or a plotting cell changes nothing.

Locations: ``notebook`` is the path relative to ``root`` (or to the folder), with forward slashes; ``cell`` is the
0-based position of the cell in the notebook's ``cells`` list, markdown and raw cells included — the index
nbformat, nbclient and papermill use (Jupyter's UI shows no numbers for unexecuted cells).

Nothing is raised for a bad file or a bad declaration: each becomes a ``Problem`` naming the notebook (and the
cell), and everything else is still discovered, so that validation can report every problem at once.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from notebook_orch.core.codeversion import code_source, code_version, defined_names, is_analysable, select_helpers
from notebook_orch.core.specs import AssetSpec, parse_declaration, split_asset_cell
from notebook_orch.errors import DeclarationError, DiscoveryError, Problem

if TYPE_CHECKING:
    from notebook_orch.discovery_cache import DiscoveryCache, NotebookFindings

__all__ = ["DiscoveryReport", "assets_in_cells", "discover", "helper_query", "read_cells"]

CELL_TYPES = ("code", "markdown", "raw")
_FIX_FILE = "open it in Jupyter and save it again, or restore it from version control"


@dataclass(frozen=True)
class DiscoveryReport:
    """What discovery found.

    ``specs``: every well-formed asset declaration, in notebook then cell order, ``code_version`` filled in.
    ``problems``: unreadable notebooks and bad declarations. ``notebooks``: every notebook file found (also those
    that could not be read). ``helpers``: asset name -> indexes of the helper cells its code version covers.
    """

    specs: tuple[AssetSpec, ...] = ()
    problems: tuple[Problem, ...] = ()
    notebooks: tuple[str, ...] = ()
    helpers: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: MappingProxyType({}))


def discover(
    folder: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> DiscoveryReport:
    """Discover every asset declared in the notebooks under ``folder``.

    Notebook paths in the report are relative to ``root`` when given (the project root), else to ``folder``.
    ``cache``: a file remembering what each notebook held by its content (``discovery_cache``), so that unchanged
    notebooks are not parsed again; the report is the same with or without it.
    """
    folder = Path(folder)
    base = Path(root) if root is not None else folder
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        return DiscoveryReport(problems=(Problem(
            f"The notebooks folder {str(folder)!r} {what}; create it or point 'notebooks' in [tool.notebook_orch] "
            "(or NBO_NOTEBOOKS) at the folder that holds your .ipynb files."
        ),))
    specs: list[AssetSpec] = []
    problems: list[Problem] = []
    helpers: dict[str, tuple[int, ...]] = {}
    notebooks = _notebook_files(folder, base)
    remembered = None
    if cache is not None:
        from notebook_orch.discovery_cache import DiscoveryCache

        remembered = DiscoveryCache(cache)
    for rel, path in notebooks:
        try:
            found = _discover_one(path, rel, remembered)
        except DiscoveryError as exc:
            problems.append(exc.problem)
            continue
        specs.extend(found.specs)
        problems.extend(found.problems)
        for name, indexes in found.helpers.items():
            helpers.setdefault(name, indexes)  # a duplicate name is the graph's to report
    if remembered is not None:
        remembered.save()
    return DiscoveryReport(
        specs=tuple(specs),
        problems=tuple(problems),
        notebooks=tuple(rel for rel, _ in notebooks),
        helpers=MappingProxyType(helpers),
    )


def _discover_one(path: Path, rel: str, cache: DiscoveryCache | None) -> DiscoveryReport | NotebookFindings:
    raw = _read_bytes(path, rel)
    if cache is None:
        return assets_in_cells(_cells_of(raw, rel), notebook=rel)
    from notebook_orch.discovery_cache import NotebookFindings, content_key

    key = content_key(raw)
    found = cache.get(rel, key)
    if found is None:
        report = assets_in_cells(_cells_of(raw, rel), notebook=rel)
        found = NotebookFindings(report.specs, report.problems, report.helpers)
        cache.put(rel, key, found)
    return found


def assets_in_cells(cells: Sequence[tuple[str, str]], *, notebook: str) -> DiscoveryReport:
    """The assets of one notebook given as ``(cell_type, source)`` pairs in order (no file involved)."""
    asset_cells: list[tuple[int, str, str]] = []
    other_code: list[tuple[int, str]] = []
    for index, (cell_type, source) in enumerate(cells):
        if cell_type != "code":
            continue
        split = split_asset_cell(source)
        if split is None:
            other_code.append((index, source))
        else:
            asset_cells.append((index, *split))
    sources = dict(other_code)
    specs: list[AssetSpec] = []
    problems: list[Problem] = []
    helpers: dict[str, tuple[int, ...]] = {}
    for index, line, body in asset_cells:
        try:
            spec = parse_declaration(line, notebook=notebook, cell=index, source=body)
        except DeclarationError as exc:
            problems.append(replace(exc.problem, asset=_declared_name(line)))
            continue
        chosen = select_helpers(helper_query(body, spec.checks), other_code, before=index)
        helper_sources = [sources[i] for i in chosen]
        version = spec.code_version_override or code_version(body, helper_sources)
        specs.append(replace(spec, code_version=version, code_source=code_source(body, helper_sources)))
        helpers.setdefault(spec.name, tuple(chosen))
        if spec.source_path is None and is_analysable(body) and spec.name not in defined_names(body):
            problems.append(Problem(
                f"The cell of asset {spec.name!r} never assigns {spec.name!r}; the value to store is the variable "
                f"named like the asset, so end the cell with '{spec.name} = ...'.",
                notebook, index, spec.name,
            ))
    return DiscoveryReport(
        specs=tuple(specs), problems=tuple(problems), notebooks=(notebook,), helpers=MappingProxyType(helpers)
    )


def helper_query(body: str, checks: Sequence[str]) -> str:
    """What an asset reads from the cells above it: its body, then its ``--check`` expressions (evaluated after the
    body, in the same namespace), so that a check reading a constant of a helper cell counts (and runs) that cell.
    Names the body assigns — the asset's own above all — stay local to it, as at run time."""
    if not checks:
        return body
    return body + "\n" + "\n".join(f"({expr})" for expr in checks) + "\n"


def read_cells(path: str | os.PathLike[str], *, notebook: str | None = None) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of every cell of the notebook file at ``path``, in order.

    Raises ``DiscoveryError`` naming ``notebook`` (default: the path) when the file cannot be read, is not JSON or
    is not a Jupyter notebook. Well-formed nbformat 4 files take a fast path (plain ``json`` and a check of the
    fields used here); anything else goes through nbformat, which converts older versions and explains what is
    wrong.
    """
    path = Path(path)
    where = notebook if notebook is not None else str(path)
    return _cells_of(_read_bytes(path, where), where)


def _read_bytes(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DiscoveryError(
            f"The notebook cannot be read ({exc.strerror or exc}); check that the file exists and is readable.",
            notebook=where,
        ) from None


def _cells_of(raw: bytes, where: str) -> list[tuple[str, str]]:
    if not raw.strip():
        raise DiscoveryError(f"The notebook file is empty; {_FIX_FILE}.", notebook=where)
    try:
        # UTF-8 only, as Jupyter reads notebooks (json.loads would also take UTF-16 or -32 bytes that Jupyter and
        # papermill then cannot open).
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DiscoveryError(
            f"The notebook is not UTF-8 text ({exc.reason} at byte {exc.start}); {_FIX_FILE}.", notebook=where
        ) from None
    except json.JSONDecodeError as exc:
        raise DiscoveryError(
            f"The notebook is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); it may be truncated "
            f"or hold merge-conflict markers: {_FIX_FILE}.",
            notebook=where,
        ) from None
    except RecursionError:
        raise _too_deep(where) from None
    cells = _fast_cells(data)
    if cells is not None:
        return cells
    try:
        return _nbformat_cells(data, where)
    except RecursionError:  # nbformat walks (and re-encodes) the whole document recursively
        raise _too_deep(where) from None


def _too_deep(where: str) -> DiscoveryError:
    return DiscoveryError(
        "The notebook's JSON is nested too deeply to read (thousands of levels of lists or objects; no notebook "
        f"written by Jupyter looks like that); {_FIX_FILE}.",
        notebook=where,
    )


# -- helpers ------------------------------------------------------------------------------------------------
def _notebook_files(folder: Path, base: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        # hidden folders hold checkpoints, virtualenvs, our own run outputs: never user notebooks
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(".ipynb") and not name.startswith("."):
                path = Path(dirpath, name)
                found.append((_relative(path, base), path))
    found.sort()
    return found


def _relative(path: Path, base: Path) -> str:
    try:
        rel: PurePath = path.relative_to(base)
    except ValueError:
        rel = Path(os.path.relpath(path, base))
    return rel.as_posix()


def _fast_cells(data: Any) -> list[tuple[str, str]] | None:
    """The cells of a well-formed nbformat 4 notebook, or None when nbformat must take a closer look."""
    if not isinstance(data, dict) or data.get("nbformat") != 4:
        return None
    cells = data.get("cells")
    if not isinstance(cells, list):
        return None
    out: list[tuple[str, str]] = []
    for cell in cells:
        if not isinstance(cell, dict):
            return None
        cell_type, source = cell.get("cell_type"), cell.get("source")
        if cell_type not in CELL_TYPES:
            return None
        if isinstance(source, list):
            if not all(isinstance(s, str) for s in source):
                return None
            source = "".join(source)
        elif not isinstance(source, str):
            return None
        out.append((cell_type, source))
    return out


def _nbformat_cells(data: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(data, dict) or not ("cells" in data or "worksheets" in data or "nbformat" in data):
        raise DiscoveryError(
            "The file is JSON but not a Jupyter notebook (no 'nbformat' version and no 'cells'); if it is not "
            "meant to be one, rename it or move it out of the notebooks folder.",
            notebook=where,
        )
    version, cells = data.get("nbformat"), data.get("cells")
    if "nbformat" in data and (isinstance(version, bool) or not isinstance(version, int)):
        raise DiscoveryError(
            f"The file's 'nbformat' is {json.dumps(version)[:40]}, not a version number such as 4; {_FIX_FILE}.",
            notebook=where,
        )
    if "cells" in data and not isinstance(cells, list):
        raise DiscoveryError(
            f"The file's 'cells' is {_json_kind(cells)}, not a list of cells; {_FIX_FILE}.", notebook=where
        )
    import nbformat

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat warns about missing cell ids; that is not our problem
            nb = nbformat.reads(json.dumps(data), as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # nbformat raises ValidationError, NBFormatError, KeyError, AttributeError...
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        reason = " ".join(str(reason).split())
        if len(reason) > 200:
            reason = reason[:197] + "..."
        raise DiscoveryError(
            f"The file is not a valid Jupyter notebook ({reason}); {_FIX_FILE}.", notebook=where
        ) from None
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def _json_kind(value: Any) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _declared_name(line: str) -> str | None:
    """The asset name a bad ``%%asset`` line was probably about, to locate the problem (None when unclear)."""
    words = line.split()
    name = words[1] if len(words) > 1 else ""
    return name if name.isidentifier() else None
