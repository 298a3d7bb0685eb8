"""Fixtures for the kernel side: a real project folder in tmp_path and real IPython shells with the extension.

``InteractiveShell.instance()`` is a process-wide singleton: each shell here is created after
``clear_instance()`` and torn down (extension unloaded, runtime closed, singleton cleared) after the test.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from interactive_helpers import CELLS, ProjectDir, Session, write_notebook
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectDir:
    for var in ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "proj"
    (root / ".notebook_orch").mkdir(parents=True)
    write_notebook(root / "notebooks" / "pipeline.ipynb", list(CELLS.values()))
    monkeypatch.chdir(root)
    return ProjectDir(root)


@pytest.fixture
def new_session(project: ProjectDir) -> Iterator[Callable[[], Session]]:
    """Factory of fresh shells (each replaces the previous singleton); the setup and knob cells already ran."""
    saved_hooks = sys.displayhook, sys.excepthook
    sessions: list[Session] = []

    def make() -> Session:
        if sessions:
            sessions[-1].close()
        InteractiveShell.clear_instance()
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        session = Session(InteractiveShell.instance(config=config))
        sessions.append(session)
        session.ok(CELLS["setup"])
        session.ok(CELLS["knobs"])
        return session

    yield make
    if sessions:
        sessions[-1].close()
    InteractiveShell.clear_instance()
    sys.displayhook, sys.excepthook = saved_hooks


@pytest.fixture
def session(new_session: Callable[[], Session]) -> Session:
    return new_session()
