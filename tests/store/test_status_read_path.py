"""``nbo status`` reads a SQLite store through sqlite3 alone (store/sqlite_read.py): it must say exactly what the
SQLAlchemy store says, on a real file, in every state of the snapshot cache; and a cold status imports neither
SQLModel nor SQLAlchemy."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.faces.cli import main
from notebook_orch.store import ConsumedInput, NewMaterialization, sqlite_read

DAYS = "--partitions daily:2013-01-01..2013-01-06"
KEYS = [f"2013-01-0{d}" for d in range(1, 7)]
NOW = datetime(2026, 3, 1)
FIXTURES = Path(__file__).parent / "fixtures"


def _write(root: Path, raw_body: str = "raw = {'x': 1}") -> None:
    cells = {
        "raw.ipynb": [f"%%asset raw {DAYS}\n{raw_body}"],
        "down.ipynb": [f"%%asset clean --deps raw {DAYS}\nclean = raw",
                       f"%%asset rolling --deps clean[-2:0] {DAYS}\nrolling = clean",
                       "%%asset report --deps clean[all]\nreport = clean"],
    }
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    for name, sources in cells.items():
        nb = new_notebook()
        nb.cells = [new_code_cell(s) for s in sources]
        nbformat.write(nb, root / "notebooks" / name)


class _Recorder:
    """Writes runs through the SQLAlchemy store, remembering each partition's latest materialization (lineage)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.latest: dict[tuple[str, str], tuple[int, str, int]] = {}  # -> (id, data version, data_seq)
        self.clock = NOW

    def materialize(self, asset: str, key: str, data: str, reads: list[tuple[str, str]] = ()) -> None:
        spec = self.project.graph.spec(asset)
        store = self.project.store
        self.clock += timedelta(seconds=1)
        run = store.start_run(notebook=spec.notebook, targets=[(asset, key)], kind="manual", now=self.clock)
        inputs = tuple(ConsumedInput(a, p, *self.latest[(a, p)]) for a, p in reads)
        [record] = store.finalize_success(run.run_id, [NewMaterialization(
            asset=asset, partition=key, code_version=spec.code_version, data_version=data,
            deps_signature=spec.deps_signature, inputs=inputs)], now=self.clock)
        before = self.latest.get((asset, key))
        seq = before[2] if before is not None and before[1] == data else record.id
        self.latest[(asset, key)] = (record.id, data, seq)

    def attempt(self, asset: str, key: str, status: str) -> None:
        self.clock += timedelta(seconds=1)
        store = self.project.store
        run = store.start_run(notebook="x.ipynb", targets=[(asset, key)], kind="manual", now=self.clock)
        store.finalize_failure(run.run_id, error="boom", status=status, now=self.clock)

    def hold(self, asset: str, key: str) -> None:
        self.project.store.start_run(notebook="x.ipynb", targets=[(asset, key)], kind="manual", now=self.clock)


