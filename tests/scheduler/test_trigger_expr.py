"""`--trigger "a & (b | c)"` declared in a notebook: the daemon's pass decides each partition by the expression;
a malformed one is a problem of that cell, and the rest of the project keeps working (store writes, no kernel)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.scheduler import Scheduler
from notebook_orch.store.records import NewMaterialization

DAILY = "--partitions daily:2024-01-01"


def _project(root: Path, trigger: str) -> Path:
    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.cells = [new_code_cell("%load_ext notebook_orch")] + [
        new_code_cell(f"%%asset {n} {DAILY}\n{n} = 1") for n in "abc"] + [
        new_code_cell(f"%%asset either --deps a,b,c {DAILY} --trigger '{trigger}'\neither = a")]
    nbformat.write(nb, root / "notebooks" / "t.ipynb")
    return root


def _write(p: Project, asset: str, key: str) -> None:
    run = p.store.start_run(notebook="notebooks/t.ipynb", targets=[(asset, key)], kind="manual")
    p.store.finalize_success(run.run_id, [NewMaterialization(
        asset=asset, partition=key, data_version=f"{asset}-{key}", code_version=p.graph.spec(asset).code_version)])


def test_the_expression_decides_each_partition(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "a & (b | c)")
    with Project(root) as p:
        daemon = Scheduler(p)
        assert daemon.run_once().leader
        _write(p, "a", "2024-02-01")
        _write(p, "c", "2024-02-01")  # a & c: enough
        _write(p, "b", "2024-02-02")  # b alone: not enough
        _write(p, "c", "2024-02-03")
        plan = daemon.preview()
        assert plan.start == (("either", "2024-02-01"),)
        waiting = {d.partition: d.waiting_on for d in plan.waiting}
        assert waiting == {"2024-02-02": (("a", "2024-02-02"), ("c", "2024-02-02")),
                           "2024-02-03": (("a", "2024-02-03"), ("b", "2024-02-03"))}
        daemon.sched.release_lease(daemon.holder)


def test_a_bad_trigger_names_its_cell_and_leaves_the_rest_valid(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "a & (b | d)")
    with Project(root) as p:
        problems = [str(x) for x in p.problems()]
        assert any(x.startswith("notebooks/t.ipynb, cell 5: ") and "'d', which is not among its dependencies"
                   in x for x in problems), problems
        assert sorted(s.name for s in p.graph.specs) == ["a", "b", "c"]
        assert "either" in p.invalid_assets()
