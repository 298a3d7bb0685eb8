"""Code versions: a hash of what a cell *does*, not how it is written.

An asset's code version covers the asset cell's body and the helper cells it relies on — the earlier non-asset
code cells that define names the body reads, followed transitively (a helper function that reads a constant from
another cell pulls that cell in too). Comments, blank lines, formatting and docstrings do not count: the source is
parsed and unparsed (``ast.unparse``) with docstrings removed, as Hamilton does.

Notebook cells are not always Python: IPython line magics (``%time``), shell escapes (``!ls``, ``x = !ls``), help
(``obj?``) and cell magics (``%%bash``) are turned into a call that keeps their text (so editing a magic line does
change the version) before parsing; IPython's own input transformer is tried, lazily, when that is not enough; and a
source that still does not parse is compared as whitespace-normalised text without comment lines. Nothing here
raises on odd input. Pure: no disk, no IPython import unless a cell needs it.
"""

from __future__ import annotations

import ast
import hashlib
import re
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "code_source",
    "code_version",
    "defined_names",
    "is_analysable",
    "normalize_source",
    "select_helpers",
    "used_names",
]

VERSION_LENGTH = 16  # hex characters of the sha256 kept: 64 bits, plenty for telling edits apart
_MAGIC_CALL = "__nbo_ipython__"
# catch_warnings swaps a process-wide list: two threads interleaving it can leave "ignore" installed for good
_WARNINGS_LOCK = threading.RLock()
_STAR = "*"  # marks a ``from x import *``: it may define any name

# A whole line of IPython syntax: %magic, %%cellmagic, !shell, !!shell, ?obj, obj?, obj??
_MAGIC_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<text>(?:%|!|\?)\S.*|[A-Za-z_][\w.]*\?\??)[ \t]*$")
# ``target = !cmd`` / ``target = %magic args``
_MAGIC_ASSIGN = re.compile(
    r"^(?P<indent>[ \t]*)(?P<target>[A-Za-z_]\w*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)*)"
    r"[ \t]*=[ \t]*(?P<text>[%!]\S.*?)[ \t]*$"
)
_TRAILING_COMMENT = re.compile(r"\s+#[^'\"]*$")
_CELL_MAGIC = re.compile(r"\s*%%(?P<name>\w+)")
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})  # their body runs as Python
_TIMING_MAGIC = re.compile(r"(?P<magic>%(?:time|timeit|prun))\s+(?P<stmt>\S.*)")  # the rest is a statement
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_CONDITIONAL = tuple(
    t for t in (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, getattr(ast, "TryStar", None), ast.Match) if t
)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


@dataclass(frozen=True)
class _Analysis:
    normalized: str
    parsed: bool
    definite: frozenset[str]  # bound by every run of the cell
    conditional: frozenset[str]  # bound only on some paths (inside if/for/while/try/match), or by ``import *``
    used: frozenset[str]  # read from the module namespace anywhere (function-local names excluded)
    free: frozenset[str]  # read before the cell itself definitely binds them: what it needs from other cells


# -- public functions ---------------------------------------------------------------------------------------
def normalize_source(source: str) -> str:
    """The form of ``source`` that code versions hash: comments, blank lines, layout and docstrings removed."""
    return _analyse(source).normalized


def defined_names(source: str) -> set[str]:
    """Names the cell binds at top level: assignments (tuple, starred, annotated, augmented, walrus), ``def``,
    ``class``, imports, ``for`` and ``with ... as`` targets, ``except ... as``, match captures — also when nested
    in top-level ``if``/``try``/``for`` blocks, never inside functions or classes. Empty when unparseable."""
    info = _analyse(source)
    return set(info.definite | info.conditional) - {_STAR}


def used_names(source: str) -> set[str]:
    """Names the cell reads from the notebook's namespace anywhere, including in function bodies, decorators,
    defaults and IPython magic lines; names that are parameters or locals of a function, lambda or comprehension
    are left out. An over-approximation: when in doubt a name counts as used."""
    return set(_analyse(source).used)


def is_analysable(source: str) -> bool:
    """True when ``source`` parses as Python once IPython syntax is neutralised (the names above are then exact)."""
    return _analyse(source).parsed


def code_version(asset_source: str, helper_sources: Sequence[str]) -> str:
    """Short hex sha256 of the normalised asset body followed by the normalised helper cells, in the given order."""
    h = hashlib.sha256(b"nbo-code-v1\0asset\0")
    h.update(normalize_source(asset_source).encode("utf-8", "surrogatepass"))
    for helper in helper_sources:
        h.update(b"\0helper\0")
        h.update(normalize_source(helper).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:VERSION_LENGTH]


def code_source(asset_source: str, helper_sources: Sequence[str]) -> str:
    """The normalized text a code version stands for, for people: the asset's body, then each helper cell it
    counts (in the given order) under a ``# helper cell`` line. Kept in the store so that a code change can be
    shown as a diff of what was built against what the cell says now."""
    parts = [normalize_source(asset_source)]
    parts.extend(f"# helper cell\n{normalize_source(h)}" for h in helper_sources)
    return "\n".join(p.rstrip("\n") for p in parts) + "\n"


