"""The one %%asset parser."""

import pytest

from notebook_orch.core.partitions import TimeWindowPartitions
from notebook_orch.core.specs import (
    HELP,
    AllPartitions,
    DepSpec,
    Identity,
    Offset,
    Window,
    parse_declaration,
    split_asset_cell,
)
from notebook_orch.errors import DeclarationError


def test_full_declaration():
    spec = parse_declaration(
        '%%asset sales --deps a,b[-1],c[-6:0],d[all] --partitions daily:2013-01-01..2013-12-31 '
        '--check "len(sales) > 0" --check "sales.x.notna().all()" --retries 2 --schedule "0 6 * * *" --auto '
        '--sla 09:30 --io parquet --code-version v7 --owner ana --description "Daily sales"',
        notebook="nb.ipynb", cell=3,
    )
    assert spec.name == "sales"
    assert spec.deps == (DepSpec("a", Identity()), DepSpec("b", Offset(-1)), DepSpec("c", Window(-6, 0)),
                         DepSpec("d", AllPartitions()))
    assert isinstance(spec.partitions, TimeWindowPartitions) and spec.partitions.count() == 365
    assert spec.checks == ("len(sales) > 0", "sales.x.notna().all()")
    assert (spec.retries, spec.schedule, spec.auto, spec.sla.at.isoformat(), spec.sla.tz, spec.io) == (
        2, "0 6 * * *", True, "09:30:00", "UTC", "parquet")
    assert (spec.code_version, spec.owner, spec.description) == ("v7", "ana", "Daily sales")
    assert (spec.notebook, spec.cell_index) == ("nb.ipynb", 3)
    assert spec.deps_signature == "a,b[-1],c[-6:0],d[all]"


@pytest.mark.parametrize(
    "line, match",
    [
        ("%%asset", "NAME is missing"),
        ("%%asset 1abc", "not a Python identifier"),
        ("%%asset class", "not a Python identifier"),
        ("%%asset ../x", "path-like"),
        ("%%asset a --bogus 1", "unrecognized arguments: --bogus"),
        ("%%asset a --deps b[x]", "not an offset, a window or 'all'"),
        ("%%asset a --deps b[0:-3]", "reversed"),
        ("%%asset a --deps a", "lists itself"),
        ("%%asset a --deps b,b", "twice"),
        ("%%asset a --deps ../b", "path-like"),
        ("%%asset a --partitions daily:2013-12-31..2013-01-01", "reversed"),
        ("%%asset a --retries -1", "expected a whole number from 0 to 100"),
        ("%%asset a --check 'len(a) >'", "not a Python expression"),
        ("%%asset a --schedule 'every day'", "not a valid cron expression"),
        ("%%asset a --sla 25:00", "not a time of day"),
        ("%%asset a --io csv", "invalid choice: 'csv'"),
        ("%%asset a --description 'unclosed", "check the quotes"),
        ("%%asset a --deps b,c --trigger 'b & (c'", "--trigger 'b & \\(c': '\\)' is missing at position 6"),
        ("%%asset a --deps b,c --trigger 'b ; c'", "has ';' at position 2"),
        ("%%asset a --deps sales_raw --trigger sales_rw", "not among its dependencies.*Did you mean 'sales_raw'"),
        ("%%asset a --trigger b", "declares --trigger 'b' but no --deps"),
        ("%%asset a --marker DONE", "--marker 'DONE' needs --source PATH"),
        ("%%asset a --deps b --auto --source x", "observed, never run, so it cannot take --deps, --auto"),
        ("%%asset a --partitions daily:2024-01-01 --source in/", "has no {partition}"),
        ("%%asset a --source 'in/{partition}'", "has {partition} but the asset has no --partitions"),
        ("%%asset a --source 'in/{day}'", "the only placeholder is {partition}"),
        ("%%asset a --source in --marker ../x", "--marker '../x' is not a file name"),
    ],
)
def test_bad_declarations_name_the_cell(line, match):
    with pytest.raises(DeclarationError, match=match) as info:
        parse_declaration(line, notebook="nb.ipynb", cell=4)
    assert info.value.problem.notebook == "nb.ipynb" and info.value.problem.cell == 4
    assert str(info.value).startswith("nb.ipynb, cell 5: ")  # counted from 1, as JupyterLab shows cells


def test_help_lists_every_option():
    for option in ["--deps", "--partitions", "--check", "--retries", "--schedule", "--auto", "--trigger", "--sla",
                   "--io",
                   "--code-version", "--owner", "--description"]:
        assert option in HELP


def test_trigger_is_kept_and_makes_the_asset_automated():
    spec = parse_declaration("%%asset r --deps a,b,c --trigger 'a & (b | c)'")
    assert (spec.trigger, spec.auto) == ("a & (b | c)", True)
    assert parse_declaration("%%asset r --deps a").trigger is None


def test_source_declaration():
    spec = parse_declaration('%%asset raw --partitions daily:2024-01-01 --source "/landing/{partition}/"')
    assert (spec.source_path, spec.marker) == ("/landing/{partition}/", "_SUCCESS")
    assert parse_declaration("%%asset raw --source in --marker DONE").marker == "DONE"


def test_split_asset_cell():
    assert split_asset_cell("%%asset a --deps b\nx = 1") == ("%%asset a --deps b", "x = 1")
    assert split_asset_cell("%%assets a\n") is None
    assert split_asset_cell("x = 1") is None
