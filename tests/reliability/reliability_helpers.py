"""Shared by the crash, duplicate and fault tests: a small real project (real kernels, papermill, SQLite), the
`nbo` command as a real process, process-tree helpers, and the invariant check every torture ends with."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat

WORKTREE = Path(__file__).resolve().parents[2]
DAYS = "daily:2013-01-01..2013-12-31"
LONG = os.environ.get("NBO_RELIABILITY_LONG", "") not in ("", "0")  # benchmarks/run.py reliability sets it
FIGURES = os.environ.get("NBO_RELIABILITY_FIGURES")  # where the long versions append their figures (JSON lines)


def size(name: str, *, ci: int, long: int) -> int:
    """How big a torture is: ``NBO_RELIABILITY_<NAME>`` when set (``benchmarks/run.py reliability --size small``
    sets each), else its long size under ``NBO_RELIABILITY_LONG``, else its CI size."""
    return int(os.environ.get(f"NBO_RELIABILITY_{name.upper()}", long if LONG else ci))


def write_project(root: Path, cells: Iterable[str], *, heartbeat_timeout: float = 4.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.notebook_orch]\nnotebooks = "notebooks"\nheartbeat_timeout = {heartbeat_timeout}\n', encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('partition_key = "2013-01-01"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("%load_ext notebook_orch"), params]
    nb.cells += [nbformat.v4.new_code_cell(textwrap.dedent(c).strip() + "\n") for c in cells]
    (root / "notebooks").mkdir(exist_ok=True)
    nbformat.write(nb, str(root / "notebooks" / "pipe.ipynb"))
    return root


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NBO_", "NOTEBOOK_ORCH_FAULT"))}
    return {**clean, "PYTHONPATH": str(WORKTREE), **extra}


def nbo_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args]


def nbo(root: Path, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(nbo_cmd(root, *args), capture_output=True, text=True, timeout=timeout, env=env(**extra))


def nbo_popen(root: Path, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(nbo_cmd(root, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(**extra))










def store_of(root: Path) -> Any:
    from notebook_orch.store import open_store

    return open_store(f"sqlite:///{root / '.notebook_orch' / 'store.db'}")


def check_nothing_lost(root: Path, *, expect_values: dict[tuple[str, str], Any] | None = None) -> dict[str, int]:
    """The promises after any crash, checked from the store and the folders themselves:
    - every published version folder (with _SUCCESS) is recorded by a materialization, and vice versa;
    - every recorded value loads and has the data version its record says (no half-written value is visible);
    - no staging folder, unmarked version folder or marker temp file is left;
    - no run is RUNNING and no lock is held;
    - ``nbo doctor`` says consistent.
    ``expect_values``: (asset, partition) -> the value its latest materialization must hold."""
    from notebook_orch.project import Project
    from notebook_orch.storage import ValueStore, scan_values

    with Project(root) as project:
        data = project.config.data_dir
    store = store_of(root)
    try:
        runs = store.list_runs(limit=100_000)
        assert not [r.run_id for r in runs if r.status == "RUNNING"], "a run is still RUNNING"
        assert store.running() == {}, f"locks left: {store.running()}"
        facts = store.integrity_facts()
    finally:
        store.close()
    entries = scan_values(data)
    leftovers = [e.path for e in entries if e.kind != "published"]
    assert not leftovers, f"left on disk: {leftovers}"
    published = {e.path: e for e in entries}
    recorded = {str(Path(m.storage_path).parent): m for m in facts.materializations if m.storage_path}
    assert sorted(published) == sorted(recorded), (
        f"published without record: {sorted(set(published) - set(recorded))}; "
        f"records without value: {sorted(set(recorded) - set(published))}")
    values = ValueStore(data)
    for folder, m in recorded.items():
        assert published[folder].data_version == m.data_version, folder
        values.load(folder)  # loads: whole
    if expect_values:
        latest = {}
        for m in facts.materializations:
            latest[(m.asset, m.partition)] = m
        for key, want in expect_values.items():
            assert key in latest, f"{key} has no materialization"
            got = values.load(str(Path(latest[key].storage_path).parent))
            assert got.equals(want) if hasattr(got, "equals") else got == want, key
    proc = nbo(root, "doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"runs": len(runs), "materializations": len(facts.materializations), "values": len(published)}


def record_figure(name: str, **fields: Any) -> None:
    if FIGURES:
        with open(FIGURES, "a", encoding="utf-8") as f:
            f.write(json.dumps({"figure": name, **fields}) + "\n")


def store_rows(db: Path) -> dict[str, str]:
    """Every table of the store as text: each row's repr, BLOBs decoded both ways a secret could sit in them."""
    raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out = {}
        for table in tables:
            rows = raw.execute(f'SELECT * FROM "{table}"').fetchall()
            out[table] = "\n".join(
                repr(tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in row)) for row in rows)
        return out
    finally:
        raw.close()


def leaks(places: dict[str, str | bytes], secret: str) -> list[str]:
    """The names of the places holding ``secret`` (as is, JSON-escaped, or in UTF-16)."""
    needles = [secret, json.dumps(secret)[1:-1]]
    byte_needles = [secret.encode(), secret.encode("utf-16-le")]
    return [name for name, content in places.items()
            if (isinstance(content, bytes) and any(n in content for n in byte_needles))
            or (isinstance(content, str) and any(n in content for n in needles))]