def select_helpers(asset_source: str, cells: Sequence[tuple[int, str]], *, before: int | None = None) -> list[int]:
    """Indexes of the ``cells`` (the notebook's non-asset code cells as ``(index, source)``) that the asset relies
    on, in cell order.

    Notebooks run top to bottom, so a name the asset reads comes from the *last* cell before it that binds the
    name; that cell is selected and its own free names are resolved the same way from its position (transitively).
    A cell that binds the name only conditionally (inside ``if``/``try``/``for``...) or through ``import *`` is
    selected and the search goes on to earlier cells. ``before`` is the asset cell's index: only cells above it
    count (default: all of ``cells``). A cell that defines nothing the asset needs — a plot, a print — is not
    selected.
    """
    ordered = sorted(
        ((index, _analyse(src)) for index, src in cells if before is None or index < before), key=lambda c: c[0]
    )
    selected: set[int] = set()
    seen: set[tuple[str, int]] = set()
    pending = [(name, len(ordered)) for name in _analyse(asset_source).free]
    while pending:
        name, pos = pending.pop()
        if (name, pos) in seen:
            continue
        seen.add((name, pos))
        for p in range(pos - 1, -1, -1):
            index, info = ordered[p]
            definite = name in info.definite
            if definite or name in info.conditional or _STAR in info.conditional:
                if index not in selected:
                    selected.add(index)
                    pending.extend((n, p) for n in info.free)
                if definite:
                    break
    return sorted(selected)


# -- analysis -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=8192)
def _analyse(source: str) -> _Analysis:
    # Cached: discovery asks about the same helper cell for every asset of a notebook, and re-discovery of an
    # unchanged project re-parses nothing.
    tree = _parse(source)
    if tree is None:
        return _Analysis(_text_normal_form(source), False, frozenset(), frozenset(), frozenset(), frozenset())
    definite: set[str] = set()
    conditional: set[str] = set()
    used: set[str] = set()
    free: set[str] = set()
    for stmt in tree.body:
        loads: set[str] = set()
        stores: set[str] = set()
        _collect(stmt, loads, stores, set())
        used |= loads
        free |= loads - definite
        (conditional if isinstance(stmt, _CONDITIONAL) else definite).update(stores)
    if _STAR in definite:  # ``from x import *`` may bind anything, so it never ends the search for a name
        definite.discard(_STAR)
        conditional.add(_STAR)
    try:
        normalized = ast.unparse(_strip_docstrings(tree))
    except Exception:  # e.g. RecursionError on absurdly deep nesting: still never raise
        normalized = _text_normal_form(source)
    return _Analysis(
        normalized, True, frozenset(definite), frozenset(conditional - definite), frozenset(used), frozenset(free)
    )


def _parse(source: str) -> ast.Module | None:
    """Parse plain Python first; then with IPython syntax neutralised; then through IPython's transformer.

    A cell magic whose body is not Python (``%%bash``, ``%%writefile``, ``%%sql``...) is left unparsed: its body
    defines no Python names and is compared as text."""
    tree = _try_parse(source)
    if tree is not None:
        return tree
    m = _CELL_MAGIC.match(source)
    if m and m.group("name") not in _PYTHON_CELL_MAGICS:
        return None
    neutralised = _neutralise_ipython(source)
    tree = _try_parse(neutralised) if neutralised is not None else None
    if tree is not None:
        return tree
    transformed = _ipython_transform(source)
    return _try_parse(transformed) if transformed is not None else None


def _try_parse(source: str) -> ast.Module | None:
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            # invalid escape sequences warn at parse time; a strict filter must not turn that into a failure
            warnings.simplefilter("ignore")
            return ast.parse(source)
    except Exception:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError...
        return None


def _neutralise_ipython(source: str) -> str | None:
    """Replace IPython-only lines by a call carrying their text, keeping indentation (and so the structure).

    None when there is no such line (then something else is wrong with the source)."""
    lines = source.splitlines()
    changed = False
    for i, line in enumerate(lines):
        m = _MAGIC_ASSIGN.match(line) or _MAGIC_LINE.match(line)
        if m:
            # A trailing comment is passed to the magic as text, but it is still a comment to the reader.
            text = _TRAILING_COMMENT.sub("", m.group("text")).rstrip()
            indent = m.group("indent")
            timed = _TIMING_MAGIC.match(text)
            if "target" not in m.groupdict() and timed and _try_parse(timed.group("stmt")) is not None:
                # ``%time x = f()`` runs (and binds) ``x = f()``: analyse the statement as Python
                lines[i] = f"{indent}{_MAGIC_CALL}({timed.group('magic')!r})\n{indent}{timed.group('stmt')}"
            else:
                target = f"{m.group('target')} = " if "target" in m.groupdict() else ""
                lines[i] = f"{indent}{target}{_MAGIC_CALL}({text!r})"
            changed = True
    return "\n".join(lines) if changed else None


