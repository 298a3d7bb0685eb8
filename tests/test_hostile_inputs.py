"""Hostile input, one class per test: each is refused with a message naming the key, file or option and what is
expected — no internal traceback — and nothing stored is created, changed or deleted."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.config import load_config
from notebook_orch.core.specs import MAX_OFFSET, parse_declaration
from notebook_orch.discovery import discover
from notebook_orch.errors import (
    ConfigError,
    DeclarationError,
    InvalidOption,
    PartitionError,
    StoreDamaged,
    StoreOpenError,
)
from notebook_orch.faces.cli import main
from notebook_orch.store import open_store

ENV = ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV:
        monkeypatch.delenv(var, raising=False)


def tree(folder: Path) -> dict[str, bytes | str | None]:
    """Every path under ``folder``: links as their target, folders as None, SQLite files as their SQL dump.

    A store's content is what must not change: SQLite's -wal/-shm files come and go as connections open and close
    (a checkpoint moves pages from the WAL into the file without changing any row), so they are left out.
    """
    out: dict[str, bytes | str | None] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        if Path(dirpath) == folder / ".notebook_orch":  # the discovery cache: derived from the notebooks, by design
            dirnames[:] = [d for d in dirnames if d != "cache"]
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = None
            elif name.endswith(("-wal", "-shm")):
                continue
            elif p.read_bytes()[:16] == b"SQLite format 3\x00":
                raw = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
                try:
                    out[rel] = "\n".join(raw.iterdump())
                finally:
                    raw.close()
            else:
                out[rel] = p.read_bytes()
    return out


def write_project(root: Path, table: str | bytes = "") -> Path:
    nb = new_notebook()
    nb.cells = [new_code_cell("%%asset raw\nraw = 1")]
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / "notebooks" / "raw.ipynb")
    data = table if isinstance(table, bytes) else f"[project]\nname = 'x'\n\n[tool.notebook_orch]\n{table}\n".encode()
    (root / "pyproject.toml").write_bytes(data)
    return root


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse refusing an option
        code = exc.code  # type: ignore[assignment]
    out = capsys.readouterr()
    return code, out.out + out.err


# -- configuration -------------------------------------------------------------------------------------------
# Wrong values in pyproject.toml (types, ranges, bad TOML, unknown keys): the hostile corpus,
# tests/reliability/corpus/configs with expected.json. Here: what needs more than a file.
@pytest.mark.parametrize(("var", "value", "expected"), [
    ("NBO_HEARTBEAT_TIMEOUT", "soon", r"Environment variable NBO_HEARTBEAT_TIMEOUT must be a number of seconds .* "
                                      r"not a string \('soon'\)"),
    ("NBO_HEARTBEAT_TIMEOUT", "nan", r"NBO_HEARTBEAT_TIMEOUT must be .* not nan"),
    ("NBO_HEARTBEAT_TIMEOUT", "-1", r"NBO_HEARTBEAT_TIMEOUT must be .* not -1\.0 \(zero or less"),
    ("NBO_HEARTBEAT_TIMEOUT", "inf", r"NBO_HEARTBEAT_TIMEOUT must be .* at most 604800 .* not inf"),
    ("NBO_NOTEBOOKS", "a\x00b", r"Environment variable NBO_NOTEBOOKS contains a NUL character"),
    ("NBO_STORE_URL", "sqlite:///\udcff.db", r"Environment variable NBO_STORE_URL is not UTF-8 text \(a string "
                                              r"\('sqlite:///\\udcff.db'\)\); set it to a UTF-8 path or URL"),
])
def test_a_wrong_environment_value_is_refused_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  var: str, value: str, expected: str) -> None:
    root = write_project(tmp_path)
    if "\x00" in value or "\udcff" in value:  # the OS refuses these in setenv: reach load_config as a mapping would
        monkeypatch.setattr(os, "environ", {**os.environ, var: value})
    else:
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=expected):
        load_config(root)


def test_a_good_config_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path, "heartbeat_timeout = 30\nnotebooks = 'notebooks'\nstore = 's.db'")
    cfg = load_config(root)
    assert cfg.heartbeat_timeout_s == 30.0 and cfg.store_url == f"sqlite:///{root / 's.db'}"
    monkeypatch.setenv("NBO_HEARTBEAT_TIMEOUT", " 2.5 ")
    assert load_config(root).heartbeat_timeout_s == 2.5


# -- project folder and heartbeat timeout ----------------------------------------------------------------------
def test_dash_c_on_a_missing_folder_is_refused_and_creates_nothing(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo" / "project"
    code, text = run_cli(capsys, "-C", str(missing), "status")
    assert code == 2
    assert text == f"error: The project folder {missing} does not exist; give the folder that holds the project " \
                   "(nbo -C DIR, Project(DIR) or NBO_PROJECT).\n"
    assert not (tmp_path / "typo").exists()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    code, text = run_cli(capsys, "-C", str(a_file), "runs")
    assert code == 2 and f"The project folder {a_file} is not a folder" in text


def test_a_zero_or_negative_heartbeat_timeout_never_reaps(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        run = store.start_run(notebook="nb", targets=[("a", "p")], kind="manual")
        for bad in (0, -1, float("nan")):
            with pytest.raises(ConfigError, match=r"reap_stale_runs\(timeout_s=\.\.\.\) must be a number of seconds "
                                                  r"above 0"):
                store.reap_stale_runs(timeout_s=bad)
        assert store.get_run(run.run_id).status == "RUNNING"  # type: ignore[union-attr]


# -- numbers too large for their use ----------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "expected"), [
    (("runs", "--limit", "9" * 30), "argument --limit: expected a whole number from 1 to 1,000,000, not '999"),
    (("runs", "--limit", "-1"), "argument --limit: expected a whole number from 1 to 1,000,000, not '-1'"),
    (("materialize", "raw", "--retries", "1000000000"), "argument --retries: expected a whole number from 0 to 100"),
    (("backfill", "raw", "--retries", "-2"), "argument --retries: expected a whole number from 0 to 100, not '-2'"),
    (("materialize", "raw", "--workers", "100000"), "argument --workers: expected a whole number from 1 to 256"),
    (("materialize", "raw", "--workers", "0"), "argument --workers: expected a whole number from 1 to 256"),
    (("materialize", "raw", "--timeout", "nan"), "argument --timeout: expected a number of seconds above 0 and at "
                                                 "most 604,800 (7 days), not 'nan'"),
    (("materialize", "raw", "--timeout", "1e308"), "argument --timeout: expected a number of seconds above 0"),
    (("materialize", "raw", "--timeout", "0"), "argument --timeout: expected a number of seconds above 0"),
])
def test_numbers_too_large_or_negative_are_refused_when_parsed(tmp_path: Path, args: tuple[str, ...], expected: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path)
    before = tree(root)
    code, text = run_cli(capsys, "-C", str(root), *args)
    assert code == 2
    assert expected in text and "Traceback" not in text
    assert tree(root) == before  # refused before the store was opened


@pytest.mark.parametrize(("options", "expected"), [
    ({"workers": 10**9}, r"workers must be a whole number from 1 to 256, not 1000000000\."),
    ({"workers": 0}, r"workers must be a whole number from 1 to 256, not 0\."),
    ({"retries": 10**12}, r"retries must be a whole number from 0 to 100, not 1000000000000\."),
    ({"retries": 2.5}, r"retries must be a whole number from 0 to 100, not 2\.5\."),
    ({"execution_timeout_s": float("nan")}, r"execution_timeout_s must be a number of seconds above 0 and at most "
                                            r"604,800, or None for no limit, not nan\."),
    ({"execution_timeout_s": -1}, r"execution_timeout_s must be .* not -1\."),
])
def test_the_python_api_applies_the_same_bounds_before_anything_runs(tmp_path: Path, options: dict,
                                                                     expected: str) -> None:
    root = write_project(tmp_path)
    before = tree(root)
    with Project(root) as project, pytest.raises(InvalidOption, match=expected):
        project.submit("raw", **options)
    with Project(root) as project, pytest.raises(InvalidOption, match=r"limit must be a whole number from 1 to "
                                                                      r"1,000,000, not 10000000000000000000000"):
        project.runs(limit=10**22)
    assert tree(root) == before


@pytest.mark.parametrize(("line", "expected"), [
    ("a --deps b[-99999999999999999999]", r"offset '-99999999999999999999' is out of range; offsets and windows "
                                          rf"reach at most {MAX_OFFSET:,} partitions away"),
    ("a --deps b[-200000:0]", r"offset '-200000' is out of range"),
    ("a --deps b[0:100001]", r"offset '100001' is out of range"),
    ("a --deps b[" + "9" * 5000 + "]", r"is not an offset, a window or 'all'"),
    ("a --retries 1000000000000", r"argument --retries: expected a whole number from 0 to 100"),
    ("a --retries -1", r"argument --retries: expected a whole number from 0 to 100, not '-1'"),
])
def test_declared_numbers_out_of_range_are_refused(line: str, expected: str) -> None:
    with pytest.raises(DeclarationError, match=expected) as info:
        parse_declaration(line, notebook="nb.ipynb", cell=3)
    assert str(info.value).startswith("nb.ipynb, cell 4: ") and len(str(info.value)) < 400


def test_a_partition_range_too_long_is_refused_when_parsed() -> None:
    from notebook_orch.core.partitions import parse_partitions

    with pytest.raises(PartitionError, match=r"has 87,649,416 hourly partitions, more than the 400,000 one asset may "
                                             r"have; start later, end sooner or use a coarser grain"):
        parse_partitions("hourly:0001-01-01-00..9999-12-31-23")
    assert parse_partitions("monthly:0001-01..9999-11").count() == 119987
    # The last window must also end by year 9999 (9999-12 would end in year 10000, which no date holds).
    with pytest.raises(PartitionError, match=r"its last monthly window would end after the year 9999"):
        parse_partitions("monthly:0001-01..9999-12")


# -- the store's file -------------------------------------------------------------------------------------------
def _good(path: Path) -> None:
    open_store(f"sqlite:///{path}").close()


def _sql(path: Path, statement: str) -> None:
    _good(path)
    with sqlite3.connect(path) as raw:
        raw.execute(statement)


@pytest.mark.parametrize(("damage", "expected"), [
    ("UPDATE schema_version SET version = 'abc'", "its schema_version table holds 'abc' instead of a version number"),
    ("DELETE FROM schema_version", "its schema_version table holds 0 rows instead of one"),
    ("INSERT INTO schema_version (id, version, package_version, updated_at) VALUES (2, 1, 'x', '2026-01-01')",
     "its schema_version table holds 2 rows instead of one"),
    ("DROP TABLE runs", "table(s) runs are missing"),
    ("ALTER TABLE runs DROP COLUMN error_source", "table runs lacks column(s) error_source"),
    # {tables}: every table the file still has, by name (the list grows with each migration)
    ("DROP TABLE schema_version", "it has notebook_orch's table(s) {tables} but no schema_version table, so its "
                                  "schema version is unknown"),
])
def test_a_damaged_store_is_reported_as_damaged_and_left_as_it_is(tmp_path: Path, damage: str, expected: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path)
    db = root / ".notebook_orch" / "store.db"
    db.parent.mkdir()
    _sql(db, damage)
    with sqlite3.connect(db) as raw:
        tables = sorted(r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
                                                  "LIKE 'sqlite_%' AND name NOT LIKE '%alembic_version'"))
    raw.close()
    expected = expected.replace("{tables}", ", ".join(tables))
    before = tree(root)
    with pytest.raises(StoreDamaged) as info:
        open_store(f"sqlite:///{db}")
    message = str(info.value)
    assert message.startswith(f"The metadata store at 'sqlite:///{db}' is damaged: {expected}. Restore the file "
                              "from a backup, or move it aside (nothing was changed)")
    code, text = run_cli(capsys, "-C", str(root), "runs")
    assert code == 2 and text == f"error: {message}\n"
    assert tree(root) == before


@pytest.mark.parametrize(("damage", "expected"), [
    ("UPDATE runs SET started_at = 'garbage'", "ValueError: Invalid isoformat string: 'garbage'"),
    ("UPDATE runs SET assets = 'not json{'", "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"),
])
def test_a_damaged_row_is_reported_as_damaged_when_read(tmp_path: Path, damage: str, expected: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path)
    db = root / ".notebook_orch" / "store.db"
    db.parent.mkdir()
    with open_store(f"sqlite:///{db}") as store:
        store.start_run(notebook="notebooks/raw.ipynb", targets=[("raw", "unpartitioned")], kind="manual")
    with sqlite3.connect(db) as raw:
        raw.execute(damage)
    before = tree(root)
    code, text = run_cli(capsys, "-C", str(root), "runs")
    assert code == 2
    assert text == (f"error: The metadata store at 'sqlite:///{db}' is damaged: a row cannot be read ({expected}). "
                    "Restore the file from a backup, or move it aside (nothing was changed) and let notebook_orch "
                    "create a new store; the values under the data folder stay, but the run history is in the old "
                    "file.\n")
    assert tree(root) == before


def test_a_file_that_is_not_a_database_is_left_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    db.write_bytes(b"not a database " * 100)
    with pytest.raises(StoreOpenError, match=r"file is not a database"):
        open_store(f"sqlite:///{db}")
    assert db.read_bytes() == b"not a database " * 100 and sorted(p.name for p in tmp_path.iterdir()) == ["store.db"]


@pytest.mark.parametrize("target", ["missing-folder/store.db", "missing-store.db"])
def test_a_dangling_symlink_to_the_store_is_never_deleted_or_replaced(tmp_path: Path, target: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path)
    (root / ".notebook_orch").mkdir()
    link = root / ".notebook_orch" / "store.db"
    link.symlink_to(root / target)
    before = tree(root)
    code, text = run_cli(capsys, "-C", str(root), "status")
    assert code == 2
    assert f"{link} is a symbolic link to {root / target}, which does not exist. Restore the store it pointed to, " \
           "or fix or remove the link yourself; it was left as is." in text
    assert tree(root) == before and link.is_symlink()


def test_another_applications_database_still_gets_our_tables(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE theirs (x)")
    with open_store(f"sqlite:///{db}") as store:
        assert store.list_runs() == []
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM theirs").fetchone() == (0,)


# -- notebooks and names --------------------------------------------------------------------------------------
def test_a_notebook_nested_too_deeply_is_a_problem_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    deep = "[" * 100_000 + "]" * 100_000
    (folder / "deep_metadata.ipynb").write_text(
        '{"cells": [], "metadata": {"x": ' + deep + '}, "nbformat": 4, "nbformat_minor": 5}')
    (folder / "deep_list.ipynb").write_text(deep)
    nb = new_notebook()
    nb.cells = [new_code_cell("%%asset fine\nfine = 1")]
    nbformat.write(nb, folder / "fine.ipynb")
    found = discover(folder, root=tmp_path)
    assert [s.name for s in found.specs] == ["fine"]
    assert [(p.notebook, p.message.split(";")[0]) for p in found.problems] == [
        ("notebooks/deep_list.ipynb", "The notebook's JSON is nested too deeply to read (thousands of levels of "
                                      "lists or objects"),
        ("notebooks/deep_metadata.ipynb", "The notebook's JSON is nested too deeply to read (thousands of levels of "
                                          "lists or objects"),
    ]


@pytest.mark.parametrize(("line", "what", "name", "normal"), [
    ("ﬁle", "Asset name", "ﬁle", "file"),
    ("ｓales", "Asset name", "ｓales", "sales"),
    ("cafe\u0301", "Asset name", "cafe\u0301", "café"),
    ("report --deps ﬁle", "Dependency name", "ﬁle", "file"),
])
def test_a_name_python_would_normalize_is_explained(line: str, what: str, name: str, normal: str) -> None:
    with pytest.raises(DeclarationError) as info:
        parse_declaration(line, notebook="nb.ipynb", cell=0)
    assert str(info.value) == (
        f"nb.ipynb, cell 1: {what} {name!r} is not in the form Python uses for names: Python reads it as "
        f"{normal!r} (Unicode NFKC normalization), so the cell's variable would be {normal!r}. Write {normal!r} "
        "instead.")
    assert parse_declaration("café").name == "café"  # already normal: fine
