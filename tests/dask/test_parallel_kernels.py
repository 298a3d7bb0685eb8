"""Kernels started in parallel on one host (a Dask worker's threads, a pool's processes, two ``nbo`` commands) must
not race for TCP ports (papermill #511): run kernels talk over IPC sockets in a folder private to the process
(engine/kernels.py). Real kernels, started all at once from threads and from two processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from notebook_orch.engine.kernels import kernel_transport, new_kernel_manager

ROOT = Path(__file__).resolve().parents[2]


def test_run_kernels_use_ipc_sockets_in_a_private_folder_unless_tcp_is_asked_for(monkeypatch) -> None:
    km = new_kernel_manager("python3")
    assert km.transport == "ipc"
    folder = Path(km.ip).parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.name.startswith("nbo-k-")
    assert len(f"{km.ip}-99999") < 100  # a Unix socket path must stay under ~107 bytes
    assert new_kernel_manager("python3").ip != km.ip  # a fresh prefix per kernel
    monkeypatch.setenv("NBO_KERNEL_TRANSPORT", "tcp")
    assert kernel_transport() == "tcp" and new_kernel_manager("python3").transport == "tcp"


def _start_run_and_stop() -> tuple[str, str]:
    from jupyter_core.utils import run_sync

    km = new_kernel_manager("python3")
    run_sync(km.start_kernel)(extra_arguments=["--IPKernelApp.log_level=ERROR"])
    kc = km.client()
    kc.start_channels()
    try:
        run_sync(kc.wait_for_ready)(timeout=120)
        reply = run_sync(kc.execute_interactive)("import os; pid = os.getpid()", timeout=60,
                                                output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok"
        return km.transport, km.ip
    finally:
        kc.stop_channels()
        run_sync(km.shutdown_kernel)(now=True)


@pytest.mark.kernel
def test_kernels_started_at_once_from_threads_and_processes_all_come_up() -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys
            sys.path.insert(0, sys.argv[1])
            from concurrent.futures import ThreadPoolExecutor
            from test_parallel_kernels import _start_run_and_stop
            with ThreadPoolExecutor(3) as pool:
                print(sorted(t for t, _ in pool.map(lambda _: _start_run_and_stop(), range(3))))
        """), str(Path(__file__).parent)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with ThreadPoolExecutor(3) as pool:
        here = list(pool.map(lambda _: _start_run_and_stop(), range(3)))
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err
    assert out.strip() == "['ipc', 'ipc', 'ipc']"
    assert [t for t, _ in here] == ["ipc"] * 3 and len({ip for _, ip in here}) == 3
    # Shut down kernels leave no socket files behind.
    assert not [p for _, ip in here for p in Path(ip).parent.glob(Path(ip).name + "-*")]