def _magic_reads(text: str) -> set[str]:
    """Names an IPython line reads: a line magic's arguments (``%time r = f(df)``), a shell line's ``{expr}`` and
    ``$name`` expansions, the object asked about with ``?``. The magic's own name and shell words do not count."""
    if text.startswith("!"):
        spans = re.findall(r"\{([^{}]*)\}|\$([A-Za-z_]\w*)", text)
        return {w for a, b in spans for w in _IDENTIFIER.findall(a or b)}
    if text.startswith("%"):
        text = text.lstrip("%")
        text = text[len(text.split(None, 1)[0]) :] if text.strip() else ""
    return set(_IDENTIFIER.findall(text))


def _ipython_transform(source: str) -> str | None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except Exception:  # IPython missing or broken: the text form will do
        return None
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return TransformerManager().transform_cell(source if source.endswith("\n") else source + "\n")
    except Exception:
        return None


def _text_normal_form(source: str) -> str:
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def _strip_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, *_FUNCTIONS)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    del body[0]
                    if not body and not isinstance(node, ast.Module):
                        body.append(ast.Pass())
    return tree


# -- names --------------------------------------------------------------------------------------------------
def _collect(node: ast.AST, loads: set[str], stores: set[str], declared: set[str]) -> None:
    """Names ``node`` reads and binds in the current scope; a nested scope contributes only its free reads.

    ``declared`` collects ``global``/``nonlocal`` names, which stay visible outside a function."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == _MAGIC_CALL:
            if n.args and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str):
                loads |= _magic_reads(n.args[0].value)
        elif isinstance(n, ast.Name):
            if isinstance(n.ctx, ast.Load):
                loads.add(n.id)
            elif isinstance(n.ctx, ast.Store):
                stores.add(n.id)
        elif isinstance(n, _FUNCTIONS):
            stores.add(n.name)
            stack.extend(n.decorator_list)
            stack.extend(_argument_expressions(n.args))
            if n.returns is not None:
                stack.append(n.returns)
            loads |= _scope_free(n.body, _parameters(n.args))
        elif isinstance(n, ast.Lambda):
            stack.extend(_argument_expressions(n.args))
            loads |= _scope_free([n.body], _parameters(n.args))
        elif isinstance(n, ast.ClassDef):
            stores.add(n.name)
            stack.extend(n.decorator_list)
            stack.extend(n.bases)
            stack.extend(k.value for k in n.keywords)
            loads |= _scope_free(n.body, set())
        elif isinstance(n, _COMPREHENSIONS):
            loads |= _comprehension_free(n, loads, stores, declared)
        elif isinstance(n, ast.Import):
            stores.update((a.asname or a.name.partition(".")[0]) for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            stores.update((a.asname or a.name) for a in n.names)  # "*" marks a star import
        elif isinstance(n, ast.AugAssign):
            if isinstance(n.target, ast.Name):
                loads.add(n.target.id)  # x += 1 reads x
                stores.add(n.target.id)
            else:
                stack.append(n.target)
            stack.append(n.value)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            declared.update(n.names)
        else:
            if isinstance(n, ast.ExceptHandler) and n.name:
                stores.add(n.name)
            elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
                stores.add(n.name)
            elif isinstance(n, ast.MatchMapping) and n.rest:
                stores.add(n.rest)
            stack.extend(ast.iter_child_nodes(n))


def _scope_free(body: Iterable[ast.AST], params: set[str]) -> set[str]:
    """Free reads of a function or class body: what it reads minus its own parameters and locals."""
    loads: set[str] = set()
    stores: set[str] = set()
    declared: set[str] = set()
    for stmt in body:
        _collect(stmt, loads, stores, declared)
    return loads - ((stores | params) - declared)


def _comprehension_free(
    node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
    loads: set[str],
    stores: set[str],
    declared: set[str],
) -> set[str]:
    # The first iterable is evaluated in the enclosing scope; everything else in the comprehension's own.
    _collect(node.generators[0].iter, loads, stores, declared)
    inner_loads: set[str] = set()
    inner_stores: set[str] = set()
    parts: list[ast.AST] = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    for i, gen in enumerate(node.generators):
        parts.append(gen.target)
        parts.extend(gen.ifs)
        if i:
            parts.append(gen.iter)
    for part in parts:
        _collect(part, inner_loads, inner_stores, declared)
    return inner_loads - inner_stores


def _parameters(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    return {a.arg for a in every}


def _argument_expressions(args: ast.arguments) -> list[ast.AST]:
    """Defaults and annotations: evaluated where the function is defined, not inside it."""
    exprs: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    exprs += [a.annotation for a in every if a.annotation is not None]
    return exprs
