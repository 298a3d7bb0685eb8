"""The throw-away PostgreSQL server of the tests does not outlive a test run that is killed with SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from notebook_orch.store.pg_server import PostgresUnavailable, find_bin_dir

STARTS_AND_DIES = """
import os
from notebook_orch.store.pg_server import TemporaryPostgres
server = TemporaryPostgres().start()
print(server.root, server.port, flush=True)
os.kill(os.getpid(), 9)
"""


@pytest.mark.slow
def test_a_server_whose_owner_is_killed_is_stopped_and_its_folder_removed() -> None:
    try:
        find_bin_dir()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    done = subprocess.run([sys.executable, "-c", STARTS_AND_DIES], capture_output=True, text=True, timeout=180)
    assert done.returncode == -9, done.stderr
    root, port = done.stdout.split()
    deadline = time.monotonic() + 30
    while Path(root).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not Path(root).exists(), f"{root} outlived its owner"
    servers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"-p {port}" not in servers and root not in servers
