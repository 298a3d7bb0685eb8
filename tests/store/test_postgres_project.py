"""A whole project on a PostgreSQL store: papermill runs in real kernels record into it, and status reads it back."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from notebook_orch.core.planning import PartitionSelection

pytestmark = pytest.mark.kernel


def _notebook(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('partition_key = "2013-01-01"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("%load_ext notebook_orch"), params]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def test_a_project_materializes_into_a_postgresql_store(tmp_path: Path, pg_databases, monkeypatch) -> None:  # noqa: ANN001
    from notebook_orch.project import Project

    url = pg_databases.fresh()
    monkeypatch.delenv("NBO_STORE_URL", raising=False)
    (tmp_path / "pyproject.toml").write_text(f'[tool.notebook_orch]\nnotebooks = "notebooks"\nstore = "{url}"\n')
    days = "--partitions daily:2013-01-01..2013-01-31"
    _notebook(tmp_path / "notebooks" / "pipeline.ipynb", [
        f'%%asset numbers {days}\nnumbers = {{"day": partition_key, "n": int(partition_key[-2:])}}',
        f'%%asset doubled --deps numbers {days}\ndoubled = {{"n2": numbers["n"] * 2}}',
    ])
    selection = PartitionSelection(start="2013-01-01", end="2013-01-02")
    with Project(tmp_path) as project:
        assert project.config.store_url == url
        report = project.materialize("numbers,doubled", partitions=selection, workers=2)
        assert report.ok, report.summary()
        runs = project.runs(limit=100)
        assert runs and {r.status for r in runs} == {"SUCCESS"}
        store = project.store
        materialized = {(m.asset, m.partition) for a in ("numbers", "doubled") for m in store.materializations(a)}
        assert materialized == {(a, d) for a in ("numbers", "doubled") for d in ("2013-01-01", "2013-01-02")}
        stale = {(s.asset, s.partition) for s in project.stale()}
        assert not stale & materialized  # just materialized: fresh
        again = project.materialize("numbers,doubled", partitions=selection, only_stale=True)
        assert again.outcomes == ()
