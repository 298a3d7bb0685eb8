"""Helpers for execution tests: real projects, notebooks written with nbformat into tmp_path, a real SQLite store, real
papermill and real ``python3`` kernels. One behaviour per notebook; each notebook starts with
``%load_ext notebook_orch`` (cell 0) and a ``parameters`` cell (cell 1), so asset cells start at index 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat

DAYS = "daily:2013-01-01..2013-01-31"
FIRST_ASSET_CELL = 2  # cell 0 loads the extension, cell 1 holds the parameters
SETUP_TAG = "nbo-setup"  # runs execute only what their assets need, and cells with this tag


def asset_cell(name: str, body: str, *, deps: str | None = None, partitions: str | None = DAYS,
               options: str = "") -> str:
    """The source of one ``%%asset`` cell."""
    line = f"%%asset {name}"
    if deps:
        line += f" --deps {deps}"
    if partitions:
        line += f" --partitions {partitions}"
    if options:
        line += f" {options}"
    return line + "\n" + textwrap.dedent(body).strip() + "\n"


def setup_cell(source: str) -> Any:
    """A code cell tagged ``nbo-setup``: runs in every run although no asset reads a name from it."""
    return nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]})


def write_notebook(path: Path, cells: Iterable[Any]) -> Path:
    """A notebook whose cell 0 loads the extension and cell 1 is the parameters cell, then ``cells`` (sources, or
    cells made by ``setup_cell``)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('partition_key = "2013-01-15"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("%load_ext notebook_orch"), params]
    nb.cells += [src if isinstance(src, dict) else nbformat.v4.new_code_cell(src) for src in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def make_project(root: Path, notebooks: dict[str, list[Any]], *, heartbeat_timeout: float | None = None) -> Path:
    """A project folder: ``pyproject.toml`` with ``[tool.notebook_orch]`` and ``notebooks/<name>.ipynb``."""
    root.mkdir(parents=True, exist_ok=True)
    table = ['[tool.notebook_orch]', 'notebooks = "notebooks"']
    if heartbeat_timeout is not None:
        table.append(f"heartbeat_timeout = {heartbeat_timeout}")
    (root / "pyproject.toml").write_text("\n".join(table) + "\n", encoding="utf-8")
    for name, cells in notebooks.items():
        write_notebook(root / "notebooks" / f"{name}.ipynb", cells)
    return root


def open_project(root: Path) -> Any:
    from notebook_orch.project import Project

    return Project(root)


def runs_of(root: Path, *, asset: str | None = None) -> list[Any]:
    """Every run recorded in the project's store (oldest first), without reaping anything."""
    from notebook_orch.store import open_store

    with open_project(root) as project:
        url = project.config.store_url
    store = open_store(url)
    try:
        return list(reversed(store.list_runs(limit=10_000, asset=asset)))
    finally:
        store.close()


def materializations_of(root: Path, asset: str, partition: str | None = None) -> list[Any]:
    from notebook_orch.store import open_store

    with open_project(root) as project:
        url = project.config.store_url
    store = open_store(url)
    try:
        return store.materializations(asset, partition)
    finally:
        store.close()


def published_versions(root: Path, asset: str, partition: str) -> list[Path]:
    """Version folders of asset[partition] with a ``_SUCCESS`` marker (what readers would trust)."""
    folder = root / ".notebook_orch" / "data" / asset / partition
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / "_SUCCESS").is_file())


def read_value(root: Path, asset: str, partition: str) -> Any:
    """The JSON value of the latest materialization of asset[partition] (as the store points at it)."""
    latest = materializations_of(root, asset, partition)[0]
    path = Path(latest.storage_path)
    assert (path.parent / "_SUCCESS").is_file(), f"{path} is not published"
    return json.loads(path.read_text(encoding="utf-8"))


def output_cells(run: Any) -> list[dict]:
    return json.loads(Path(run.output_path).read_text(encoding="utf-8"))["cells"]


def cell_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def nbo(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
        check: bool = False) -> subprocess.CompletedProcess:
    """``nbo -C root ARGS`` in a subprocess, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def nbo_popen(root: Path, *args: str, env: dict[str, str] | None = None, new_session: bool = False
              ) -> subprocess.Popen:
    """``nbo -C root ARGS`` started in the background; ``new_session`` makes it a process group of its own, so a
    test can send it Ctrl-C the way a terminal does (to the whole group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
        start_new_session=new_session,
    )








def printed(cell: dict) -> str:
    """What a cell of an output notebook printed (its stream outputs)."""
    return "".join(cell_text({"source": o.get("text", "")}) for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")


def source_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def main_cli(root: Path, *args: str) -> tuple[int, str, str]:
    """``nbo -C root ARGS`` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from notebook_orch.faces.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-C", str(root), *args])
    return code, out.getvalue(), err.getvalue()
