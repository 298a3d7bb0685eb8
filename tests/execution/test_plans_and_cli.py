"""Before anything runs: missing upstream partitions, bad partition keys, ``--dry-run`` and ``--json``.

Errors must be clear, change nothing in the store or on disk, and exit with code 2 from the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execution_helpers import asset_cell, main_cli, make_project, open_project, read_value, runs_of

from notebook_orch.core.planning import PartitionSelection, PlanError

DAY = "2013-01-01"
NOTEBOOKS = {
    "upstream": [asset_cell("numbers", 'numbers = {"n": int(partition_key[-2:])}')],
    "downstream": [asset_cell("doubled", 'doubled = {"n2": numbers["n"] * 2}', deps="numbers")],
}


def assert_nothing_stored(root: Path) -> None:
    from notebook_orch.store import open_store

    with open_project(root) as project:
        store = open_store(project.config.store_url)
    try:
        assert store.list_runs(limit=10) == []
        assert store.last_event_id() == 0
        assert store.running() == {}
    finally:
        store.close()
    assert not (root / ".notebook_orch" / "data").exists()
    assert not (root / ".notebook_orch" / "runs").exists()


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    return make_project(tmp_path, NOTEBOOKS)


# -- an upstream partition that was never materialized ---------------------------------------------------------------
MISSING_UPSTREAM = (
    "doubled[2013-01-01] reads numbers[2013-01-01], which has never been materialized; materialize it first, or "
    "add it to the selection (e.g. '+doubled')."
)


def test_a_missing_upstream_partition_stops_the_plan_naming_it(project_root: Path) -> None:
    with open_project(project_root) as project, pytest.raises(PlanError) as caught:
        project.plan("doubled", partitions=PartitionSelection(keys=(DAY,)))
    assert caught.value.problems == [MISSING_UPSTREAM]
    code, out, err = main_cli(project_root, "materialize", "doubled", "--partition", DAY)
    assert (code, out, err) == (2, "", f"error: {MISSING_UPSTREAM}\n")
    assert_nothing_stored(project_root)


@pytest.mark.kernel
def test_with_plus_selection_the_upstream_is_planned_first_and_both_run(project_root: Path) -> None:
    with open_project(project_root) as project:
        plan = project.plan("+doubled", partitions=PartitionSelection(keys=(DAY,)))
        assert [(r.notebook, r.partition, r.assets, r.after) for r in plan.runs] == [
            ("notebooks/upstream.ipynb", DAY, ("numbers",), ()),
            ("notebooks/downstream.ipynb", DAY, ("doubled",), (0,)),
        ]
        report = project.materialize("+doubled", partitions=PartitionSelection(keys=(DAY,)), workers=2)
    assert [(o.status, o.assets) for o in report.outcomes] == [("SUCCESS", ("numbers",)), ("SUCCESS", ("doubled",))]
    assert [(r.assets, r.status) for r in runs_of(project_root)] == [(("numbers",), "SUCCESS"),
                                                                     (("doubled",), "SUCCESS")]
    assert read_value(project_root, "doubled", DAY) == {"n2": 2}


# -- bad partition keys -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--partition", "2014-06-01"],
     "Partition '2014-06-01' fits none of the selected assets (numbers: daily 2013-01-01..2013-01-31); pick a key "
     "in one of these ranges."),
    (["--partition", "../../etc"],
     "Partition key '../../etc' is path-like or empty; keys may not contain '/', '\\', '..' or start with '.'."),
    (["--partition", "..2013-01-01"],
     "Partition key '..2013-01-01' is path-like or empty; keys may not contain '/', '\\', '..' or start with '.'."),
    (["--partition", "2013-02-30"],
     "Partition '2013-02-30' fits none of the selected assets (numbers: daily 2013-01-01..2013-01-31); pick a key "
     "in one of these ranges. Time keys look like 2013-01-05 (a day), 2013-01 (a month) or 2013-01-05T06 (an "
     "hour)."),
    (["--from", "2013-01-05", "--to", "2013-01-01"],
     "The range --from 2013-01-05 --to 2013-01-01 is reversed: 2013-01-05 comes after 2013-01-01. Swap them."),
    (["--from", "2014-01-01", "--to", "2014-01-03"],
     "The range --from 2014-01-01 --to 2014-01-03 fits none of the selected assets (numbers: daily "
     "2013-01-01..2013-01-31); pick dates in one of them."),
], ids=["out-of-range", "path-like", "dot-dot-prefix", "not-a-date", "reversed", "range-out-of-range"])
def test_a_bad_partition_key_is_refused_with_exit_code_2_and_nothing_stored(
    project_root: Path, args: list[str], message: str
) -> None:
    code, out, err = main_cli(project_root, "materialize", "numbers", *args)
    assert (code, out, err) == (2, "", f"error: {message}\n")
    code, out, err = main_cli(project_root, "backfill", "numbers", "--dry-run", *args)
    assert (code, out, err) == (2, "", f"error: {message}\n")
    assert_nothing_stored(project_root)


# -- --dry-run and --json ---------------------------------------------------------------------------------------------
def test_dry_run_prints_exactly_the_runs_it_would_start_and_starts_none(project_root: Path) -> None:
    code, out, err = main_cli(project_root, "materialize", "numbers+", "--from", DAY, "--to", "2013-01-02",
                              "--dry-run")
    assert (code, err) == (0, "")
    assert out == (
        "Would start 4 runs for 4 asset partitions:\n"
        "  1. notebooks/upstream.ipynb [2013-01-01] numbers\n"
        "  2. notebooks/upstream.ipynb [2013-01-02] numbers\n"
        "  3. notebooks/downstream.ipynb [2013-01-01] doubled  (after 1)\n"
        "  4. notebooks/downstream.ipynb [2013-01-02] doubled  (after 2)\n"
    )
    assert_nothing_stored(project_root)


def test_dry_run_json_parses_and_matches_the_plan(project_root: Path) -> None:
    code, out, err = main_cli(project_root, "materialize", "numbers+", "--partition", DAY, "--dry-run", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "runs": [
            {"notebook": "notebooks/upstream.ipynb", "partition": DAY, "assets": ["numbers"], "after": []},
            {"notebook": "notebooks/downstream.ipynb", "partition": DAY, "assets": ["doubled"], "after": [0]},
        ],
        "skipped": [],
        "pulled_in": [],
        "left_out": [],
    }
    assert_nothing_stored(project_root)


def test_bad_usage_of_the_run_options_exits_2_before_anything_runs(project_root: Path) -> None:
    with pytest.raises(SystemExit) as refused:  # argparse refuses it while parsing, before the project is read
        main_cli(project_root, "materialize", "numbers", "--workers", "0")
    assert refused.value.code == 2
    assert main_cli(project_root, "materialize", "numbers", "--partition", DAY, "--from", DAY) == (
        2, "", "error: give --partition or --from/--to, not both\n")
    code, _, err = main_cli(project_root, "materialize", "numbrs", "--dry-run")
    assert (code, err) == (2, "error: No asset named 'numbrs' in the project. Did you mean 'numbers'?\n")
    assert_nothing_stored(project_root)


def test_the_example_dry_run_says_why_a_month_of_days_is_pulled_in(tmp_path: Path) -> None:
    """Three days asked for; the monthly roll-up's January overlaps them and reads every day of January."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[2] / "notebooks", tmp_path / "notebooks")
    args = ("materialize", "*", "--from", "2013-01-01", "--to", "2013-01-03", "--dry-run")
    code, out, err = main_cli(tmp_path, *args)
    assert (code, err) == (0, "")
    assert out.startswith("Would start 95 runs for 98 asset partitions:\n")
    why = out[out.index("Also runs"):].splitlines()
    assert why == [
        "Also runs 84 upstream partitions outside what was asked, because planned partitions read them:",
        "  28 partitions of delays_daily (2013-01-04..2013-01-31) pulled in by delays_monthly 2013-01 (a monthly "
        "asset reads every day of its month)",
        "  28 partitions of flights_daily (2013-01-04..2013-01-31) pulled in by delays_daily 2013-01-04..2013-01-31 "
        "(each partition reads the upstream partition of the same key)",
        "  28 partitions of weather_daily (2013-01-04..2013-01-31) pulled in by delays_daily 2013-01-04..2013-01-31 "
        "(each partition reads the upstream partition of the same key)",
    ]
    code, out, err = main_cli(tmp_path, *args, "--json")
    pulled = json.loads(out)["pulled_in"]
    assert pulled[0] == {
        "asset": "delays_daily", "partitions": [f"2013-01-{d:02d}" for d in range(4, 32)], "count": 28,
        "by": "delays_monthly", "by_partitions": ["2013-01"], "dependency": "delays_daily",
        "reason": "a monthly asset reads every day of its month", "text": why[1].strip()}
    assert not (tmp_path / ".notebook_orch" / "runs").exists()
