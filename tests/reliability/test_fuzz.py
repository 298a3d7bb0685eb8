"""Fuzzing (hypothesis): every text a person can type into notebook_orch — the ``%%asset`` line, partition specs and
keys, dependency mappings, selections, the ``[tool.notebook_orch]`` table and environment overrides, and ``nbo``'s
arguments — is either accepted or refused with one of the package's own errors (``NotebookOrchError``; argparse's
``SystemExit`` for the command line). No ``TypeError``, ``OverflowError``, ``KeyError`` ... and, when refused, nothing
stored changed.

Examples per property: 200 in CI (profile ``reliability``); the benchmark runs the ``reliability-long`` profile
(``NBO_FUZZ_EXAMPLES``). ``NBO_FUZZ_COUNTS=FILE`` writes how many inputs each property tried (the benchmark prints it).
"""

from __future__ import annotations

import io
import json
import math
import os
import shlex
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from fuzz_support import FUZZ, snapshot
from hypothesis import given
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch.config import ProjectConfig, load_config
from notebook_orch.core.graph import build_valid_graph
from notebook_orch.core.mappings import mapping_problem, upstream_ranges
from notebook_orch.core.partitions import (
    MAX_PARTITIONS,
    StaticPartitions,
    TimeWindowPartitions,
    parse_partitions,
)
from notebook_orch.core.specs import AllPartitions, AssetSpec, Identity, Offset, Window, parse_declaration
from notebook_orch.errors import DeclarationError, NotebookOrchError, PartitionError
from notebook_orch.faces.cli import main

TRIED: Counter[str] = Counter()  # inputs tried per property, for the benchmark's figure


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    target = os.environ.get("NBO_FUZZ_COUNTS")
    if target:
        Path(target).write_text(json.dumps(dict(TRIED)))


# -- building blocks ------------------------------------------------------------------------------------------------
ANY_TEXT = st.text(max_size=80)  # every code point but surrogates: letters of every script, controls, NUL
TRICKY = st.sampled_from([
    "", " ", "\x00", "\n", "\t", "'", '"', "\\", "[", "]", ":", ",", "..", "../", "/", ".", "-", "--", "+", "*",
    "ﬁle", "ｓales", "cafe\u0301", "\u202e", "\u200b", "é", "٣", "𝟙", "1e308", "nan", "inf", "-0", "9" * 40,
    "None", "class", "import", "__import__", "all", "T", "Z", "+05:00",
])
NAMES = st.sampled_from(["raw", "clean", "report", "a", "b", "_x", "daily_sales"])
IDENT = st.one_of(NAMES, st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True), TRICKY, ANY_TEXT)
INTS = st.one_of(st.integers(-10**6, 10**6), st.integers(), st.sampled_from([0, -1, 1, 100_000, 100_001]))
NUMBER_TEXT = st.one_of(INTS.map(str), st.floats().map(str), TRICKY, ANY_TEXT)

# Dates around the edges of what datetime holds (year 1 and 9999), with and without a time or a time zone.
MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
    st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31), datetime(9999, 12, 31, 23),
                     datetime(2013, 1, 1), datetime(2013, 1, 7), datetime(2024, 2, 29)]),
)
ZONES = st.sampled_from([None, timezone.utc, timezone(timedelta(hours=5)), timezone(timedelta(hours=-11))])


@st.composite
def date_text(draw) -> str:
    t = draw(MOMENTS).replace(tzinfo=draw(ZONES))
    style = draw(st.sampled_from(["day", "hour", "month", "iso", "space", "compact", "minute"]))
    return {
        "day": f"{t.year:04d}-{t.month:02d}-{t.day:02d}",
        "hour": f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}",
        "month": f"{t.year:04d}-{t.month:02d}",
        "iso": t.isoformat(),
        "space": t.isoformat(sep=" "),
        "compact": t.strftime("%Y%m%d") if t.year >= 1000 else t.isoformat(),
        "minute": t.isoformat(timespec="minutes"),
    }[style]


