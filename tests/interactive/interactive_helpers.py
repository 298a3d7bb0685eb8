"""Shared pieces of the interactive tests: the project's notebook cells, the project folder and a shell session.

The project has one saved notebook, ``notebooks/pipeline.ipynb`` (``CELLS`` below), a SQLite store and value
files under ``.notebook_orch/``. Tests run the notebook's cells by name in a real ``InteractiveShell`` — the asset
cells exactly as saved, or edited on purpose. Knobs (``N_ROWS``, ``OFFSET``, ``FAIL``) and the ``HOOK`` function
let a test change what a cell produces without editing the saved notebook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import capture_output

from notebook_orch.config import load_config
from notebook_orch.storage import ValueStore
from notebook_orch.store import MetadataStore, open_store

DAILY = "daily:2013-01-01..2013-01-31"
CELLS: dict[str, str] = {
    "setup": "%load_ext notebook_orch\nimport pandas as pd",
    "knobs": (
        "N_ROWS = 3\nOFFSET = 0\nFAIL = False\n\n"
        "def make_raw(key):\n"
        "    return pd.DataFrame({'day': [key] * N_ROWS, 'x': [i + OFFSET for i in range(N_ROWS)],\n"
        "                         'y': [1.0, None, 3.0, 4.0][:N_ROWS]})"
    ),
    "raw": f"%%asset raw --partitions {DAILY} --check 'len(raw) == 3' --check 'raw.x.min() >= 0'\n"
           "raw = make_raw(partition_key)",
    "clean": f"%%asset clean --deps raw --partitions {DAILY}\nclean = raw.dropna()",
    "rolling": f"%%asset rolling --deps raw[-2:0] --partitions {DAILY}\nrolling = raw.assign(rows=len(raw))",
    "prev": f"%%asset prev --deps raw[-1] --partitions {DAILY}\nprev = 'nothing' if raw is None else len(raw)",
    "summary": "%%asset summary --deps raw[all]\nsummary = raw.groupby('day', as_index=False).x.sum()",
    "monthly": "%%asset monthly --deps raw --partitions monthly:2013-01..2013-01\nmonthly = raw",
    "config": "%%asset config\nconfig = {'scale': 10}",
    "scaled": f"%%asset scaled --deps config,raw --partitions {DAILY}\nscaled = raw.assign(x=raw.x * config['scale'])",
    "counts": f"%%asset counts --partitions {DAILY}\ncounts = {{'day': partition_key, 'n': N_ROWS}}",
    "count_window": f"%%asset count_window --deps counts[-1:0] --partitions {DAILY}\ncount_window = counts",
    "seen": "%%asset seen --partitions static:us,eu\n"
            "seen = {'key': partition_key, 'date': repr(globals().get('partition_date'))}",
    "seen_day": f"%%asset seen_day --partitions {DAILY}\n"
                "seen_day = {'key': partition_key, 'date': partition_date.isoformat(),\n"
                "            'type': type(partition_date).__name__}",
    "fragile": "%%asset fragile\nif FAIL:\n    raise ValueError('boom from user code')\n"
               "fragile = pd.DataFrame({'a': [1]})",
    "hooked": "%%asset hooked\nhooked = HOOK()",
    "blob": "%%asset blob --io pickle\nblob = {1, 2, 3}",
    "loose": "%%asset loose\nloose = {1, 2, 3}",
    "secured": (
        "%%asset secured\nimport notebook_orch\n"
        "token = notebook_orch.secret('NBO_TEST_TOKEN')\n"
        "if FAIL:\n    raise RuntimeError(f'login refused for {token}')\n"
        "secured = pd.DataFrame({'token_length': [len(token)]})"
    ),
}  # fmt: skip


def write_notebook(path: Path, sources: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


def cell_index(name: str) -> int:
    return list(CELLS).index(name)


@dataclass
class ProjectDir:
    root: Path

    @property
    def notebook(self) -> Path:
        return self.root / "notebooks" / "pipeline.ipynb"

    @property
    def config(self) -> Any:
        return load_config(self.root)

    def store(self) -> MetadataStore:
        return open_store(self.config.store_url)

    def values(self) -> ValueStore:
        return ValueStore(self.config.data_dir)

    def save(self, cells: dict[str, str]) -> None:
        """Save the notebook with these cells (what a user's Ctrl-S does)."""
        write_notebook(self.notebook, list(cells.values()))


class Session:
    """One real IPython shell with ``%load_ext notebook_orch``; ``run`` captures what a notebook would show."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        self.stdout = ""
        self.stderr = ""

    @property
    def ns(self) -> dict[str, Any]:
        return self.shell.user_ns

    @property
    def runtime(self) -> Any:
        return self.shell._nbo_runtime

    def run(self, source: str) -> ExecutionResult:
        with capture_output() as out:
            result = self.shell.run_cell(source)
        self.stdout, self.stderr = _plain(out.stdout), _plain(out.stderr)
        return result

    def ok(self, source: str) -> str:
        """Run a cell that must succeed; return its stdout."""
        result = self.run(source)
        assert result.success, f"cell failed: {result.error_in_exec!r}\n{self.stdout}\n{self.stderr}"
        return self.stdout

    def cell(self, name: str) -> ExecutionResult:
        return self.run(CELLS[name])

    def asset(self, name: str, partition: str | None = None) -> str:
        """Materialize a saved asset cell (at ``partition``); return its one-line summary."""
        if partition is not None:
            self.ok(f"%nbo partition {partition}")
        return self.ok(CELLS[name]).strip()

    def close(self) -> None:
        self.shell.extension_manager.unload_extension("notebook_orch")


def _plain(text: str) -> str:
    """Without terminal colour codes (tracebacks and rich tables are coloured)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
