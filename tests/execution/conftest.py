"""Fixtures for execution tests (helpers live in ``execution_helpers``)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from _shared_helpers import alive

_OUR_ENV = ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT")


@pytest.fixture(scope="session", autouse=True)
def _clean_nbo_environment() -> Iterator[None]:
    """A project's config comes from its own pyproject.toml, not from whatever NBO_* the caller exported."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _OUR_ENV:
            mp.delenv(name, raising=False)
        yield


@pytest.fixture
def started_pids() -> Iterator[list[int]]:
    """Pids a test started; any still alive at teardown are killed (one by one, by id)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
