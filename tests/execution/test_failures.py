"""Runs that fail: a cell that raises, a failing check, a kernel that dies, a cell that hangs, a deleted notebook.

Each failure is asserted against the store: run status, error text, the failing cell's index in the SOURCE
notebook, the kept output notebook, nothing published, and downstream runs not started.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from execution_helpers import (
    FIRST_ASSET_CELL,
    asset_cell,
    cell_text,
    main_cli,
    make_project,
    materializations_of,
    nbo,
    open_project,
    output_cells,
    published_versions,
    read_value,
    runs_of,
    source_cells,
)

from notebook_orch.core.planning import PartitionSelection
from notebook_orch.engine.runner import build_requests, run_plan
from notebook_orch.store.records import CheckResult

pytestmark = pytest.mark.kernel

DAY = "2013-01-01"
ONE_DAY = PartitionSelection(keys=(DAY,))


def assert_nothing_published(root: Path, asset: str, partition: str) -> None:
    assert materializations_of(root, asset, partition) == []
    assert published_versions(root, asset, partition) == []
    folder = root / ".notebook_orch" / "data" / asset / partition
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    assert leftovers == [], f"staged debris left in {folder}: {leftovers}"


# -- a cell that raises and a check that fails, in one plan ---------------------------------------------------------
@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("failed")
    make_project(root, {
        # broken.ipynb: index 2 is a plain helper cell, index 3 the asset cell that raises (JupyterLab's Cell 4).
        "broken": ["helper = 1", asset_cell("broken_value", 'broken_value = {"x": helper / 0}')],
        "after_broken": [asset_cell("after_broken", "after_broken = dict(broken_value)", deps="broken_value")],
        "checked": [asset_cell("checked_value", 'checked_value = {"n": 3}',
                               options="--check \"checked_value['n'] > 100\" --check \"'n' in checked_value\"")],
        "after_checked": [asset_cell("after_checked", "after_checked = dict(checked_value)", deps="checked_value")],
        # One run of two assets: the first is published by the kernel before the second fails.
        "pair": [asset_cell("pair_ok", 'pair_ok = {"fine": True}'), asset_cell("pair_bad", "pair_bad = [][0]")],
    })
    with open_project(root) as project:
        report = project.materialize("broken_value,after_broken,checked_value,after_checked,pair_ok,pair_bad",
                                     partitions=ONE_DAY, workers=2)
        status = project.status()
    return {"root": root, "report": report, "status": status,
            "outcomes": {o.assets[0]: o for o in report.outcomes}, "runs": {r.assets[0]: r for r in runs_of(root)}}


def test_a_cell_that_raises_fails_the_run_with_the_error_and_the_source_cell(failed: dict) -> None:
    root = failed["root"]
    run = failed["runs"]["broken_value"]
    broken_cell = FIRST_ASSET_CELL + 1  # after the helper cell
    assert run.status == "FAILED"
    assert run.error == ("RunFailed: Asset broken_value[2013-01-01] failed in notebooks/broken.ipynb, cell 4: "
                         "ZeroDivisionError: division by zero")
    assert run.error_cell == broken_cell
    assert run.error_source == cell_text(source_cells(root / "notebooks" / "broken.ipynb")[broken_cell])
    outcome = failed["outcomes"]["broken_value"]
    assert (outcome.status, outcome.run_id, outcome.error, outcome.error_cell) == (
        "FAILED", run.run_id, run.error, broken_cell)


def test_the_failed_run_keeps_its_output_notebook_with_the_traceback(failed: dict) -> None:
    run = failed["runs"]["broken_value"]
    assert run.output_path == failed["outcomes"]["broken_value"].output_path
    cells = output_cells(run)
    [failing] = [c for c in cells if c["cell_type"] == "code" and c["metadata"]["papermill"]["exception"]]
    assert cell_text(failing) == run.error_source
    assert [(o["output_type"], o["ename"]) for o in failing["outputs"] if o["output_type"] == "error"] == [
        ("error", "RunFailed")]


def test_a_failed_run_publishes_nothing_and_its_partition_is_failed(failed: dict) -> None:
    root = failed["root"]
    for asset in ("broken_value", "checked_value"):
        assert_nothing_published(root, asset, DAY)
        assert failed["status"].status(asset, DAY) == "FAILED"


def test_downstream_of_a_failure_is_skipped_and_never_started(failed: dict) -> None:
    for asset, upstream in (("after_broken", "broken"), ("after_checked", "checked")):
        outcome = failed["outcomes"][asset]
        assert (outcome.status, outcome.run_id, outcome.attempts) == ("SKIPPED", None, 0)
        assert outcome.error == f"not started: prerequisite run notebooks/{upstream}.ipynb [{DAY}] did not succeed"
        assert asset not in failed["runs"]  # no run record: it never started
        assert failed["status"].status(asset, DAY) == "MISSING"
        assert_nothing_published(failed["root"], asset, DAY)
    assert sorted(failed["runs"]) == ["broken_value", "checked_value", "pair_ok"]
    assert failed["report"].summary().endswith("3 failed, 2 skipped")


def test_a_failing_check_fails_the_run_with_every_check_result_recorded(failed: dict) -> None:
    root = failed["root"]
    run = failed["runs"]["checked_value"]
    assert run.status == "FAILED"
    assert run.error == ("RunFailed: Asset checked_value[2013-01-01]: 1 of 2 check(s) failed: "
                         "\"checked_value['n'] > 100\" (evaluated to False). Nothing was published.")
    assert run.error_cell == FIRST_ASSET_CELL
    assert run.checks == (
        CheckResult("checked_value['n'] > 100", False, "evaluated to False"),
        CheckResult("'n' in checked_value", True, None),
    )
    assert_nothing_published(root, "checked_value", DAY)


def test_a_run_of_several_assets_that_fails_publishes_none_of_them(failed: dict) -> None:
    run = failed["runs"]["pair_ok"]
    assert (run.status, run.assets, run.error_cell) == ("FAILED", ("pair_ok", "pair_bad"), FIRST_ASSET_CELL + 1)
    assert run.error.endswith("IndexError: list index out of range")
    # pair_ok's cell succeeded and its kernel published the value; the failed run withdrew it.
    manifest = Path(run.output_path).parent / "manifest.jsonl"
    [entry] = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert entry["materialization"]["asset"] == "pair_ok"
    assert not Path(entry["materialization"]["storage_path"]).exists()
    for asset in ("pair_ok", "pair_bad"):
        assert_nothing_published(failed["root"], asset, DAY)
        assert failed["status"].status(asset, DAY) == "FAILED"


# -- a kernel that dies -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["warm", "fresh"])
def test_a_dead_kernel_fails_its_run_and_the_next_run_on_that_worker_gets_a_new_kernel(
    tmp_path: Path, mode: str
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    make_project(tmp_path, {"dies": [asset_cell("dies_value", f"""
        import json, os, pathlib
        pathlib.Path({str(pids)!r}, partition_key).write_text(json.dumps([os.getpid(), os.getppid()]))
        if partition_key == "2013-01-01":
            os._exit(1)
        dies_value = {{"survived": partition_key}}
    """)]})
    with open_project(tmp_path) as project:  # one worker: the second run goes to the worker whose kernel died
        report = project.materialize("dies_value", partitions=PartitionSelection(start=DAY, end="2013-01-02"),
                                     workers=1, mode=mode)
        status = project.status()
    dead, ok = runs_of(tmp_path)
    assert (dead.partition_keys, dead.status, dead.error_cell) == ((DAY,), "FAILED", FIRST_ASSET_CELL)
    assert dead.error.startswith("The kernel died while running cell 3 of notebooks/dies.ipynb (")
    assert "os._exit" in dead.error_source
    assert Path(dead.output_path).is_file()
    assert_nothing_published(tmp_path, "dies_value", DAY)
    assert status.status("dies_value", DAY) == "FAILED"

    assert (ok.partition_keys, ok.status) == (("2013-01-02",), "SUCCESS"), ok.error
    assert read_value(tmp_path, "dies_value", "2013-01-02") == {"survived": "2013-01-02"}
    assert [o.status for o in report.outcomes] == ["FAILED", "SUCCESS"]
    dead_kernel, dead_worker = json.loads((pids / DAY).read_text())
    new_kernel, new_worker = json.loads((pids / "2013-01-02").read_text())
    assert new_worker == dead_worker  # the same worker process ...
    assert new_kernel != dead_kernel  # ... with a new kernel


# -- a worker process that dies --------------------------------------------------------------------------------------
def test_a_dead_worker_fails_its_run_at_once_and_the_runs_after_it_still_run(tmp_path: Path) -> None:
    make_project(tmp_path, {"killer": [asset_cell("kills_worker", """
        import os, signal, time
        if partition_key == "2013-01-01":
            os.kill(os.getppid(), signal.SIGKILL)  # the kernel's parent: the pool's worker process
            time.sleep(30)
        kills_worker = {"day": partition_key}
    """)]})
    with open_project(tmp_path) as project:  # heartbeat timeout 120 s: nothing here waits for the reaper
        report = project.materialize("kills_worker", partitions=PartitionSelection(start=DAY, end="2013-01-03"),
                                     workers=1)
    dead, *rest = runs_of(tmp_path)
    assert (dead.partition_keys, dead.status) == ((DAY,), "FAILED")
    assert dead.error.startswith("The worker process running it died (")
    assert [(r.partition_keys, r.status) for r in rest] == [(("2013-01-02",), "SUCCESS"), (("2013-01-03",), "SUCCESS")]
    assert [(o.status, o.run_id) for o in report.outcomes] == [
        ("FAILED", dead.run_id), ("SUCCESS", rest[0].run_id), ("SUCCESS", rest[1].run_id)]
    assert_nothing_published(tmp_path, "kills_worker", DAY)
    assert read_value(tmp_path, "kills_worker", "2013-01-03") == {"day": "2013-01-03"}


# -- a cell that hangs --------------------------------------------------------------------------------------------
def test_a_cell_past_the_timeout_is_stopped_and_fails_the_run(tmp_path: Path) -> None:
    make_project(tmp_path, {"hangs": [asset_cell("hangs_value", """
        import time
        time.sleep(120)
        hangs_value = 1
    """)]})
    started = time.monotonic()
    proc = nbo(tmp_path, "materialize", "hangs_value", "--partition", DAY, "--timeout", "2")
    assert time.monotonic() - started < 60
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [run] = runs_of(tmp_path)
    assert run.status == "FAILED"
    assert run.error == ("Cell 3 of notebooks/hangs.ipynb ran past the execution timeout of 2 s and was stopped; "
                         "make it faster or raise the timeout (--timeout).")
    assert run.error_cell == FIRST_ASSET_CELL
    assert run.error_source.startswith("%%asset hangs_value")
    assert f"FAILED notebooks/hangs.ipynb [{DAY}] (cell 3) run {run.run_id}: {run.error}" in proc.stdout
    assert proc.stdout.count(run.error) == 1  # each failure printed once
    assert_nothing_published(tmp_path, "hangs_value", DAY)


# -- a notebook that does not load the extension ----------------------------------------------------------------------
def test_a_notebook_without_the_extension_fails_saying_how_to_load_it(tmp_path: Path) -> None:
    import nbformat

    make_project(tmp_path, {})
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()  # as a script or jupytext writes it: no kernelspec, no language_info
    nb.cells = [nbformat.v4.new_code_cell(asset_cell("plain_value", "plain_value = 1"))]
    nbformat.write(nb, str(tmp_path / "notebooks" / "bare.ipynb"))
    with open_project(tmp_path) as project:
        [outcome] = project.materialize("plain_value", partitions=ONE_DAY, workers=1).outcomes
    [run] = runs_of(tmp_path)
    assert (outcome.status, run.status, run.error_cell) == ("FAILED", "FAILED", 0)
    assert run.error == ("UsageError: Cell magic `%%asset` not found. The notebook does not load the extension: add "
                         "a cell with '%load_ext notebook_orch' before its first %%asset cell.")
    assert_nothing_published(tmp_path, "plain_value", DAY)


# -- a notebook deleted after the plan was made --------------------------------------------------------------------
def test_a_notebook_deleted_after_planning_fails_its_run_naming_it(tmp_path: Path) -> None:
    make_project(tmp_path, {"gone": [asset_cell("gone_value", "gone_value = 1")]})
    with open_project(tmp_path) as project:
        plan = project.plan("gone_value", partitions=ONE_DAY)
        requests = build_requests(project, plan, kind="manual")
    (tmp_path / "notebooks" / "gone.ipynb").unlink()
    report = run_plan(plan, requests, workers=1)
    [outcome] = report.outcomes
    [run] = runs_of(tmp_path)
    assert (outcome.status, outcome.run_id, run.status) == ("FAILED", run.run_id, "FAILED")
    assert run.error == ("FileNotFoundError: Notebook notebooks/gone.ipynb no longer exists (deleted after the plan "
                         "was made); restore it or validate the project again (nbo validate).")
    assert (run.error_cell, run.output_path) == (None, None)
    assert_nothing_published(tmp_path, "gone_value", DAY)
    # The next command sees a project without that notebook, not a crash.
    assert main_cli(tmp_path, "validate")[0] == 1
