"""Project configuration: ``[tool.notebook_orch]`` in the project's ``pyproject.toml``, then environment overrides.

Defaults need no config at all: notebooks in ``notebooks/``, store ``sqlite:///.notebook_orch/store.db``, values
under ``.notebook_orch/data/``. Environment: ``NBO_NOTEBOOKS``, ``NBO_STORE_URL``, ``NBO_DATA_DIR``,
``NBO_HEARTBEAT_TIMEOUT``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from notebook_orch.errors import NotebookOrchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_STORE = ".notebook_orch/store.db"
_KEYS = {"notebooks", "store", "data", "heartbeat_timeout"}


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    notebooks: Path
    store_url: str
    data_dir: Path
    heartbeat_timeout_s: float = 120.0


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def load_config(root: str | Path | None = None) -> ProjectConfig:
    root = Path(root or os.getcwd()).resolve()
    table: dict = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("notebook_orch", {})
        except tomllib.TOMLDecodeError as exc:
            raise NotebookOrchError(f"{pyproject} is not valid TOML ({exc}); fix it or remove it.") from None
        unknown = set(table) - _KEYS
        if unknown:
            raise NotebookOrchError(
                f"{pyproject}: unknown key(s) {sorted(unknown)} in [tool.notebook_orch]; known: {sorted(_KEYS)}."
            )
    notebooks = os.environ.get("NBO_NOTEBOOKS") or table.get("notebooks", "notebooks")
    data = os.environ.get("NBO_DATA_DIR") or table.get("data", ".notebook_orch/data")
    store = os.environ.get("NBO_STORE_URL") or table.get("store")
    if not store:
        store = _sqlite_url(root / DEFAULT_STORE)
    elif "://" not in store:  # a bare path means a SQLite file, relative to the project
        store = _sqlite_url((root / store).resolve())
    timeout = float(os.environ.get("NBO_HEARTBEAT_TIMEOUT") or table.get("heartbeat_timeout", 120))
    return ProjectConfig(
        root=root,
        notebooks=(root / notebooks).resolve(),
        store_url=store,
        data_dir=(root / data).resolve(),
        heartbeat_timeout_s=timeout,
    )