def _outputs(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    out = {}
    for args in (["status", "--json"], ["status"], ["stale", "--json"], ["lineage", "--format", "json"]):
        assert main(["-C", str(root), *args]) == 0 or args[0] == "stale"
        out[" ".join(args)] = capsys.readouterr().out
    return out


def _explained(root: Path, *, fast: bool) -> list[object]:
    with Project(root) as project:
        if not fast:
            project.store  # noqa: B018 - opened: status takes the SQLAlchemy path
        assert (project._fast_reader() is not None) == fast  # noqa: SLF001 - which path is under test
        report = project.status(now=NOW)
        return [report.explain(a, k) for a in project.graph.order for k in report.keys(a)]


def _compare(root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    fast = _outputs(root, capsys)
    with monkeypatch.context() as m:
        m.setattr(sqlite_read, "open_reader", lambda url: None)  # every face falls back to the store
        slow = _outputs(root, capsys)
    assert fast == slow
    assert _explained(root, fast=True) == _explained(root, fast=False)
    return fast


def test_fast_path_says_what_the_store_says(tmp_path: Path, capsys, monkeypatch):
    _write(tmp_path)
    with Project(tmp_path) as project:
        rec = _Recorder(project)
        for key in KEYS[:4]:
            rec.materialize("raw", key, f"r{key}")
            rec.materialize("clean", key, f"c{key}", [("raw", key)])
        for key in KEYS[1:4]:
            rec.materialize("rolling", key, "w", [("clean", k) for k in KEYS if k <= key][-3:])
        rec.materialize("report", project.graph.spec("report").partitions.keys(now=NOW)[0],
                        "rep", [("clean", k) for k in KEYS[:4]])
    first = _compare(tmp_path, capsys, monkeypatch)  # no cache yet: full read, cache written
    assert json.loads(first["status --json"])["totals"]["FRESH"] > 0
    _compare(tmp_path, capsys, monkeypatch)  # every asset from the cache

    with Project(tmp_path) as project:
        rec2 = _Recorder(project)
        rec2.latest, rec2.clock = rec.latest, rec.clock + timedelta(minutes=1)
        rec2.materialize("raw", KEYS[0], "B")  # A -> B -> A: clean[0] read A and A is back: fresh
        rec2.materialize("raw", KEYS[0], f"r{KEYS[0]}")
        rec2.materialize("raw", KEYS[1], "changed")  # clean[1], rolling[1..3] and report stale
        rec2.attempt("clean", KEYS[2], "FAILED")  # over a value: the value's status stays
        rec2.attempt("clean", KEYS[5], "FAILED")  # over nothing: FAILED
        rec2.attempt("raw", KEYS[5], "CANCELED")
        rec2.hold("raw", KEYS[4])  # RUNNING
    changed = _compare(tmp_path, capsys, monkeypatch)  # a few assets read again, the rest from the cache
    totals = json.loads(changed["status --json"])["totals"]
    assert totals["STALE"] > 0 and totals["FAILED"] == 1 and totals["RUNNING"] == 1

    _write(tmp_path, "raw = {'x': 2}")  # code changed: everything built from raw is stale
    again = _compare(tmp_path, capsys, monkeypatch)
    assert json.loads(again["status --json"])["totals"]["STALE"] > totals["STALE"]


def test_read_path_names_the_columns_of_the_schema():
    from notebook_orch.store.schema import partition_state
    from notebook_orch.store.state_read import STATE_COLUMNS

    # Every column of partition_state but the key's asset is read, in AssetStates' order: a new column needs both.
    assert ["asset", *STATE_COLUMNS] == [c.name for c in partition_state.columns]


def test_cold_status_imports_no_sqlalchemy(tmp_path: Path):
    _write(tmp_path)
    with Project(tmp_path) as project:
        _Recorder(project).materialize("raw", KEYS[0], "a")
    code = (
        "import sys\n"
        "from notebook_orch.faces.cli import main\n"
        f"sys.argv = ['nbo', '-C', {str(tmp_path)!r}, 'status', '--json']\n"
        "assert main() == 0\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sqlmodel', 'sqlalchemy', 'pydantic', 'rich',\n"
        "                                                          'pandas', 'pyarrow', 'croniter', 'IPython'})\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout[: done.stdout.rindex("HEAVY")])["totals"]["FRESH"] == 1
    assert done.stdout.strip().endswith("HEAVY []"), done.stdout[-200:]


def test_fast_path_only_for_a_plain_sqlite_file_at_this_schema(tmp_path: Path, capsys):
    assert sqlite_read.sqlite_path("sqlite:////abs/store.db") == Path("/abs/store.db")
    assert sqlite_read.sqlite_path("sqlite:///rel/store.db") == Path("rel/store.db")
    for other in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=ro&uri=true", "sqlite:///a%20b.db",
                  "sqlite+pysqlite:///x.db", "postgresql+psycopg://u@h/db", "sqlite:///x.db?timeout=3"):
        assert sqlite_read.sqlite_path(other) is None, other
    _write(tmp_path)
    store = tmp_path / ".notebook_orch" / "store.db"
    assert sqlite_read.open_reader(f"sqlite:///{store}") is None  # no file: never created here
    assert not store.exists()
    # A store written by the first schema version: the fast path declines, and status migrates it as usual.
    store.parent.mkdir(parents=True)
    with sqlite3.connect(store) as conn:
        conn.executescript((FIXTURES / "schema_v1.sqlite.sql").read_text())
    assert sqlite_read.open_reader(f"sqlite:///{store}") is None
    assert main(["-C", str(tmp_path), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["MISSING"] == 6 * 3 + 1
    reader = sqlite_read.open_reader(f"sqlite:///{store}")  # migrated to head: now it reads
    assert reader is not None
    reader.close()


def test_a_report_outlives_the_reader(tmp_path: Path):
    _write(tmp_path)
    with Project(tmp_path) as project:
        rec = _Recorder(project)
        rec.materialize("raw", KEYS[0], "a")
        rec.materialize("clean", KEYS[0], "c", [("raw", KEYS[0])])
    with Project(tmp_path) as project:
        report = project.status(now=NOW)
        assert project._reader is not None  # noqa: SLF001 - read through sqlite3
        project.store  # noqa: B018 - the store opens (a materialize, say): the reader closes
        assert project._reader is None  # noqa: SLF001
        explained = report.explain("clean", KEYS[0])  # asks what it consumed: the store answers now
        assert explained.status == "FRESH" and explained.materialization_id is not None
