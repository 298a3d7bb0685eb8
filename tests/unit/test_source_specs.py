"""External sources (pure): the partition's folder and the data-version formula."""

from pathlib import PurePath

from notebook_orch.core.sources import source_data_version, source_folder
from notebook_orch.core.specs import parse_declaration


def test_folder_relative_to_the_project_or_absolute():
    rel = parse_declaration('%%asset raw --partitions daily:2024-01-01 --source "landing/{partition}/"')
    assert source_folder(rel, "2024-01-03", root="/proj") == PurePath("/proj/landing/2024-01-03")
    absolute = parse_declaration("%%asset raw --source /mnt/raw")
    assert source_folder(absolute, "unpartitioned", root="/proj") == PurePath("/mnt/raw")


def test_marker_content_wins_else_the_listing_counts():
    files = [("a.csv", 10, 1), ("b.csv", 20, 2)]
    assert source_data_version(b"batch-7\n", files) == source_data_version(b"batch-7", [])
    assert source_data_version(b"batch-7", files) != source_data_version(b"batch-8", files)
    listed = source_data_version(b"", files)
    assert listed == source_data_version(b"  ", list(reversed(files)))  # order of listing does not matter
    assert listed != source_data_version(b"", [("a.csv", 10, 1), ("b.csv", 20, 3)])  # a rewritten file
    assert listed != source_data_version(b"", files[:1])
