"""The read path of ``nbo status`` (store/sqlite_read.py) checks a file holds every table of the schema by their
names in store/constants.py, without importing SQLAlchemy: those names must be the schema's."""

from notebook_orch.store import constants, schema


def test_the_read_paths_table_names_are_the_schemas() -> None:
    assert constants.TABLES == set(schema.metadata.tables)
