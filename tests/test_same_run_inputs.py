"""A run whose later asset cell reads an asset published earlier in the same run (same notebook, same partition)."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.errors import StoreError
from notebook_orch.store import ConsumedInput, NewMaterialization, open_store


def test_store_resolves_same_run_inputs_in_one_transaction(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    run = store.start_run(notebook="nb.ipynb", targets=[("a", "p"), ("b", "p")], kind="manual")
    a = NewMaterialization(asset="a", partition="p", code_version="c", data_version="da")
    b = NewMaterialization(asset="b", partition="p", code_version="c", data_version="db",
                           inputs=(ConsumedInput("a", "p", 0, "da", 0),))
    recs = store.finalize_success(run.run_id, [a, b])
    got = store.latest_materialization("b", "p").inputs
    assert got == (ConsumedInput("a", "p", recs[0].id, "da", recs[0].id),)
    snap = store.snapshot(keys=[("b", "p")])
    assert snap.assets["b"].inputs_seq == (recs[0].id,)
    # An input that claims to come from the same run but does not: refused, nothing recorded.
    run2 = store.start_run(notebook="nb.ipynb", targets=[("c", "p")], kind="manual")
    c = NewMaterialization(asset="c", partition="p", code_version="c", data_version="dc",
                           inputs=(ConsumedInput("zzz", "p", 0, "dz", 0),))
    with pytest.raises(StoreError, match="from earlier in the same run"):
        store.finalize_success(run2.run_id, [c])
    assert store.latest_materialization("c", "p") is None
    assert store.get_run(run2.run_id).status == "RUNNING"
    store.close()


@pytest.mark.kernel
def test_papermill_run_reads_earlier_cell_of_same_run(tmp_path: Path):
    (tmp_path / "notebooks").mkdir()
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_code_cell("%load_ext notebook_orch"),
        new_code_cell('%%asset a --partitions static:x,y\na = {"key": partition_key, "n": 2}'),
        new_code_cell('%%asset b --deps a --partitions static:x,y\nb = {"twice": a["n"] * 2, "of": a["key"]}'),
    ]
    nbformat.write(nb, tmp_path / "notebooks" / "pair.ipynb")
    with Project(tmp_path) as project:
        report = project.materialize("a,b", workers=1, mode="fresh")
        assert [o.status for o in report.outcomes] == ["SUCCESS", "SUCCESS"], report.outcomes
        b = project.store.latest_materialization("b", "y")
        a = project.store.latest_materialization("a", "y")
        assert b.run_id == a.run_id and [(c.asset, c.materialization_id) for c in b.inputs] == [("a", a.id)]
        assert project.status().counts("b")["FRESH"] == 2
