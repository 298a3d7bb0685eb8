"""`--trigger "a | b"` started by `a` alone: the run does not need `b`. An input the trigger does not require
arrives as None when its partition is not materialized; a cell that uses it anyway fails with an error saying so
(real daemon pass, real worker and kernel)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.core.planning import PartitionSelection, PlanError
from notebook_orch.core.triggers import parse_trigger, required_deps
from notebook_orch.scheduler import Scheduler
from notebook_orch.storage import ValueStore

DAILY = "--partitions daily:2024-01-01"


def _project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_code_cell("%load_ext notebook_orch"),
        new_code_cell(f"%%asset a {DAILY}\na = {{'k': partition_key}}"),
        new_code_cell(f"%%asset b {DAILY}\nb = {{'k': partition_key}}"),
        new_code_cell(f"%%asset either --deps a,b {DAILY} --trigger 'a | b'\n"
                      "either = {'a': a, 'b': b}"),
        new_code_cell(f"%%asset careless --deps a,b {DAILY} --trigger 'a | b'\ncareless = b['k']"),
    ]
    nbformat.write(nb, root / "notebooks" / "t.ipynb")
    return root


@pytest.mark.slow
def test_a_run_started_by_one_side_of_an_or_gets_none_for_the_other(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    key = "2024-01-03"
    with Project(root) as p:
        daemon = Scheduler(p)
        assert daemon.run_once().leader
        assert p.materialize("a", partitions=PartitionSelection(keys=(key,))).ok
        assert sorted(daemon.run_once().triggered) == [("careless", key), ("either", key)]
        for h in daemon.handles:
            h.wait(timeout=180)
        daemon.finish()
        runs = {r.assets[0]: r for r in p.store.list_runs(limit=10) if r.kind == "trigger"}
        assert runs["either"].status == "SUCCESS"
        values = ValueStore(p.config.data_dir)
        assert values.load(values.latest_published("either", key)) == {"a": {"k": key}, "b": None}
        careless = runs["careless"]
        assert careless.status == "FAILED"
        assert "TypeError: 'NoneType' object is not subscriptable. Note: b[2024-01-03] was not materialized, so b " \
               "is None in this cell: --trigger 'a | b' does not require it. Test `if b is not None:`" in careless.error
        # A run needs its trigger met by what is materialized: neither a nor b for that day is refused up front.
        with pytest.raises(PlanError, match=r"either\[2024-01-04\]: its --trigger 'a \| b' is not met by what is "
                                            "materialized"):
            p.materialize("either", partitions=PartitionSelection(keys=("2024-01-04",)))


def test_required_deps_are_those_the_expression_cannot_be_true_without() -> None:
    deps = ["a", "b", "c", "d"]
    assert required_deps(parse_trigger("a | b", asset="x"), deps) == set()
    assert required_deps(parse_trigger("a & (b | c)", asset="x"), deps) == {"a"}
    assert required_deps(parse_trigger("(a & b) | (a & c)", asset="x"), deps) == {"a"}
    assert required_deps(parse_trigger("a & b & c", asset="x"), deps) == {"a", "b", "c"}
