"""The store's tables are SQLModel models on their own registry: a user's SQLModel tables never collide."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Field, Session, SQLModel, create_engine, select

from notebook_orch.store import open_store
from notebook_orch.store.schema import RunRow, StoreModel, metadata, runs


def test_own_metadata_and_no_collision_with_a_users_tables(tmp_path: Path) -> None:
    assert metadata is StoreModel.metadata and metadata is not SQLModel.metadata
    assert "runs" not in SQLModel.metadata.tables and runs is RunRow.__table__

    class UserRuns(SQLModel, table=True):  # the user's own table called "runs", on SQLModel's default metadata
        __tablename__ = "runs"
        id: int | None = Field(default=None, primary_key=True)
        note: str

    try:
        user_db = create_engine(f"sqlite:///{tmp_path / 'user.db'}")
        SQLModel.metadata.create_all(user_db)
        with Session(user_db) as session:
            session.add(UserRuns(note="mine"))
            session.commit()
            assert session.exec(select(UserRuns.note)).all() == ["mine"]
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        run = store.start_run(notebook="nb.ipynb", targets=[("a", "p")], kind="manual")
        store.close()
        # The models read the store like any SQLModel table (the non-hot paths may use them).
        with Session(create_engine(f"sqlite:///{tmp_path / 'store.db'}")) as session:
            row = session.exec(select(RunRow).where(RunRow.run_id == run.run_id)).one()
            assert (row.status, row.kind, row.notebook) == ("RUNNING", "manual", "nb.ipynb")
    finally:
        SQLModel.metadata.remove(UserRuns.__table__)
