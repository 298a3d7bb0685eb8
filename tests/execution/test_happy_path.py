"""The happy path in both modes: the same plan run with warm kernels and with fresh ones.

One project, two notebooks: ``upstream.ipynb`` holds ``numbers`` (selected) and ``unselected`` (not selected),
``downstream.ipynb`` holds ``doubled`` reading ``numbers``. Two partitions, two workers. Each notebook's last cell
(not an asset; tagged ``nbo-setup`` so that runs execute it) writes the kernel's pid under the run id, so the tests
can see which kernel ran what.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from execution_helpers import (
    FIRST_ASSET_CELL,
    asset_cell,
    cell_text,
    make_project,
    materializations_of,
    open_project,
    output_cells,
    printed,
    published_versions,
    read_value,
    runs_of,
    setup_cell,
)

from notebook_orch.core.planning import PartitionSelection

pytestmark = pytest.mark.kernel

DAYS = ("2013-01-01", "2013-01-02")
SELECTION = "numbers,doubled"


def _pid_cell(folder: Path) -> Any:
    return setup_cell(
        f"import os, pathlib\npathlib.Path({str(folder)!r}, nbo_run['run_id']).write_text(str(os.getpid()))")


@pytest.fixture(scope="module")
def happy(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("happy")
    pids = root / "pids"
    pids.mkdir()
    make_project(root, {
        "upstream": [
            asset_cell("numbers", 'numbers = {"day": partition_key, "n": int(partition_key[-2:])}'),
            asset_cell("unselected", 'unselected = {"never": "materialized"}'),
            _pid_cell(pids),
        ],
        "downstream": [
            asset_cell("doubled", 'doubled = {"day": numbers["day"], "n2": numbers["n"] * 2}', deps="numbers"),
            _pid_cell(pids),
        ],
    })
    sel = PartitionSelection(start=DAYS[0], end=DAYS[-1])
    with open_project(root) as project:
        plan = project.plan(SELECTION, partitions=sel)
        warm = project.materialize(SELECTION, partitions=sel, workers=2, mode="warm")
        fresh = project.materialize(SELECTION, partitions=sel, workers=2, mode="fresh")
        status = project.status()
    runs = runs_of(root)
    by_id = {r.run_id: r for r in runs}
    return {"root": root, "plan": plan, "warm": warm, "fresh": fresh, "status": status, "runs": by_id,
            "pids": {p.name: int(p.read_text()) for p in pids.iterdir()}}


def _runs_of(happy: dict, mode: str) -> dict[tuple[str, str], object]:
    """(asset, partition) -> run record, for the runs one mode started."""
    out = {}
    for o in happy[mode].outcomes:
        run = happy["runs"][o.run_id]
        out[(run.assets[0], run.partition_keys[0])] = run
    return out


def test_the_plan_is_one_run_per_notebook_and_partition_in_dependency_order(happy: dict) -> None:
    runs = [(r.notebook, r.partition, r.assets, r.after) for r in happy["plan"].runs]
    assert runs == [
        ("notebooks/upstream.ipynb", "2013-01-01", ("numbers",), ()),
        ("notebooks/upstream.ipynb", "2013-01-02", ("numbers",), ()),
        ("notebooks/downstream.ipynb", "2013-01-01", ("doubled",), (0,)),
        ("notebooks/downstream.ipynb", "2013-01-02", ("doubled",), (1,)),
    ]


@pytest.mark.parametrize("mode", ["warm", "fresh"])
def test_every_planned_run_succeeds_with_one_run_record_each(happy: dict, mode: str) -> None:
    report = happy[mode]
    assert report.ok, report.summary()
    assert [(o.status, o.notebook, o.partition, o.assets, o.attempts) for o in report.outcomes] == [
        ("SUCCESS", "notebooks/upstream.ipynb", "2013-01-01", ("numbers",), 1),
        ("SUCCESS", "notebooks/upstream.ipynb", "2013-01-02", ("numbers",), 1),
        ("SUCCESS", "notebooks/downstream.ipynb", "2013-01-01", ("doubled",), 1),
        ("SUCCESS", "notebooks/downstream.ipynb", "2013-01-02", ("doubled",), 1),
    ]
    runs = _runs_of(happy, mode)
    assert sorted(runs) == sorted((a, d) for a in ("numbers", "doubled") for d in DAYS)
    for (asset, day), run in runs.items():
        assert (run.status, run.kind, run.assets, run.partition_keys, run.attempt) == (
            "SUCCESS", "manual", (asset,), (day,), 1)
        assert run.error is None and run.error_cell is None
    assert len(happy["runs"]) == 8  # 4 per mode, nothing else


def test_values_and_data_versions_are_equal_between_modes(happy: dict) -> None:
    root = happy["root"]
    for day in DAYS:
        n = int(day[-2:])
        assert read_value(root, "numbers", day) == {"day": day, "n": n}
        assert read_value(root, "doubled", day) == {"day": day, "n2": 2 * n}
        for asset in ("numbers", "doubled"):
            mats = materializations_of(root, asset, day)  # newest first: fresh, then warm
            assert [m.run_id for m in mats] == [_runs_of(happy, m)[(asset, day)].run_id for m in ("fresh", "warm")]
            assert mats[0].data_version == mats[1].data_version
            assert mats[0].code_version == mats[1].code_version
            assert all(Path(m.storage_path).is_file() for m in mats)


def test_downstream_materializations_record_the_upstream_they_read(happy: dict) -> None:
    root = happy["root"]
    for mode in ("warm", "fresh"):
        runs = _runs_of(happy, mode)
        for day in DAYS:
            [up] = [m for m in materializations_of(root, "numbers", day) if m.run_id == runs[("numbers", day)].run_id]
            [down] = [m for m in materializations_of(root, "doubled", day)
                      if m.run_id == runs[("doubled", day)].run_id]
            assert [(i.asset, i.partition, i.materialization_id) for i in down.inputs] == [("numbers", day, up.id)]


def test_an_unselected_asset_cell_is_skipped_and_not_materialized(happy: dict) -> None:
    root = happy["root"]
    assert materializations_of(root, "unselected") == []
    assert not (root / ".notebook_orch" / "data" / "unselected").exists()
    assert happy["status"].partitions_with("unselected", "MISSING") == list(happy["status"].keys("unselected"))
    for mode in ("warm", "fresh"):
        run = _runs_of(happy, mode)[("numbers", "2013-01-01")]
        cells = output_cells(run)
        shown = [cell_text(c) for c in cells]
        unselected = next(c for c in cells if cell_text(c).startswith("%%asset unselected"))
        assert printed(unselected) == f"skipped by notebook_orch: not needed by run {run.run_id} (assets numbers)\n"
        assert unselected["execution_count"] is None
        assert any(s.startswith("%%asset numbers") for s in shown)


@pytest.mark.parametrize("mode", ["warm", "fresh"])
def test_every_run_keeps_an_output_notebook_showing_the_injected_parameters(happy: dict, mode: str) -> None:
    root = happy["root"]
    for (_asset, day), run in _runs_of(happy, mode).items():
        assert run.output_path == str(root / ".notebook_orch" / "runs" / run.run_id / Path(run.notebook).name)
        cells = output_cells(run)
        [injected] = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
        assert cells.index(injected) == FIRST_ASSET_CELL  # right after the parameters cell
        namespace: dict = {}
        exec(cell_text(injected), namespace)  # noqa: S102 - papermill wrote it: plain assignments
        assert namespace["partition_key"] == day
        assert str(namespace["partition_date"]) == day
        context = namespace["nbo_run"]
        assert (context["run_id"], context["partition_key"], context["notebook"], context["assets"]) == (
            run.run_id, day, run.notebook, list(run.assets))
        assert context["project_root"] == str(root)
        # Every cell the run needed ran, and only the unselected asset's cell was skipped: none was left pending.
        statuses = [(cell_text(c).split()[1] if cell_text(c).startswith("%%asset") else None,
                     c["metadata"]["papermill"]["status"]) for c in cells if c["cell_type"] == "code"]
        skipped = [("unselected", "skipped")] if run.notebook == "notebooks/upstream.ipynb" else []
        assert [s for s in statuses if s[1] != "completed"] == skipped


def test_downstream_runs_start_after_their_upstream_finished(happy: dict) -> None:
    for mode in ("warm", "fresh"):
        runs = _runs_of(happy, mode)
        for day in DAYS:
            assert runs[("doubled", day)].started_at >= runs[("numbers", day)].ended_at


def test_two_workers_run_independent_runs_at_the_same_time(happy: dict) -> None:
    for mode in ("warm", "fresh"):
        runs = _runs_of(happy, mode)
        first, second = runs[("numbers", DAYS[0])], runs[("numbers", DAYS[1])]
        assert max(first.started_at, second.started_at) < min(first.ended_at, second.ended_at), mode


def test_warm_mode_reuses_one_kernel_per_worker_and_fresh_mode_does_not(happy: dict) -> None:
    pids = happy["pids"]
    warm = {pids[o.run_id] for o in happy["warm"].outcomes}
    fresh = {pids[o.run_id] for o in happy["fresh"].outcomes}
    assert len(warm) <= 2  # two workers, one kernel each, four runs
    assert len(fresh) == 4
    assert not warm & fresh


def test_status_after_both_modes_is_fresh_for_what_ran_and_missing_elsewhere(happy: dict) -> None:
    status = happy["status"]
    for asset in ("numbers", "doubled"):
        assert status.partitions_with(asset, "FRESH") == list(DAYS)
        assert status.status(asset, "2013-01-03") == "MISSING"
    assert status.totals()["RUNNING"] == 0 and status.totals()["FAILED"] == 0


def test_the_manifest_of_each_run_lists_exactly_what_was_committed(happy: dict) -> None:
    root = happy["root"]
    for mode in ("warm", "fresh"):
        for (asset, day), run in _runs_of(happy, mode).items():
            manifest = root / ".notebook_orch" / "runs" / run.run_id / "manifest.jsonl"
            entries = [json.loads(line) for line in manifest.read_text().splitlines()]
            assert [(e["materialization"]["asset"], e["materialization"]["partition"]) for e in entries] == [
                (asset, day)]
            assert len(published_versions(root, asset, day)) >= 1


def test_a_warm_kernel_gives_each_run_a_clean_namespace(tmp_path: Path) -> None:
    make_project(tmp_path, {"leaky": [
        "try:\n    leftover\n    saw_leftover = True\nexcept NameError:\n    saw_leftover = False\n"
        "leftover = partition_key\nimport os\nkernel_pid = os.getpid()",
        asset_cell("namespace_probe", 'namespace_probe = {"saw_leftover": saw_leftover, "kernel": kernel_pid}'),
    ]})
    with open_project(tmp_path) as project:  # one worker, so both runs use the same warm kernel
        report = project.materialize("namespace_probe", partitions=PartitionSelection(start=DAYS[0], end=DAYS[1]),
                                     workers=1, mode="warm")
    assert report.ok, report.summary()
    first, second = (read_value(tmp_path, "namespace_probe", day) for day in DAYS)
    assert first["kernel"] == second["kernel"]  # the same kernel ...
    assert (first["saw_leftover"], second["saw_leftover"]) == (False, False)  # ... and no names left over
