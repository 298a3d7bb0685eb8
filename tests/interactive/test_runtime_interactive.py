"""``%%asset`` in an interactive session: what the user sees, what the store and value storage hold afterwards.

Real IPython shells with the extension loaded, a real SQLite store and real value files (fixtures in conftest).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import date

import pandas as pd
import pytest
from interactive_helpers import CELLS, DAILY, ProjectDir, Session, cell_index
from IPython.core.error import UsageError
from pandas.testing import assert_frame_equal

from notebook_orch import Project
from notebook_orch.errors import DeclarationError, PartitionLocked, RunFailed, ValueStorageError
from notebook_orch.storage import SUCCESS
from notebook_orch.store.records import CANCELED, FAILED
from notebook_orch.store.records import SUCCESS as RUN_SUCCESS


def raw_frame(key: str, *, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"day": [key] * 3, "x": [offset, offset + 1, offset + 2], "y": [1.0, None, 3.0]})


def published(project: ProjectDir, asset: str) -> list[str]:
    """Every ``_SUCCESS`` marker under the asset's folder (published versions), relative to the data dir."""
    folder = project.config.data_dir / asset
    return sorted(str(p.relative_to(project.config.data_dir)) for p in folder.rglob(SUCCESS)) if folder.exists() else []


def debris(project: ProjectDir) -> list[str]:
    """Temporary or unmarked folders left in value storage (a failed run must leave none)."""
    data = project.config.data_dir
    if not data.exists():
        return []
    return sorted(
        str(p.relative_to(data)) for p in data.glob("*/*/*") if p.name.startswith(".") or not (p / SUCCESS).exists()
    )


# -- 1. a materialization ----------------------------------------------------------------------------------------
def test_asset_cell_materializes_with_summary_run_and_metadata(session: Session, project: ProjectDir) -> None:
    summary = session.asset("raw", "2013-01-02")

    assert re.fullmatch(r"raw\[2013-01-02\]: 3 rows x 3 columns in \d+\.\d\d s, checks 2/2 passed", summary), summary
    store = project.store()
    (run,) = store.list_runs()
    assert (run.kind, run.status, run.assets, run.partition_keys) == ("interactive", RUN_SUCCESS, ("raw",),
                                                                      ("2013-01-02",))
    assert run.notebook == "notebooks/pipeline.ipynb"
    mat = store.latest_materialization("raw", "2013-01-02")
    assert mat is not None and mat.run_id == run.run_id
    assert mat.row_count == 3
    assert mat.schema == {c: str(t) for c, t in raw_frame("2013-01-02").dtypes.items()}  # day: str or object
    assert (mat.schema["x"], mat.schema["y"]) == ("int64", "float64")
    assert mat.null_rates == {"day": 0.0, "x": 0.0, "y": pytest.approx(1 / 3)}
    assert [(c.expr, c.passed) for c in mat.checks] == [("len(raw) == 3", True), ("raw.x.min() >= 0", True)]
    assert mat.inputs == ()
    assert mat.io == "parquet"
    assert mat.code_version == Project(project.root).graph.spec("raw").code_version
    assert_frame_equal(project.values().load(mat.storage_path), raw_frame("2013-01-02"))
    assert len(published(project, "raw")) == 1
    store.close()


def test_lineage_records_exactly_the_upstream_materializations_consumed(session: Session,
                                                                         project: ProjectDir) -> None:
    for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
        session.asset("raw", day)
    session.asset("rolling", "2013-01-03")

    store = project.store()
    raws = {d: store.latest_materialization("raw", d) for d in ("2013-01-01", "2013-01-02", "2013-01-03")}
    mat = store.latest_materialization("rolling", "2013-01-03")
    assert mat is not None
    assert [(i.asset, i.partition, i.materialization_id, i.data_version) for i in mat.inputs] == [
        ("raw", d, raws[d].id, raws[d].data_version) for d in ("2013-01-01", "2013-01-02", "2013-01-03")
    ]
    assert mat.deps_signature == "raw[-2:0]"
    store.close()


def test_summary_names_only_downstream_partitions_that_were_materialized(session: Session) -> None:
    """A downstream never built was MISSING and still is: it did not 'become stale'."""
    first = session.asset("raw", "2013-01-02")
    assert "stale" not in first  # nothing downstream exists yet

    session.asset("clean", "2013-01-02")
    session.ok("OFFSET = 1")
    second = session.asset("raw", "2013-01-02")
    assert second.endswith("; now stale downstream: clean[2013-01-02]"), second


