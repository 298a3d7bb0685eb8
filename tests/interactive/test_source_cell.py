"""An external source's cell in a notebook binds the active partition's folder (what its readers get) and writes
nothing: no run, no value, no materialization."""

from __future__ import annotations

from interactive_helpers import DAILY, ProjectDir, Session


def test_a_source_cell_binds_its_folder_and_records_nothing(session: Session, project: ProjectDir) -> None:
    session.ok("%nbo partition 2013-01-05")
    cell = f'%%asset landing --partitions {DAILY} --source "landing/{{partition}}/"\n# files land here'
    out = session.ok(cell)
    folder = project.root / "landing" / "2013-01-05"
    assert session.ns["landing"] == folder
    assert f"landing[2013-01-05]: external source at {folder}, not complete: no _SUCCESS yet" in out
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").write_text("")
    assert "complete" in session.ok(cell) and "not complete" not in session.ok(cell)
    with project.store() as store:
        assert store.list_runs(limit=10) == [] and store.materializations("landing", "2013-01-05") == []