@st.composite
def partition_spec(draw) -> str:
    kind = draw(st.sampled_from(["daily", "hourly", "weekly", "monthly", "static", "Daily", " daily ", "yearly",
                                 "", "static "]))
    if kind.strip().lower() == "static":
        keys = draw(st.lists(st.one_of(NAMES, TRICKY, st.from_regex(r"[A-Za-z0-9_.=-]{1,8}", fullmatch=True)),
                             max_size=6))
        return f"{kind}:{','.join(keys)}"
    start = draw(st.one_of(date_text(), TRICKY))
    end = draw(st.one_of(st.none(), date_text(), TRICKY))
    return f"{kind}:{start}" + ("" if end is None else f"..{end}")


SPECS = st.one_of(partition_spec(), ANY_TEXT, TRICKY)


@st.composite
def dep_text(draw) -> str:
    name = draw(IDENT)
    window = st.tuples(INTS, INTS).map(lambda p: f"{p[0]}:{p[1]}")
    sel = draw(st.one_of(st.none(), st.just("all"), INTS.map(str), window, TRICKY, ANY_TEXT))
    return name if sel is None else f"{name}[{sel}]"


@st.composite
def declaration(draw) -> str:
    """An ``%%asset`` line: a name and options, each well-formed or broken in one way."""
    words: list[str] = []
    if draw(st.booleans()):
        words.append(draw(IDENT))
    options = {
        "--deps": st.lists(dep_text(), max_size=4).map(",".join),
        "--partitions": SPECS,
        "--check": st.one_of(st.sampled_from(["len(x) > 0", "x is not None", "1 +", "(" * 300 + ")" * 300,
                                              "-" * 5000 + "1", "lambda: (yield)", "x\x00"]), ANY_TEXT),
        "--retries": NUMBER_TEXT,
        "--schedule": st.one_of(st.sampled_from(["0 6 * * *", "* * * * * * *", "@daily", "61 * * * *", "0 0 31 2 *"]),
                                ANY_TEXT),
        "--sla": st.one_of(st.sampled_from(["09:30", "24:00", "9:5", "𝟙𝟙:𝟘𝟘", "٠٩:٣٠"]), ANY_TEXT),
        "--io": st.one_of(st.sampled_from(["parquet", "json", "pickle", "csv"]), ANY_TEXT),
        "--code-version": ANY_TEXT, "--owner": ANY_TEXT, "--description": ANY_TEXT,
        "--auto": st.none(), "--help": st.none(), "-h": st.none(), "--unknown": st.none(), "--dep": ANY_TEXT,
        "--": st.none(),
    }
    for option in draw(st.lists(st.sampled_from(sorted(options)), max_size=5)):
        words.append(option)
        value = draw(options[option])
        if value is not None:
            words.append(value)
    if draw(st.booleans()):
        words.append(draw(IDENT))  # a second positional
    quote = draw(st.booleans())
    line = " ".join(shlex.quote(w) if quote else w for w in words)
    return draw(st.sampled_from(["", "%%asset ", "%%asset\t", "  %%asset  "])) + line


