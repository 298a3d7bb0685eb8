"""Running again: retries of a flaky run, and a backfill that does only what is still missing or failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execution_helpers import asset_cell, make_project, materializations_of, nbo, open_project, read_value, runs_of

from notebook_orch.core.planning import PartitionSelection

pytestmark = pytest.mark.kernel

DAY = "2013-01-01"
DAYS = ("2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04")


def test_a_run_that_fails_once_is_retried_and_succeeds(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    make_project(tmp_path, {"flaky": [asset_cell("flaky_value", f"""
        import pathlib
        counter = pathlib.Path({str(counter)!r})
        n = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(n))
        if n == 1:
            raise RuntimeError("flaky: the first attempt fails")
        flaky_value = {{"attempt": n}}
    """, options="--retries 2")]})
    with open_project(tmp_path) as project:  # the declared --retries 2 applies: no retries= given
        report = project.materialize("flaky_value", partitions=PartitionSelection(keys=(DAY,)), workers=1)
        status = project.status()
    [outcome] = report.outcomes
    first, second = runs_of(tmp_path)
    assert (first.attempt, first.status, second.attempt, second.status) == (1, "FAILED", 2, "SUCCESS")
    assert first.error.endswith("RuntimeError: flaky: the first attempt fails")
    assert first.error_cell == 2 and Path(first.output_path).is_file() and Path(second.output_path).is_file()
    assert (outcome.status, outcome.attempts, outcome.run_ids, outcome.run_id) == (
        "SUCCESS", 2, (first.run_id, second.run_id), second.run_id)
    assert counter.read_text() == "2"  # no third attempt after the success
    assert read_value(tmp_path, "flaky_value", DAY) == {"attempt": 2}
    assert [m.run_id for m in materializations_of(tmp_path, "flaky_value", DAY)] == [second.run_id]
    assert status.status("flaky_value", DAY) == "FRESH"


def test_retries_give_up_after_the_last_attempt(tmp_path: Path) -> None:
    make_project(tmp_path, {"always": [asset_cell("always_fails", """
        raise ValueError("no luck")
        always_fails = 1
    """)]})
    code = nbo(tmp_path, "materialize", "always_fails", "--partition", DAY, "--retries", "1", "--json")
    assert code.returncode == 1
    [outcome] = json.loads(code.stdout)["outcomes"]
    runs = runs_of(tmp_path)
    assert [(r.attempt, r.status) for r in runs] == [(1, "FAILED"), (2, "FAILED")]
    assert (outcome["status"], outcome["attempts"], outcome["run_ids"]) == ("FAILED", 2, [r.run_id for r in runs])
    assert outcome["error"].endswith("ValueError: no luck")


def test_backfill_after_a_partial_failure_runs_only_the_failed_partition(tmp_path: Path) -> None:
    bad_days = tmp_path / "bad_days.json"
    make_project(tmp_path, {"daily": [asset_cell("day_value", f"""
        import json, pathlib
        if partition_key in json.loads(pathlib.Path({str(bad_days)!r}).read_text()):
            raise ValueError(f"bad input for {{partition_key}}")
        day_value = {{"day": partition_key}}
    """)]})
    bad_days.write_text(json.dumps([DAYS[2]]))
    span = ("--from", DAYS[0], "--to", DAYS[-1])

    first = nbo(tmp_path, "materialize", "day_value", *span, "--json")
    assert first.returncode == 1, first.stdout + first.stderr
    result = json.loads(first.stdout)
    assert result["ok"] is False and result["running_elsewhere"] == []
    assert [(o["partition"], o["status"]) for o in result["outcomes"]] == [
        (DAYS[0], "SUCCESS"), (DAYS[1], "SUCCESS"), (DAYS[2], "FAILED"), (DAYS[3], "SUCCESS")]
    assert len(runs_of(tmp_path)) == 4

    bad_days.write_text("[]")  # the input is fixed; the notebook (and its code version) is unchanged
    dry = nbo(tmp_path, "backfill", "day_value", *span, "--dry-run", check=True)
    assert dry.stdout == ("Would start 1 run for 1 asset partition:\n"
                          "  1. notebooks/daily.ipynb [2013-01-03] day_value\n"
                          "Skipped 3 fresh.\n")
    assert len(runs_of(tmp_path)) == 4

    again = nbo(tmp_path, "backfill", "day_value", *span)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1].endswith(": 1 success")
    runs = runs_of(tmp_path)
    assert len(runs) == 5
    assert (runs[-1].kind, runs[-1].partition_keys, runs[-1].status) == ("backfill", (DAYS[2],), "SUCCESS")
    assert read_value(tmp_path, "day_value", DAYS[2]) == {"day": DAYS[2]}
    with open_project(tmp_path) as project:
        assert project.status().partitions_with("day_value", "FRESH") == list(DAYS)

    done = nbo(tmp_path, "backfill", "day_value", *span, "--json", check=True)
    assert json.loads(done.stdout) == {"ok": True, "duration_s": 0.0, "outcomes": [], "running_elsewhere": [],
                                       "left_out": []}
    assert len(runs_of(tmp_path)) == 5