# -- 2. upstream values arrive by name ----------------------------------------------------------------------------
def test_identity_dependency_gets_the_same_partition(session: Session) -> None:
    session.asset("raw", "2013-01-02")
    session.asset("raw", "2013-01-03")
    session.asset("clean", "2013-01-02")
    assert_frame_equal(session.ns["raw"], raw_frame("2013-01-02"))
    assert_frame_equal(session.ns["clean"], raw_frame("2013-01-02").dropna())


def test_window_dependency_is_concatenated_in_partition_order(session: Session) -> None:
    for day in ("2013-01-03", "2013-01-01", "2013-01-02", "2013-01-04"):  # materialized out of order
        session.asset("raw", day)
    session.asset("rolling", "2013-01-03")
    expected = pd.concat([raw_frame(d) for d in ("2013-01-01", "2013-01-02", "2013-01-03")], ignore_index=True)
    assert_frame_equal(session.ns["raw"], expected)
    assert session.ns["rolling"]["rows"].tolist() == [9] * 9


def test_window_at_the_first_partition_reads_what_exists(session: Session) -> None:
    session.asset("raw", "2013-01-01")
    session.asset("rolling", "2013-01-01")
    assert_frame_equal(session.ns["raw"], raw_frame("2013-01-01"))


def test_offset_before_the_first_partition_binds_none(session: Session, project: ProjectDir) -> None:
    summary = session.asset("prev", "2013-01-01")
    assert summary.startswith("prev[2013-01-01]: value in")
    assert session.ns["raw"] is None and session.ns["prev"] == "nothing"
    mat = project.store().latest_materialization("prev", "2013-01-01")
    assert mat is not None and mat.inputs == ()


def test_offset_reads_the_previous_partition(session: Session) -> None:
    session.asset("raw", "2013-01-01")
    session.asset("prev", "2013-01-02")
    assert_frame_equal(session.ns["raw"], raw_frame("2013-01-01"))


def test_all_over_daily_concatenates_the_materialized_partitions(session: Session, project: ProjectDir) -> None:
    for day in ("2013-01-05", "2013-01-02"):
        session.asset("raw", day)
    session.asset("summary")
    expected = pd.concat([raw_frame("2013-01-02"), raw_frame("2013-01-05")], ignore_index=True)
    assert_frame_equal(session.ns["raw"], expected)
    mat = project.store().latest_materialization("summary", "unpartitioned")
    assert [i.partition for i in mat.inputs] == ["2013-01-02", "2013-01-05"]


def test_all_with_nothing_materialized_says_so(session: Session, project: ProjectDir) -> None:
    result = session.cell("summary")
    assert not result.success and type(result.error_in_exec) is RunFailed
    assert "reads raw[all], but no partition of 'raw' is materialized yet" in str(result.error_in_exec)
    assert published(project, "summary") == []


def test_monthly_over_daily_reads_every_day_of_the_month(session: Session, project: ProjectDir) -> None:
    days = [f"2013-01-{d:02d}" for d in range(1, 32)]
    for day in days:
        session.asset("raw", day)
    summary = session.asset("monthly", "2013-01")
    assert summary.startswith("monthly[2013-01]: 93 rows x 3 columns")
    assert session.ns["raw"]["day"].unique().tolist() == days
    mat = project.store().latest_materialization("monthly", "2013-01")
    assert [i.partition for i in mat.inputs] == days


def test_monthly_over_daily_names_the_missing_days(session: Session) -> None:
    session.asset("raw", "2013-01-01")
    result = session.run("%nbo partition 2013-01\n")
    assert result.success
    result = session.cell("monthly")
    assert not result.success and isinstance(result.error_in_exec, RunFailed)
    assert "raw[2013-01-02, 2013-01-03, 2013-01-04, 2013-01-05, 2013-01-06 and 25 more]" in str(result.error_in_exec)


def test_unpartitioned_upstream_arrives_as_its_value(session: Session) -> None:
    session.asset("config")
    session.asset("raw", "2013-01-02")
    session.asset("scaled", "2013-01-02")
    assert session.ns["config"] == {"scale": 10}
    assert session.ns["scaled"]["x"].tolist() == [0, 10, 20]