# -- the declaration parser -----------------------------------------------------------------------------------------
@FUZZ
@given(line=st.one_of(declaration(), ANY_TEXT, st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
def test_the_declaration_parser_accepts_or_refuses_with_a_declaration_error(line: str) -> None:
    TRIED["declaration"] += 1
    try:
        spec = parse_declaration(line, notebook="nb.ipynb", cell=4)
    except DeclarationError as exc:
        # Located, one message, not a dump of the input.
        assert str(exc).startswith("nb.ipynb, cell 5: "), str(exc)
        assert exc.problem.notebook == "nb.ipynb" and exc.problem.cell == 4
        return
    assert isinstance(spec, AssetSpec) and spec.name.isidentifier()
    assert spec.notebook == "nb.ipynb" and spec.cell_index == 4
    # What was accepted is usable: partitions know their keys, deps describe themselves and parse back.
    _exercise(spec.partitions, now=datetime(2026, 11, 29))
    for dep in spec.deps:
        assert parse_declaration(f"x_ --deps {shlex.quote(dep.describe())}").deps[0] == dep


# -- partition specs, keys and mappings -----------------------------------------------------------------------------
def _exercise(pdef, *, now: datetime) -> None:
    """Everything the planner and staleness ask of an accepted partitions definition, at its edges."""
    try:
        n = pdef.count(now=now)
    except PartitionError as exc:  # an open end that grew past the limit by ``now``
        assert "more than the" in str(exc)
        return
    assert 0 <= n <= MAX_PARTITIONS
    keys = pdef.keys(now=now)
    assert len(keys) == n and len(set(keys)) == n
    for i in {0, n // 2, n - 1} if n else ():
        assert pdef.index_of(keys[i], now=now) == i, (pdef, keys[i])
    if isinstance(pdef, TimeWindowPartitions):
        for i in {0, max(n - 1, 0)}:
            start, end = pdef.window(i)
            assert start < end
        assert parse_partitions(pdef.describe()) == pdef


NOW = st.one_of(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)),
                st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59)]))


@FUZZ
@given(spec=SPECS, now=NOW)
def test_a_partition_spec_is_accepted_and_usable_or_refused_with_a_partition_error(spec: str, now: datetime) -> None:
    TRIED["partition spec"] += 1
    try:
        pdef = parse_partitions(spec)
    except PartitionError as exc:
        assert "Partition" in str(exc) or "partition" in str(exc)
        return
    _exercise(pdef, now=now)


@FUZZ
@given(spec=partition_spec(), key=st.one_of(date_text(), TRICKY, ANY_TEXT, NAMES), now=NOW)
def test_any_key_is_found_or_refused_with_a_partition_error(spec: str, key: str, now: datetime) -> None:
    TRIED["partition key"] += 1
    try:
        pdef = parse_partitions(spec)
    except PartitionError:
        return
    try:
        index = pdef.index_of(key, now=now)
    except PartitionError:
        return
    assert pdef.keys(now=now)[index] == key


MAPPINGS = st.one_of(st.just(Identity()), st.just(AllPartitions()), st.integers(-400, 400).map(Offset),
                     st.tuples(st.integers(-400, 0), st.integers(0, 400)).map(lambda w: Window(*w)))


@FUZZ
@given(down=partition_spec(), up=partition_spec(), mapping=MAPPINGS, now=NOW)
def test_a_mapping_fits_and_maps_or_says_why_not(down: str, up: str, mapping, now: datetime) -> None:
    TRIED["mapping"] += 1
    try:
        d, u = parse_partitions(down), parse_partitions(up)
    except PartitionError:
        return
    problem = mapping_problem(d, u, mapping)
    if problem is not None:
        assert isinstance(problem, str) and problem
        return
    try:
        n_down, n_up = d.count(now=now), u.count(now=now)
    except PartitionError:  # an open end past the limit by ``now``
        return
    if isinstance(d, StaticPartitions) != isinstance(u, StaticPartitions) and not isinstance(mapping, AllPartitions):
        return  # only [all] or an unpartitioned upstream connects these, and mapping_problem said so above
    lo, hi = upstream_ranges(d, u, mapping, n_down, n_up)
    assert len(lo) == len(hi) == n_down
    assert ((0 <= lo) & (lo <= hi) & (hi <= n_up)).all()


# -- selections ----------------------------------------------------------------------------------------------------
GRAPH = build_valid_graph([parse_declaration(line, notebook="nb.ipynb", cell=i) for i, line in enumerate([
    "raw --partitions daily:2013-01-01..2013-01-31", "clean --deps raw --partitions daily:2013-01-01..2013-01-31",
    "report --deps clean[all]", "daily_sales --deps raw[-1] --partitions daily:2013-01-02..2013-01-31",
    "broken --deps missing_one", "after_broken --deps broken"])])
