"""Fixtures for the pool tests: the store suite's ``store``/``store_url`` (a real SQLite file and a real PostgreSQL
server this session starts on 127.0.0.1), loaded from tests/store/conftest.py so there is one way to get them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("store_conftest", Path(__file__).parents[1] / "store" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_store)

pg_databases = _store.pg_databases
store_url = _store.store_url
store = _store.store


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest hook
    """The store suite's loud PostgreSQL summary, once: tests/store's own conftest says it when it was collected too."""
    store_conftest = str(Path(__file__).parents[1] / "store" / "conftest.py")
    if any(getattr(p, "__file__", None) == store_conftest for p in terminalreporter.config.pluginmanager.get_plugins()):
        return
    _store.pytest_terminal_summary(terminalreporter)