def test_non_dataframe_window_arrives_as_dict_by_partition(session: Session, project: ProjectDir) -> None:
    session.asset("counts", "2013-01-01")
    session.asset("counts", "2013-01-02")
    session.asset("count_window", "2013-01-02")
    expected = {"2013-01-01": {"day": "2013-01-01", "n": 3}, "2013-01-02": {"day": "2013-01-02", "n": 3}}
    assert session.ns["counts"] == expected
    assert list(session.ns["counts"]) == ["2013-01-01", "2013-01-02"]
    mat = project.store().latest_materialization("count_window", "2013-01-02")
    assert mat.io == "json" and project.values().load(mat.storage_path) == expected


def test_inputs_come_from_the_session_cache_without_reading_storage(session: Session,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
        session.asset("raw", day)
    loads: list[str] = []
    store_cls = type(session.runtime.values())
    original = store_cls.load
    monkeypatch.setattr(store_cls, "load", lambda self, ref: loads.append(str(ref)) or original(self, ref))
    session.asset("rolling", "2013-01-03")
    assert loads == []
    assert len(session.ns["raw"]) == 9


def test_a_fresh_shell_loads_inputs_from_storage(new_session: Callable[[], Session],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = new_session()
    for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
        first.asset("raw", day)
    first.asset("config")
    first.asset("counts", "2013-01-02")
    first.asset("counts", "2013-01-03")

    second = new_session()
    assert second.runtime.cache == {}
    loads: list[str] = []
    store_cls = type(second.runtime.values())
    original = store_cls.load
    monkeypatch.setattr(store_cls, "load", lambda self, ref: loads.append(str(ref)) or original(self, ref))
    second.asset("rolling", "2013-01-03")
    expected = pd.concat([raw_frame(d) for d in ("2013-01-01", "2013-01-02", "2013-01-03")], ignore_index=True)
    assert_frame_equal(second.ns["raw"], expected)
    assert len(loads) == 3
    second.asset("scaled", "2013-01-02")
    assert second.ns["config"] == {"scale": 10}
    second.asset("count_window", "2013-01-03")
    assert second.ns["counts"] == {"2013-01-02": {"day": "2013-01-02", "n": 3},
                                   "2013-01-03": {"day": "2013-01-03", "n": 3}}
    assert len(loads) == 3 + 1 + 2  # raw[2013-01-02] came from this session's cache the second time


def test_mutating_a_value_in_place_does_not_change_what_downstream_reads(session: Session) -> None:
    """The session cache is filed by data version: what it hands out must still be that data."""
    session.asset("raw", "2013-01-02")
    session.ok("raw.loc[0, 'x'] = 999")  # the user pokes at the value they just built
    session.ok("%%asset clean --deps raw --partitions " + DAILY + "\nraw.loc[1, 'x'] = -5\nclean = raw.dropna()")
    assert session.ns["raw"]["x"].tolist() == [0, -5, 2]  # the cell saw the stored data, then changed its copy
    session.asset("clean", "2013-01-02")
    assert_frame_equal(session.ns["raw"], raw_frame("2013-01-02"))
    assert_frame_equal(session.ns["clean"], raw_frame("2013-01-02").dropna())


def test_mutating_a_dict_value_in_place_does_not_leak_into_the_cache(session: Session) -> None:
    session.asset("config")
    session.ok("config['scale'] = -1")
    session.asset("raw", "2013-01-02")
    session.asset("scaled", "2013-01-02")
    assert session.ns["config"] == {"scale": 10}


# -- 3. partition_key and partition_date ----------------------------------------------------------------------------
def test_partition_key_and_date_are_in_the_namespace(session: Session) -> None:
    session.asset("seen_day", "2013-01-07")
    assert session.ns["seen_day"] == {"key": "2013-01-07", "date": "2013-01-07", "type": "date"}
    assert session.ns["partition_key"] == "2013-01-07"
    assert session.ns["partition_date"] == date(2013, 1, 7)

    session.asset("seen", "eu")  # static partitions have a key but no date: no stale date lingers
    assert session.ns["seen"] == {"key": "eu", "date": "None"}
    assert "partition_date" not in session.ns


def test_partitioned_asset_without_a_chosen_partition_says_how_to_choose(session: Session,
                                                                          project: ProjectDir) -> None:
    session.asset("config")  # leaves partition_key = 'unpartitioned' behind, which is no choice
    result = session.cell("raw")
    # nothing ran, so it is a usage error (one line), not a failed run
    assert not result.success and type(result.error_in_exec) is UsageError
    message = str(result.error_in_exec)
    assert "choose the partition first with '%nbo partition KEY', e.g. %nbo partition 2013-01-01" in message
    assert [r.assets for r in project.store().list_runs()] == [("config",)]


def test_partition_key_set_by_hand_is_used(session: Session) -> None:
    session.ok("partition_key = '2013-01-09'")
    assert session.asset("raw").startswith("raw[2013-01-09]")


# -- 4. failures change nothing visible -----------------------------------------------------------------------------
def test_body_that_raises_fails_the_run_and_chains_the_cause(session: Session, project: ProjectDir) -> None:
    session.ok("FAIL = True")
    result = session.cell("fragile")

    assert not result.success
    error = result.error_in_exec
    assert type(error) is RunFailed
    assert isinstance(error.__cause__, ValueError) and str(error.__cause__) == "boom from user code"
    assert (error.asset, error.partition, error.cell) == ("fragile", "unpartitioned", cell_index("fragile"))
    assert "fragile[unpartitioned] failed in notebooks/pipeline.ipynb" in str(error)
    # The user's own traceback is shown (their frame and line), then the one-line summary.
    assert "raise ValueError('boom from user code')" in session.stdout
    assert "runtime.py" not in session.stdout and "magics.py" not in session.stdout
    assert session.stdout.rstrip().endswith(f"RunFailed: {error}")

    store = project.store()
    (run,) = store.list_runs()
    assert (run.status, run.kind, run.error_cell) == (FAILED, "interactive", cell_index("fragile"))
    assert "ValueError: boom from user code" in run.error
    assert store.latest_materialization("fragile", "unpartitioned") is None
    assert store.running() == {}
    assert published(project, "fragile") == [] and debris(project) == []
    assert "fragile" not in session.ns


def test_body_with_a_syntax_error_shows_the_line(session: Session, project: ProjectDir) -> None:
    result = session.run("%%asset config\nscale = 10\nconfig = = {'scale': scale}")  # edited, unsaved, broken
    assert not result.success and type(result.error_in_exec) is RunFailed
    assert isinstance(result.error_in_exec.__cause__, SyntaxError)
    # line 3 as JupyterLab counts: the %%asset line is line 1
    assert str(result.error_in_exec).endswith("SyntaxError: invalid syntax (line 3 of the cell)")
    assert "config = = {'scale': scale}" in session.stdout and "codeop" not in session.stdout
    assert project.store().list_runs()[0].status == FAILED


def test_failed_check_publishes_nothing_and_records_the_results(session: Session, project: ProjectDir) -> None:
    session.asset("raw", "2013-01-02")
    session.asset("clean", "2013-01-02")
    before = project.store().latest_materialization("raw", "2013-01-02")

    session.ok("N_ROWS = 2")
    result = session.cell("raw")
    assert not result.success and type(result.error_in_exec) is RunFailed
    assert "1 of 2 check(s) failed: 'len(raw) == 3' (evaluated to False). Nothing was published." in str(
        result.error_in_exec)

    store = project.store()
    failed = store.list_runs(status=FAILED)
    assert len(failed) == 1
    assert [(c.expr, c.passed) for c in failed[0].checks] == [("len(raw) == 3", False), ("raw.x.min() >= 0", True)]
    assert store.latest_materialization("raw", "2013-01-02") == before  # the last good data is still the latest
    assert len(published(project, "raw")) == 1 and debris(project) == []
    report = Project(project.root).status()
    # A failed attempt over a value leaves that value's status, with a note of the attempt.
    assert report.status("raw", "2013-01-02") == "FRESH"
    assert report.explain("raw", "2013-01-02").notes == (
        f"the last attempt (run {failed[0].run_id}) failed; the value shown is from an earlier run",)
    causes = [c.kind for c in report.explain("clean", "2013-01-02").causes]
    assert "upstream_data_changed" not in causes  # its input data did not change


def test_check_that_raises_counts_as_failed_with_the_reason(session: Session, project: ProjectDir) -> None:
    result = session.run("%%asset config --check 'config.scale > 0'\nconfig = {'scale': 10}")
    assert not result.success
    assert "'config.scale > 0' (raised AttributeError: 'dict' object has no attribute 'scale')" in str(
        result.error_in_exec)
    assert published(project, "config") == [] and debris(project) == []


def test_cell_that_does_not_assign_the_name_fails_clearly(session: Session, project: ProjectDir) -> None:
    result = session.run("%%asset config\nconfg = {'scale': 10}")  # a typo, not saved yet
    assert not result.success and type(result.error_in_exec) is RunFailed
    assert ("did not assign a variable named 'config'; end the cell with 'config = ...'"
            in str(result.error_in_exec))
    assert project.store().list_runs()[0].status == FAILED
    assert published(project, "config") == []


def test_missing_upstream_partition_is_named(session: Session, project: ProjectDir) -> None:
    session.asset("raw", "2013-01-03")
    session.ok("%nbo partition 2013-01-03")
    result = session.cell("rolling")
    assert not result.success and type(result.error_in_exec) is RunFailed
    message = str(result.error_in_exec)
    assert "rolling[2013-01-03] reads raw[2013-01-01, 2013-01-02], which are not materialized" in message
    assert project.store().latest_materialization("rolling", "2013-01-03") is None
    assert published(project, "rolling") == []


def test_asset_not_in_any_saved_notebook_runs_as_new(session: Session, project: ProjectDir) -> None:
    out = session.ok("%%asset rawr\nrawr = 1").strip()
    assert out.startswith("rawr[unpartitioned]: value in ") and out.endswith("(new: not in any saved notebook yet)")
    assert [r.assets for r in project.store().list_runs()] == [("rawr",)]


@pytest.mark.parametrize("key, says", [
    ("2014-01-01", "out of range"),
    ("2013-01-01T05", "is not a daily key"),
    ("../../etc", "path-like"),
])  # fmt: skip
def test_bad_partition_key_in_the_namespace_runs_nothing(session: Session, project: ProjectDir, key: str,
                                                         says: str) -> None:
    session.ns["partition_key"] = key
    result = session.cell("raw")
    assert not result.success and type(result.error_in_exec) is UsageError  # nothing ran: not a failed run
    assert says in str(result.error_in_exec) and "Asset 'raw'" in str(result.error_in_exec)
    assert project.store().list_runs() == []
    assert not (project.config.data_dir / "raw").exists()
    assert not (project.root.parent / "etc").exists()


def test_value_that_needs_pickle_is_refused_without_io_pickle(session: Session, project: ProjectDir) -> None:
    result = session.cell("loose")
    assert not result.success and isinstance(result.error_in_exec, ValueStorageError)
    assert "--io pickle" in str(result.error_in_exec)
    (run,) = project.store().list_runs()
    assert run.status == FAILED and "ValueStorageError" in run.error
    assert published(project, "loose") == [] and debris(project) == []


def test_io_pickle_stores_and_loads_back(session: Session, project: ProjectDir) -> None:
    assert session.asset("blob").startswith("blob[unpartitioned]: 3 rows in")
    mat = project.store().latest_materialization("blob", "unpartitioned")
    assert mat.io == "pickle" and project.values().load(mat.storage_path) == {1, 2, 3}


def test_keyboard_interrupt_cancels_the_run(session: Session, project: ProjectDir) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    session.ns["HOOK"] = interrupt
    result = session.cell("hooked")
    assert not result.success and isinstance(result.error_in_exec, KeyboardInterrupt)
    store = project.store()
    (run,) = store.list_runs()
    assert run.status == CANCELED and store.running() == {}


def test_second_run_of_a_held_partition_is_told_who_holds_it(session: Session, project: ProjectDir) -> None:
    store = project.store()
    holder = store.start_run(notebook=None, targets=[("raw", "2013-01-02")], kind="manual")
    session.ok("%nbo partition 2013-01-02")
    result = session.cell("raw")
    assert not result.success and isinstance(result.error_in_exec, PartitionLocked)
    assert holder.run_id in str(result.error_in_exec)
    assert published(project, "raw") == []


# -- 5. staleness after rematerializing ----------------------------------------------------------------------------
def test_identical_data_leaves_downstream_fresh(session: Session, project: ProjectDir) -> None:
    session.asset("raw", "2013-01-02")
    session.asset("clean", "2013-01-02")
    again = session.asset("raw", "2013-01-02")
    assert again.endswith("; data unchanged, nothing downstream went stale"), again
    assert Project(project.root).status().status("clean", "2013-01-02") == "FRESH"
    assert len(project.store().materializations("raw", "2013-01-02")) == 2


def test_changed_data_makes_downstream_stale_with_the_cause(session: Session, project: ProjectDir) -> None:
    for day in ("2013-01-01", "2013-01-02"):
        session.asset("raw", day)
    session.asset("clean", "2013-01-02")
    session.asset("rolling", "2013-01-02")
    session.ok("OFFSET = 1")
    changed = session.asset("raw", "2013-01-02")
    assert changed.endswith("; now stale downstream: clean[2013-01-02], rolling[2013-01-02]"), changed
    report = Project(project.root).status()
    for asset in ("clean", "rolling"):
        explained = report.explain(asset, "2013-01-02")
        assert explained.status == "STALE"
        assert [c.kind for c in explained.causes] == ["upstream_data_changed"]


def test_edited_cell_run_then_saved_is_fresh(session: Session, project: ProjectDir) -> None:
    """Run an edited cell, then save the notebook: the asset must not look code-changed."""
    edited = "%%asset config\nconfig = {'scale': 10, 'unit': pd.Timestamp('2013-01-01').year}"
    assert session.ok(edited).startswith("config[unpartitioned]: 2 rows in")
    project.save({**CELLS, "config": edited})
    explained = Project(project.root).status().explain("config", "unpartitioned")
    assert (explained.status, explained.causes) == ("FRESH", ())


def test_edited_checks_run_before_saving(session: Session, project: ProjectDir) -> None:
    result = session.run("%%asset config --check 'config[\"scale\"] > 100'\nconfig = {'scale': 10}")
    assert not result.success and "check(s) failed" in str(result.error_in_exec)
    assert published(project, "config") == []


def test_edited_dependency_on_an_unknown_asset_is_refused(session: Session, project: ProjectDir) -> None:
    result = session.run("%%asset config --deps rwa\nconfig = {'scale': 10}")
    assert not result.success and type(result.error_in_exec) is DeclarationError  # nothing ran: not a failed run
    assert session.stdout.strip() == f"DeclarationError: {result.error_in_exec}"
    assert "Asset 'config' depends on 'rwa', which no asset declares" in str(result.error_in_exec)
    assert "Did you mean 'raw'?" in str(result.error_in_exec)
    assert project.store().list_runs() == []


# -- 8. secrets -----------------------------------------------------------------------------------------------------
TOKEN = "tok-3f9a1c77e2b54d0c"


def stored_bytes(project: ProjectDir) -> bytes:
    """Every byte notebook_orch keeps for the project: the store (with its WAL) and every value file."""
    state = project.root / ".notebook_orch"
    return b"".join(p.read_bytes() for p in sorted(state.rglob("*")) if p.is_file())


def test_secret_used_by_an_asset_is_stored_nowhere(session: Session, project: ProjectDir,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBO_TEST_TOKEN", TOKEN)
    out = session.asset("secured")
    assert out.startswith("secured[unpartitioned]: 1 rows x 1 columns")
    assert session.ns["secured"]["token_length"].tolist() == [len(TOKEN)]
    session.ok("token")  # displaying it by accident
    assert TOKEN not in session.stdout and "Secret('NBO_TEST_TOKEN')" in session.stdout

    session.ok("FAIL = True")
    result = session.cell("secured")  # the error message quotes the token
    assert not result.success
    assert TOKEN not in str(result.error_in_exec) and "<secret NBO_TEST_TOKEN>" in str(result.error_in_exec)
    assert "login refused for <secret NBO_TEST_TOKEN>" in session.stdout  # the user's traceback, redacted
    assert TOKEN not in session.stdout
    Project(project.root).status()
    session.ok("%nbo runs")
    assert TOKEN not in session.stdout

    assert TOKEN.encode() not in stored_bytes(project)
    assert project.store().list_runs(status=FAILED)[0].error.endswith("login refused for <secret NBO_TEST_TOKEN>")


def test_missing_secret_fails_the_cell_naming_the_variable(session: Session, project: ProjectDir,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBO_TEST_TOKEN", raising=False)
    result = session.cell("secured")
    assert not result.success and type(result.error_in_exec) is RunFailed
    assert "Secret 'NBO_TEST_TOKEN' is not set: export NBO_TEST_TOKEN=..." in str(result.error_in_exec)
    assert published(project, "secured") == []


# -- heartbeats of long interactive cells ------------------------------------------------------------------------
def test_long_cell_keeps_its_run_alive(session: Session, project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell running longer than the heartbeat timeout is not reaped by another process's ``nbo status``."""
    monkeypatch.setenv("NBO_HEARTBEAT_TIMEOUT", "0.4")
    reaped: list = []

    def long_cell() -> int:
        other = Project(project.root)  # as a terminal would: its own connection
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            reaped.extend(other.reap())
            time.sleep(0.1)
        other.close()
        return 1

    session.runtime.close()  # pick up the new timeout
    session.ns["HOOK"] = long_cell
    summary = session.asset("hooked")
    assert summary.startswith("hooked[unpartitioned]: value in")
    assert reaped == []
    assert project.store().list_runs()[0].status == RUN_SUCCESS
    # The heartbeat thread outlives the cell for one interval (so the next cell need not start one) but beats
    # for no run any more.
    assert all(not t.runs for t in threading.enumerate() if t.name.startswith("nbo-heartbeat"))


# -- the same engine inside a papermill run (the executor injected nbo_run) -----------------------------------------
def run_context(project: ProjectDir, tmp_dir, *, assets: tuple[str, ...], partition: str) -> dict:
    """What the executor injects, with the context file the worker writes (the same functions make it)."""
    from notebook_orch import Project
    from notebook_orch.engine.inputs import write_run_context
    from notebook_orch.engine.runner import asset_contexts
    from notebook_orch.project import utcnow

    context = tmp_dir / f"context-{partition}.json"
    with Project(project.root) as proj:
        write_run_context(context, store=proj.store, run_id="run-in-kernel-1", partition=partition,
                          notebook="notebooks/pipeline.ipynb", data_dir=str(proj.config.data_dir),
                          assets=asset_contexts(proj.graph, assets, partition, now=utcnow()))
    return {"run_id": "run-in-kernel-1", "project_root": str(project.root), "notebook": "notebooks/pipeline.ipynb",
            "partition_key": partition, "assets": list(assets), "code_versions": {},
            "manifest": str(tmp_dir / "manifest.jsonl"), "context": str(context)}


def test_in_a_run_the_cell_publishes_to_the_manifest_not_the_store(session: Session, project: ProjectDir,
                                                                   tmp_path) -> None:
    from notebook_orch.engine.manifest import read_manifest

    session.ns["nbo_run"] = run_context(project, tmp_path, assets=("raw",), partition="2013-01-04")
    assert session.ok(CELLS["raw"]).startswith("raw[2013-01-04]: 3 rows x 3 columns")
    assert session.ok(CELLS["config"]).strip() == "config: skipped (not selected in this run)"
    mats, checks = read_manifest(tmp_path / "manifest.jsonl")
    assert [(m.asset, m.partition, m.row_count) for m in mats] == [("raw", "2013-01-04", 3)]
    assert checks == []
    assert_frame_equal(project.values().load(mats[0].storage_path), raw_frame("2013-01-04"))
    assert project.store().list_runs() == []  # the executor finalizes, not the kernel

    session.ok("N_ROWS = 2")
    session.ns["nbo_run"] = run_context(project, tmp_path, assets=("raw",), partition="2013-01-05")
    result = session.cell("raw")
    assert not result.success and type(result.error_in_exec) is RunFailed
    mats, checks = read_manifest(tmp_path / "manifest.jsonl")
    assert len(mats) == 1 and [(c.expr, c.passed) for c in checks] == [("len(raw) == 3", False),
                                                                      ("raw.x.min() >= 0", True)]
    assert published(project, "raw") == ["raw/2013-01-04/run-in-kernel-1/_SUCCESS"] and debris(project) == []


def test_in_memory_store_takes_no_heartbeats_from_another_thread(session: Session,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:// is one connection shared by all threads: a heartbeat thread would collide with the cell."""
    monkeypatch.setenv("NBO_STORE_URL", "sqlite://")
    monkeypatch.setenv("NBO_HEARTBEAT_TIMEOUT", "0.2")
    session.runtime.close()
    threads: list[str] = []

    def cell() -> int:
        time.sleep(0.15)
        threads.extend(t.name for t in threading.enumerate() if t.name.startswith("nbo-heartbeat") and t.runs)
        return 1

    session.ns["HOOK"] = cell
    assert session.asset("hooked").startswith("hooked[unpartitioned]")
    assert threads == []
    assert session.runtime.project().store.list_runs()[0].status == RUN_SUCCESS
