"""A kernel whose launching process (the worker that records its run) was SIGKILLed does not publish: ipykernel's
parent poller ends such a kernel within about a second, and a value published in that second would have no record
(found by the reliability suite's Dask worker kills: 'published without record'). Real processes: a launcher
process starts a real kernel with jupyter_client, the test SIGKILLs the launcher and asks the kernel to publish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

LAUNCHER = textwrap.dedent("""
    import sys, time
    from jupyter_client import KernelManager
    km = KernelManager()
    km.start_kernel()
    print(km.connection_file, flush=True)
    time.sleep(600)
""")

PUBLISH = textwrap.dedent("""
    import os, json
    os._exit = lambda code=0: None  # keep ipykernel's parent poller from ending this kernel: the test looks first
    from notebook_orch.storage import ValueStore
    from notebook_orch.storage._store import launcher_gone
    from notebook_orch.errors import ValueStorageError
    store = ValueStore(DATA)
    staged = store.stage("a", "2013-01-01", {"k": 1}, run_id="01runthatisgone0000000000")
    try:
        store.commit(staged)
        outcome = "published"
    except ValueStorageError as exc:
        outcome = str(exc)
    print(json.dumps({"gone": launcher_gone(), "outcome": outcome}))
""")


def _run(client, code: str) -> str:
    out: list[str] = []
    reply = client.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
        m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def test_a_kernel_whose_launcher_died_refuses_to_publish(tmp_path: Path) -> None:
    from jupyter_client import BlockingKernelClient

    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, text=True)
    kernel_pid = None
    try:
        connection = launcher.stdout.readline().strip()
        client = BlockingKernelClient(connection_file=connection)
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        kernel_pid = int(_run(client, "import os; print(os.getpid())"))
        data = tmp_path / "data"
        ok = json.loads(_run(client, f"DATA = {str(data)!r}\n" + PUBLISH.replace("01runthatisgone", "01runwhilealive")))
        assert ok == {"gone": None, "outcome": "published"}  # the launcher lives: publishing works
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=30)
        refused = json.loads(_run(client, PUBLISH))
        assert refused["gone"] == launcher.pid
        assert "not published, because the process that launched this kernel" in refused["outcome"]
        published = sorted(p.parent.name for p in (data / "a" / "2013-01-01").glob("*/_SUCCESS"))
        assert len(published) == 1 and published[0].startswith("01runwhilealive")  # the refused one left nothing
        assert not [p for p in (data / "a" / "2013-01-01").iterdir() if p.name.startswith(".")]  # no temp left
        client.stop_channels()
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if kernel_pid is not None:
            try:
                os.kill(kernel_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
