"""`--param K=V` on a schedule reaches the run: `nbo scheduler --once` as a real process fires the tick, papermill
injects the value over the notebook's parameters cell, and the stored value shows it (real kernel, warm mode)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sched_helpers import nbo

from notebook_orch import Project
from notebook_orch.storage import ValueStore

pytestmark = pytest.mark.slow


def _project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell("region = 'us'\nlimit = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        new_code_cell("%load_ext notebook_orch"),
        params,
        new_code_cell("%%asset regional --partitions daily:2024-01-01\n"
                      "regional = {'region': region, 'limit': limit, 'day': partition_key}"),
    ]
    nbformat.write(nb, root / "notebooks" / "regional.ipynb")
    return root


def test_a_scheduled_run_sees_its_param(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    added = datetime.now(timezone.utc) - timedelta(minutes=3)
    with Project(root) as p:
        p.store.scheduling.add_schedule(name="eu", cron="* * * * *", selection="regional", catchup="latest",
                                        params={"region": "eu"}, now=added)
    done = nbo(root, "scheduler", "--once")
    assert done.returncode == 0, done.stderr
    with Project(root) as p:
        [tick] = p.store.scheduling.ticks("eu")
        assert tick.status == "SUBMITTED" and tick.partition
        [run] = p.store.list_runs(limit=10)
        assert (run.kind, run.status, run.partition_keys) == ("schedule", "SUCCESS", (tick.partition,))
        value = ValueStore(p.config.data_dir).load(ValueStore(p.config.data_dir).latest_published(
            "regional", tick.partition))
    # the schedule's param overrides the parameters cell; the one it does not set keeps the notebook's value
    assert value == {"region": "eu", "limit": 1, "day": tick.partition}


def test_submit_refuses_bad_parameters_before_anything_starts(tmp_path: Path) -> None:
    from notebook_orch.errors import InvalidOption

    root = _project(tmp_path / "p")
    with Project(root) as p:
        with pytest.raises(InvalidOption, match="'partition_key' is set by every run itself"):
            p.submit("regional", parameters={"partition_key": "x"})
        assert p.store.list_runs(limit=10) == []


def test_materialize_param_errors_name_the_parameter(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from notebook_orch.faces.cli import main

    root = _project(tmp_path / "p")
    assert main(["-C", str(root), "materialize", "regional", "--partition", "2024-01-02", "--param", "nbo_run=x"]) == 2
    assert "parameter 'nbo_run' is set by every run itself" in capsys.readouterr().err
    assert main(["-C", str(root), "materialize", "regional", "--param", "region"]) == 2
    assert "--param 'region' is not K=V" in capsys.readouterr().err
    with Project(root) as p:
        assert p.store.list_runs(limit=10) == []