SELECTION = st.lists(st.one_of(NAMES, st.sampled_from(["+", "*", ",", " ", "+raw", "clean+", "+report+", "broken",
                                                       "after_broken+", "++", "*+", "+*"]), TRICKY, ANY_TEXT),
                     max_size=6).map("".join)


@FUZZ
@given(expression=SELECTION, include_invalid=st.booleans())
def test_a_selection_selects_or_is_refused_with_a_declaration_error(expression: str, include_invalid: bool) -> None:
    TRIED["selection"] += 1
    try:
        chosen = GRAPH.select(expression, include_invalid=include_invalid)
    except NotebookOrchError:
        return
    assert chosen and len(set(chosen)) == len(chosen)
    assert set(chosen) <= set(GRAPH.names) | set(GRAPH.invalid)


# -- configuration -------------------------------------------------------------------------------------------------
KEYS = st.one_of(st.sampled_from(["notebooks", "store", "data", "heartbeat_timeout", "executor", "dask_address"]),
                 st.from_regex(r"[a-z_]{1,10}", fullmatch=True))
TOML_VALUES = st.recursive(
    st.one_of(ANY_TEXT, TRICKY, st.integers(-2**63, 2**63 - 1), st.floats(), st.booleans(),
              st.dates(), st.datetimes(), st.sampled_from(["notebooks", ".", "..", "/", "s.db", "sqlite:///x.db",
                                                           "postgresql://u@127.0.0.1:1/x", "local", "dask"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=5)


def _toml(value) -> str:
    """A value as TOML (no TOML writer is a dependency; the few types hypothesis draws are easy)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf
                                                  else repr(value))
    if isinstance(value, (int, date, datetime)):
        return value.isoformat() if isinstance(value, (date, datetime)) else str(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


@st.composite
def pyproject(draw) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=200))  # not TOML, maybe not UTF-8
    table = draw(st.dictionaries(KEYS, TOML_VALUES, max_size=5))
    body = "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in table.items())
    header = draw(st.sampled_from(["[tool.notebook_orch]", "[tool]\nnotebook_orch = 1\n[x]", "[tool.notebook_orch",
                                   "tool = 3\n[y]", "[tool.notebook_orch]\n[tool.notebook_orch]"]))
    return f"[project]\nname = 'x'\n\n{header}\n{body}\n".encode()


ENV_NAMES = ("NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT", "NBO_PROJECT")


@FUZZ
@given(content=pyproject(), env=st.dictionaries(st.sampled_from(ENV_NAMES[:4]), st.one_of(NUMBER_TEXT, TRICKY),
                                                max_size=2))
def test_a_configuration_loads_or_is_refused_with_a_config_error(tmp_path_factory: pytest.TempPathFactory,
                                                                 content: bytes, env: dict[str, str]) -> None:
    TRIED["configuration"] += 1
    root = tmp_path_factory.mktemp("cfg")
    (root / "pyproject.toml").write_bytes(content)
    before = snapshot(root)
    saved = {k: os.environ.pop(k, None) for k in ENV_NAMES}
    # The OS refuses NUL in the environment; such a value reaches load_config only through a mapping.
    os.environ.update({k: v for k, v in env.items() if "\x00" not in v})
    try:
        config = load_config(root)
    except NotebookOrchError as exc:
        assert str(exc)
    else:
        assert isinstance(config, ProjectConfig) and 0 < config.heartbeat_timeout_s <= 7 * 24 * 3600
        assert isinstance(config.store_url, str) and config.notebooks.is_absolute()
    finally:
        for k in ENV_NAMES:
            os.environ.pop(k, None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    assert snapshot(root) == before


# -- the command line ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small project with a store that holds runs and a schedule: what the fuzzed commands read."""
    root = tmp_path_factory.mktemp("cli")
    (root / "notebooks").mkdir()
    for name, cells in {
        "raw": ["%%asset raw --partitions daily:2013-01-01..2013-01-31\nraw = 1"],
        "clean": ["%%asset clean --deps raw --partitions daily:2013-01-01..2013-01-31\nclean = raw",
                  "%%asset report --deps clean[all]\nreport = 1"],
        "broken": ["%%asset broken --deps missing_one\nbroken = 1"],
    }.items():
        nb = new_notebook()
        nb.cells = [new_code_cell(c) for c in cells]
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n[tool.notebook_orch]\nheartbeat_timeout = 3600\n")
    from notebook_orch.store import open_store

    with open_store(f"sqlite:///{root}/.notebook_orch/store.db") as store:
        run = store.start_run(notebook="notebooks/raw.ipynb", targets=[("raw", "2013-01-01")], kind="manual")
        store.finalize_failure(run.run_id, error="ValueError: boom")
    assert _cli(root, "schedule", "add", "nightly", "--cron", "0 6 * * *", "--select", "raw")[0] == 0
    return root


def _cli(root: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["-C", str(root), *argv])
        except SystemExit as exc:  # argparse: --help (0) or a refused argument (2)
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


COMMANDS = {  # command words -> may it change the store when it succeeds
    ("validate",): False, ("status",): False, ("stale",): False, ("lineage",): False, ("runs",): False,
    ("materialize",): False, ("backfill",): False, ("auto",): False, ("schedule", "list"): False,
    ("schedule", "history"): False, ("schedule", "add"): True, ("schedule", "pause"): True,
    ("schedule", "resume"): True, ("schedule", "delete"): True, ("reap",): True,
}
OPTION_WORDS = ["--json", "--format", "--no-status", "--limit", "--status", "--asset", "--partition", "--from", "--to",
                "--downstream", "--only-stale", "--workers", "--retries", "--mode", "--timeout", "--executor",
                "--address", "--wait", "--cron", "--select", "--param", "--timezone", "--catchup", "--help", "-h",
                "preview", "--fro", "--lim"]
VALUES = st.one_of(NAMES, TRICKY, NUMBER_TEXT, date_text(), st.sampled_from([
    "*", "+clean", "raw+", "broken", "2013-01-01", "2013-01-31", "2013-02-01", "nightly", "0 6 * * *", "warm", "fresh",
    "json", "mermaid", "dot", "text", "svg", "html", "SUCCESS", "FAILED", "local", "inprocess", "dask", "latest",
    "{yesterday}", "all", "all:3", "none", "Europe/Paris", "Mars/Olympus", "k=v", "1=2"]))


@st.composite
def arguments(draw) -> list[str]:
    words = list(draw(st.sampled_from(sorted(COMMANDS))))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 2))
        words.append(draw(st.sampled_from(OPTION_WORDS)) if kind == 0 else draw(VALUES))
    if words[0] in ("materialize", "backfill"):
        words.append("--dry-run")  # the fuzz checks refusals and plans; running kernels is the other suites' job
    return words


@FUZZ
@given(argv=arguments())
def test_nbo_refuses_bad_arguments_with_a_message_and_changes_nothing(cli_project: Path, argv: list[str]) -> None:
    TRIED["nbo arguments"] += 1
    before = snapshot(cli_project)
    code, out, err = _cli(cli_project, *argv)
    assert code in (0, 1, 2), (argv, code)
    assert "Traceback" not in out + err, (argv, out, err)
    if code == 2:
        assert err.strip(), (argv, out)  # refused: says why
    writer = COMMANDS.get(tuple(argv[:2])) or COMMANDS.get(tuple(argv[:1]))
    if code != 0 or not writer or "--help" in argv or "-h" in argv:
        assert snapshot(cli_project) == before, argv
    if code == 0 and "--json" in argv and "--help" not in argv and "-h" not in argv and argv[0] != "lineage":
        json.loads(out)  # scripts can read it
