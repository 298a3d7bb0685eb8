"""What the user declared: ``AssetSpec`` and the one parser of the ``%%asset`` line.

The same parser serves static discovery (no kernel) and the cell magic at run time, so its help text is the
``%%asset?`` help. It is plain argparse: the core imports no IPython.
"""

from __future__ import annotations

import argparse
import keyword
import math
import re
import shlex
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from notebook_orch.core.partitions import UNPARTITIONED, PartitionsDef, parse_partitions
from notebook_orch.errors import DeclarationError, InvalidOption, PartitionError, cell_number

if TYPE_CHECKING:
    from notebook_orch.core.sla import SlaSpec

IO_KINDS = ("parquet", "json", "pickle")
DEFAULT_MARKER = "_SUCCESS"
SOURCE_IO = "source"  # a source's materialization: its storage_path is the partition's folder, read as a Path
MAGIC = "%%asset"

# Bounds on numbers a person types, checked when the line is parsed: far past any real use, and small enough that
# nothing downstream overflows (int64 index arrays, SQLite integers, timeouts in milliseconds) or runs for ages
# (a run id drawn per retry up front). 100,000 steps is more than eleven years of hourly partitions.
MAX_OFFSET = 100_000
MAX_RETRIES = 100
MAX_WORKERS = 256
MAX_LIMIT = 1_000_000
MAX_TIMEOUT_S = 7 * 24 * 3600.0
# The %%asset line is read by every command (discovery parses every notebook); shlex takes seconds on a line of a
# few hundred thousand characters. 20,000 characters hold about a thousand dependencies.
MAX_LINE = 20_000


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for an integer option in ``[low, high]`` (argparse's message names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high:,}, not {_short(text)}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high:,}, not {_short(text)}")
        return value

    parse.__name__ = "int"  # argparse names the type in some messages
    return parse


def bounded_seconds(high: float = MAX_TIMEOUT_S) -> Callable[[str], float]:
    """An argparse ``type`` for a positive, finite number of seconds up to ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isnan(value) or not 0 < value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a number of seconds above 0 and at most {high:,g} ({high / 86400:g} days), "
                f"not {_short(text)}")
        return value

    parse.__name__ = "float"
    return parse


def check_run_options(*, workers: int | None = None, retries: int | None = None, limit: int | None = None,
                      execution_timeout_s: float | None = None, first_attempt: int | None = None) -> None:
    """The bounds the CLI applies when it parses, for callers of the Python API: ``InvalidOption`` names the
    option, the range and the value."""
    for option, value, low, high in (("workers", workers, 1, MAX_WORKERS), ("retries", retries, 0, MAX_RETRIES),
                                     ("limit", limit, 1, MAX_LIMIT),
                                     ("first_attempt", first_attempt, 1, MAX_RETRIES + 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            raise InvalidOption(f"{option} must be a whole number from {low} to {high:,}, not {value!r}.")
    timeout = execution_timeout_s
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or math.isnan(timeout) or not 0 < timeout <= MAX_TIMEOUT_S):
        raise InvalidOption(f"execution_timeout_s must be a number of seconds above 0 and at most "
                            f"{MAX_TIMEOUT_S:,g}, or None for no limit, not {timeout!r}.")


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


# -- dependency mappings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Same key (or, across time grains, the containing / contained windows)."""

    def describe(self) -> str:
        return ""


@dataclass(frozen=True)
class Offset:
    """``a[-1]``: the partition ``offset`` steps away."""

    offset: int

    def describe(self) -> str:
        return f"[{self.offset}]"


@dataclass(frozen=True)
class Window:
    """``a[-6:0]``: partitions from ``start`` to ``end`` steps away, both inclusive (here: the last 7)."""

    start: int
    end: int

    def describe(self) -> str:
        return f"[{self.start}:{self.end}]"


@dataclass(frozen=True)
class AllPartitions:
    """``a[all]``: every partition of the upstream asset."""

    def describe(self) -> str:
        return "[all]"


Mapping = Union[Identity, Offset, Window, AllPartitions]
_DEP = re.compile(r"^\s*(?P<name>[^\[\]\s]+)\s*(?:\[(?P<sel>[^\]]*)\])?\s*$")


@dataclass(frozen=True)
class DepSpec:
    asset: str
    mapping: Mapping = Identity()

    def describe(self) -> str:
        return self.asset + self.mapping.describe()


def check_name(name: str, *, what: str = "Asset name") -> None:
    """Names are Python identifiers (they become variables in the cell) and never path-like."""
    if not name:
        raise DeclarationError(f"{what} is missing; write '%%asset my_table' with an identifier.")
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise DeclarationError(f"{what} {name!r} is path-like; use a Python identifier such as 'daily_sales'.")
    if not name.isidentifier() or keyword.iskeyword(name):
        raise DeclarationError(
            f"{what} {name!r} is not a Python identifier; use letters, digits and '_' (not starting with a digit)."
        )
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        # Python normalizes identifiers (NFKC) when it compiles the cell, so `ﬁle = ...` assigns `file`: the asset
        # would never find its variable, and two spellings would name one variable.
        raise DeclarationError(
            f"{what} {name!r} is not in the form Python uses for names: Python reads it as {normal!r} (Unicode "
            f"NFKC normalization), so the cell's variable would be {normal!r}. Write {normal!r} instead."
        )


def parse_dep(text: str) -> DepSpec:
    m = _DEP.match(text)
    if not m:
        raise DeclarationError(f"Dependency {text!r} is malformed; write 'a', 'a[-1]', 'a[-6:0]' or 'a[all]'.")
    name, sel = m.group("name"), m.group("sel")
    check_name(name, what="Dependency name")
    if sel is None:
        return DepSpec(name)
    sel = sel.strip()
    if sel == "all":
        return DepSpec(name, AllPartitions())
    try:
        if ":" in sel:
            lo, hi = (int(x) for x in sel.split(":"))
            _check_offsets(text, lo, hi)
            if lo > hi:
                raise DeclarationError(
                    f"Dependency {text!r}: window [{lo}:{hi}] is reversed; write the earlier offset first, e.g. [-6:0]."
                )
            return DepSpec(name, Window(lo, hi))
        off = int(sel)
    except ValueError:
        raise DeclarationError(
            f"Dependency {_short(text)}: {_short(sel)} is not an offset, a window or 'all'; "
            "write a[-1], a[-6:0] or a[all]."
        ) from None
    _check_offsets(text, off)
    return DepSpec(name, Identity() if off == 0 else Offset(off))


def _check_offsets(text: str, *offsets: int) -> None:
    for off in offsets:
        if abs(off) > MAX_OFFSET:
            raise DeclarationError(
                f"Dependency {_short(text)}: offset {_short(str(off))} is out of range; offsets and windows reach at "
                f"most {MAX_OFFSET:,} partitions away (e.g. a[-1], a[-6:0]), or read every partition with a[all]."
            )


def split_deps(text: str) -> list[str]:
    """Split ``a,b[-1],c[-6:0]`` on commas outside brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


# -- the declaration ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AssetSpec:
    """One ``%%asset`` cell as declared. ``code_version`` is filled by discovery (or ``--code-version``)."""

    name: str
    deps: tuple[DepSpec, ...] = ()
    partitions: PartitionsDef = UNPARTITIONED
    checks: tuple[str, ...] = ()
    retries: int = 0
    schedule: str | None = None
    auto: bool = False
    # --trigger "a & (b | c)": the condition that starts an automated run instead of the AND of every input
    # (core/triggers.py); declaring one makes the asset automated.
    trigger: str | None = None
    sla: SlaSpec | None = None  # core/sla.py: when each partition must be fresh
    io: str | None = None
    # An external source (--source "landing/orders/{partition}/" --marker _SUCCESS): data written outside
    # notebook_orch, never run; the scheduler records a partition when its marker appears (scheduler/sources.py).
    source_path: str | None = None
    marker: str = DEFAULT_MARKER
    code_version_override: str | None = None
    owner: str | None = None
    description: str | None = None
    # Concurrency pools its runs take a slot in (core/pools.py); limits are declared in the project's config.
    pools: tuple[str, ...] = ()
    notebook: str | None = None
    cell_index: int | None = None
    source: str = field(default="", compare=False, repr=False)
    code_version: str = ""
    # The normalized body and helpers that code_version stands for (codeversion.code_source); "" when not known.
    code_source: str = field(default="", compare=False, repr=False)

    @property
    def dep_names(self) -> tuple[str, ...]:
        return tuple(d.asset for d in self.deps)

    @property
    def deps_signature(self) -> str:
        """What changes when dependencies are added or removed (order does not matter)."""
        return ",".join(sorted(d.describe() for d in self.deps))

    @property
    def location(self) -> str:
        # Counted from 1, as JupyterLab numbers cells; cell_index itself stays the 0-based position in the file.
        return f"{self.notebook or '<interactive>'}, cell {cell_number(self.cell_index)}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print and exit
        raise DeclarationError(f"%%asset: {message}. See '%%asset?' for the options.")

    def exit(self, status: int = 0, message: str | None = None) -> None:
        raise DeclarationError(message or "%%asset: invalid arguments.")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="%%asset",
        description="Declare the dataset this cell produces. The cell body must assign a variable named NAME.",
        add_help=False,
        allow_abbrev=False,
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="asset name: a Python identifier, unique in the project")
    p.add_argument("--deps", action="append", default=[], metavar="A,B[-1],C[-6:0],D[all]",
                   help="upstream assets read by the cell; [-1] previous partition, [-6:0] last 7, [all] every one")
    p.add_argument("--partitions", metavar="SPEC",
                   help="daily:2013-01-01[..2013-12-31] | hourly:... | weekly:... | monthly:2013-01.. | static:a,b,c")
    p.add_argument("--check", action="append", default=[], metavar="EXPR",
                   help="quality check evaluated with the value bound to NAME, e.g. \"len(NAME) > 0\"; repeatable")
    p.add_argument("--retries", type=bounded_int(0, MAX_RETRIES), default=0, metavar="N",
                   help=f"retries of a failed run (with backoff), 0 to {MAX_RETRIES}")
    p.add_argument("--schedule", metavar="CRON", help="cron expression for scheduled runs, e.g. '0 6 * * *'")
    p.add_argument("--auto", action="store_true", help="run automatically when all inputs of a partition are fresh")
    p.add_argument("--trigger", metavar="EXPR",
                   help="run automatically when this condition over --deps holds, e.g. \"a & (b | c)\" "
                        "(implies --auto)")
    p.add_argument("--sla", metavar="[HH:MM][+OFFSET] [TZ]",
                   help="when a partition must be fresh, after its window ends: '06:00' (the day's partition by "
                        "06:00 the next day), '06:00+1d Europe/Berlin', '+2h'")
    p.add_argument("--source", metavar="PATH", dest="source_path",
                   help="an external source: the folder of a partition, with {partition}, e.g. "
                        "\"landing/orders/{partition}/\" (relative to the project); observed, never run")
    p.add_argument("--marker", metavar="FILE",
                   help=f"with --source: the file whose presence says a partition is complete (default "
                        f"{DEFAULT_MARKER})")
    p.add_argument("--io", choices=IO_KINDS, help="storage format (default: parquet for DataFrames, else json)")
    p.add_argument("--code-version", dest="code_version", metavar="V", help="explicit code version (overrides hash)")
    p.add_argument("--pool", action="append", default=[], metavar="NAME[,NAME]",
                   help="concurrency pool(s) its runs take a slot in; limits go in [tool.notebook_orch.concurrency] "
                        "pools, e.g. a database that takes few connections")
    p.add_argument("--owner", metavar="WHO", help="who to ask about this asset")
    p.add_argument("--description", metavar="TEXT", help="what this asset is")
    return p


_SHELL_SPECIAL = frozenset("'\"\\\x0b\x0c\x1c\x1d\x1e\x1f")  # where str.split and shlex.split differ
_PARSER = build_parser()  # parsing does not mutate the parser, so one instance serves every declaration
HELP = _PARSER.format_help()


def parse_declaration(
    line: str, *, notebook: str | None = None, cell: int | None = None, source: str = ""
) -> AssetSpec:
    """Parse the argument part of an ``%%asset`` line (with or without the leading ``%%asset``)."""
    text = line.strip()
    if text.startswith(MAGIC):
        text = text[len(MAGIC):]
    try:
        if len(text) > MAX_LINE:
            raise DeclarationError(
                f"%%asset: the line is {len(text):,} characters long, more than the {MAX_LINE:,} a declaration may "
                "have; put a long description in a markdown cell instead."
            )
        try:
            # shlex costs ~0.1 ms a line (0.1-0.2 s of discovering 1,000 assets); a line with no quote or escape
            # splits the same on whitespace.
            argv = text.split() if text.isascii() and not _SHELL_SPECIAL.intersection(text) else shlex.split(text)
        except ValueError as exc:
            raise DeclarationError(f"%%asset: cannot split the line ({exc}); check the quotes.") from None
        ns = _PARSER.parse_args(argv)
        if ns.name is None:
            raise DeclarationError("%%asset: the asset NAME is missing; write '%%asset my_table [options]'.")
        check_name(ns.name)
        deps = tuple(parse_dep(d) for group in ns.deps for d in split_deps(group))
        seen: set[str] = set()
        for d in deps:
            if d.asset == ns.name:
                raise DeclarationError(f"Asset {ns.name!r} lists itself in --deps; an asset cannot read itself.")
            if d.asset in seen:
                raise DeclarationError(f"Asset {ns.name!r} lists {d.asset!r} twice in --deps; list it once.")
            seen.add(d.asset)
        try:
            partitions = parse_partitions(ns.partitions)
        except PartitionError as exc:
            raise DeclarationError(str(exc)) from None
        for expr in ns.check:
            try:
                compile(expr, "<check>", "eval")
            except SyntaxError as exc:
                raise DeclarationError(f"%%asset: --check {expr!r} is not a Python expression ({exc.msg}).") from None
        if ns.schedule is not None:
            _check_cron(ns.schedule)
        sla = _parse_sla(ns.sla, partitions) if ns.sla else None
        if ns.trigger is not None:
            _check_trigger(ns.trigger, ns.name, [d.asset for d in deps])
        if ns.source_path is not None or ns.marker is not None:
            _check_source(ns, partitioned=partitions is not UNPARTITIONED)
        pools = _parse_pools(ns.pool)
    except DeclarationError as exc:
        raise DeclarationError(exc.problem.message, notebook=notebook, cell=cell) from None
    return AssetSpec(
        name=ns.name,
        deps=deps,
        partitions=partitions,
        checks=tuple(ns.check),
        retries=ns.retries,
        schedule=ns.schedule,
        auto=ns.auto or ns.trigger is not None,
        trigger=ns.trigger,
        sla=sla,
        io=ns.io,
        source_path=ns.source_path,
        marker=ns.marker or DEFAULT_MARKER,
        code_version_override=ns.code_version,
        owner=ns.owner,
        description=ns.description,
        pools=pools,
        notebook=notebook,
        cell_index=cell,
        source=source,
        code_version=ns.code_version or "",
    )


def _check_cron(expr: str) -> None:
    from croniter import croniter  # light, but only needed when a schedule is declared

    if not croniter.is_valid(expr):
        raise DeclarationError(f"%%asset: --schedule {expr!r} is not a valid cron expression, e.g. '0 6 * * *'.")


def _check_source(ns: argparse.Namespace, *, partitioned: bool) -> None:
    from string import Formatter

    if ns.source_path is None:
        raise DeclarationError(f"%%asset: --marker {ns.marker!r} needs --source PATH; a marker says when a source's "
                               "partition is complete.")
    path = ns.source_path
    clashes = [opt for opt, given in (("--deps", ns.deps), ("--auto", ns.auto), ("--trigger", ns.trigger),
                                      ("--schedule", ns.schedule), ("--check", ns.check), ("--io", ns.io))
               if given]
    if clashes:
        raise DeclarationError(f"%%asset: source {ns.name!r} (--source) is observed, never run, so it cannot take "
                               f"{', '.join(clashes)}; declare those on the assets that read it.")
    try:
        fields = {f for _, f, _, _ in Formatter().parse(path) if f is not None}
    except ValueError as exc:
        raise DeclarationError(f"%%asset: --source {path!r} is not a path template ({exc}); write e.g. "
                               "'landing/orders/{partition}/'.") from None
    if fields - {"partition"}:
        raise DeclarationError(f"%%asset: --source {path!r} uses {sorted(fields - {'partition'})}; the only "
                               "placeholder is {partition}, e.g. 'landing/orders/{partition}/'.")
    if partitioned and "partition" not in fields:
        raise DeclarationError(f"%%asset: --source {path!r} has no {{partition}}, so every partition would be the "
                               "same folder; write e.g. 'landing/orders/{partition}/'.")
    if not partitioned and fields:
        raise DeclarationError(f"%%asset: --source {path!r} has {{partition}} but the asset has no --partitions; "
                               "add --partitions or name one folder.")
    marker = ns.marker if ns.marker is not None else DEFAULT_MARKER
    if not marker.strip() or "/" in marker or "\\" in marker or marker in (".", ".."):
        raise DeclarationError(f"%%asset: --marker {marker!r} is not a file name; give the name of the file the "
                               f"writer creates last inside the partition's folder, e.g. {DEFAULT_MARKER}.")


def _check_trigger(text: str, asset: str, deps: list[str]) -> None:
    from notebook_orch.core.triggers import TriggerError, parse_trigger  # it imports this module

    if not deps:
        raise DeclarationError(f"%%asset: asset {asset!r} declares --trigger {text!r} but no --deps; a trigger "
                               "waits on dependencies: add them, e.g. --deps a,b --trigger 'a | b'.")
    try:
        parse_trigger(text, asset=asset, known=deps)
    except TriggerError as exc:
        raise DeclarationError(f"%%asset: {exc}") from None


def _parse_sla(text: str, partitions: PartitionsDef) -> SlaSpec:
    from notebook_orch.core.sla import SlaError, check_partitions, parse_sla

    try:
        sla = parse_sla(text)
    except SlaError as exc:
        raise DeclarationError(f"%%asset: {exc}") from None
    problem = check_partitions(sla, partitions)
    if problem:
        raise DeclarationError(f"%%asset: {problem}")
    return sla


_POOL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def _parse_pools(values: list[str]) -> tuple[str, ...]:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    for name in names:
        if not _POOL_NAME.fullmatch(name):
            raise DeclarationError(f"%%asset: --pool {_short(name)} is not a pool name; use letters, digits, '_', "
                                   "'.' or '-', e.g. --pool warehouse.")
    return tuple(dict.fromkeys(names))



def split_asset_cell(source: str) -> tuple[str, str] | None:
    """``(magic line, body)`` when the cell starts with ``%%asset``, else None."""
    stripped = source.lstrip()
    if not stripped.startswith(MAGIC):
        return None
    first, _, body = stripped.partition("\n")
    if first[len(MAGIC):][:1] not in ("", " ", "\t"):
        return None  # e.g. %%assets — some other magic
    return first, body
