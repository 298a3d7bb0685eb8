"""Warm kernels: one kernel per worker process, reused for every notebook the worker executes.

A plain papermill run starts a kernel (~0.75 s here), imports everything, runs cells (~0.05 s) and shuts the
kernel down (~0.3 s). This engine starts the kernel once; before each notebook it drops every name the previous
run created (``runtime.reset_for_warm_run``) and changes to the notebook's folder, so each run sees a clean
namespace while imported modules stay loaded. Runs, records, output notebooks and failures stay per run.

The engine (``papermill_engine.NotebookOrchEngine``) uses this module for ``nbo_kernel="warm"``.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any

_KERNELS: dict[str, Any] = {}
_LAUNCHED: dict[str, Any] = {}  # kernel name -> manager of a kernel process started by ``launch_early``, not ready yet


def _run_sync(coro_fn: Any) -> Any:
    from jupyter_core.utils import run_sync

    return run_sync(coro_fn)


def _start_kernel(kernel_name: str, startup_timeout: float) -> tuple[Any, Any]:
    """Start a kernel and ONE client for it. A new client per run costs a ready-wait (~0.1-0.2 s) each time."""
    km = _LAUNCHED.pop(kernel_name, None)
    if km is None or not _run_sync(km.is_alive)():
        km = _launch(kernel_name)
    kc = km.client()
    kc.start_channels()

    async def ready() -> None:
        await kc.wait_for_ready(timeout=startup_timeout)

    _run_sync(ready)()
    _execute_quietly(kc, "import notebook_orch.kernel.runtime as __nbo_rt; __nbo_rt.reset_for_warm_run(get_ipython())",
                     timeout=startup_timeout)
    return km, kc


def _launch(kernel_name: str) -> Any:
    from notebook_orch.engine.executor import KERNEL_ARGUMENTS
    from notebook_orch.engine.kernels import new_kernel_manager

    km = new_kernel_manager(kernel_name)  # IPC sockets: no TCP port race with kernels starting beside it
    _run_sync(km.start_kernel)(extra_arguments=list(KERNEL_ARGUMENTS))
    return km


def launch_early(kernel_name: str = "python3") -> None:
    """Start this worker's kernel process now without waiting for it to be ready: it boots (~0.7 s) while the
    worker imports the store and papermill and starts its first run, instead of after. ``warm_kernel`` takes it
    over; if it failed to start, ``warm_kernel`` starts one the usual way and reports that error."""
    if kernel_name in _KERNELS or kernel_name in _LAUNCHED:
        return
    try:
        _LAUNCHED[kernel_name] = _launch(kernel_name)
    except Exception:  # noqa: BLE001 - the run's own start of the kernel says what is wrong
        pass


def _execute_quietly(kc: Any, code: str, *, timeout: float) -> None:
    async def go() -> None:
        reply = await kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            content = reply["content"]
            raise RuntimeError(f"warm kernel setup failed: {content.get('ename')}: {content.get('evalue')}")

    _run_sync(go)()


def discard_kernel(kernel_name: str) -> None:
    """Kill this worker's kernel (after a crash or a timeout) so the next run starts a fresh one."""
    pair = _KERNELS.pop(kernel_name, None)
    if pair is not None:
        km, kc = pair
        try:
            kc.stop_channels()
            _run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # already dead: nothing to clean
            pass


def shutdown_all() -> None:
    for name in list(_KERNELS):
        discard_kernel(name)
    for name in list(_LAUNCHED):
        try:
            _run_sync(_LAUNCHED.pop(name).shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


atexit.register(shutdown_all)


def warm_kernel(kernel_name: str, *, startup_timeout: float = 60) -> tuple[Any, Any]:
    """This worker's (kernel manager, client) for ``kernel_name``, started on first use or after a death."""
    pair = _KERNELS.get(kernel_name)
    if pair is not None and not _run_sync(pair[0].is_alive)():
        discard_kernel(kernel_name)
        pair = None
    if pair is None:
        pair = _KERNELS[kernel_name] = _start_kernel(kernel_name, startup_timeout)
    return pair


def execute_in_warm_kernel(make_client: Callable[[Any], Any], kernel_name: str, *, start_timeout: float = 60) -> Any:
    """Execute a notebook with the client ``make_client(km)`` on this worker's warm kernel, reset for the run.

    The run's cells go to the kernel in ONE execute request (``warm_batch``), after the namespace reset and the change
    to the current folder (papermill's ``cwd``); a reset failure is kept in the namespace for the run's ``%%asset``
    cells to raise (``reset_for_warm_run(record_errors=True)``). Clients with nbclient options the batch does not
    reproduce run cell by cell, the reset sent ahead without waiting for its reply. A failed cell leaves a usable
    kernel; a dead or hung one is discarded so it does not serve the next run.
    """
    from notebook_orch.engine.warm_batch import can_batch, execute_batched

    km, kc = warm_kernel(kernel_name, startup_timeout=start_timeout)
    client = make_client(km)
    client.kc = kc  # reuse the ready client: nbclient starts one only when it has none
    client.language_info_cached = True
    batched = can_batch(client)
    if not batched:
        # Sent without waiting for its reply: the kernel runs requests in order, so it is done before the first
        # cell; nbclient passes over its reply.
        code = (f"import notebook_orch.kernel.runtime as __nbo_rt; "
                f"__nbo_rt.reset_for_warm_run(get_ipython(), cwd={os.getcwd()!r}, record_errors=True)")

        async def send() -> None:  # inside the client's event loop, as every request of nbclient's
            kc.execute(code, silent=True, store_history=False)

        _run_sync(send)()
    try:
        if batched:
            return execute_batched(client, os.getcwd())
        return client.execute(cleanup_kc=False)
    except BaseException:
        alive = False
        try:
            alive = _run_sync(km.is_alive)()
        except Exception:
            alive = False
        if not alive or _timed_out():
            discard_kernel(kernel_name)
        raise


def _timed_out() -> bool:
    import sys

    exc = sys.exc_info()[1]
    return type(exc).__name__ in ("CellTimeoutError", "TimeoutError", "DeadKernelError")


def __getattr__(name: str) -> Any:
    # Installs made before the engine was unified name ``warm_engine:WarmKernelEngine`` in their papermill entry
    # point; it is the one engine now, reached through the same import-safe proxy as the new entry point.
    if name == "WarmKernelEngine":
        from notebook_orch.engine.papermill_entry import NotebookOrchEngine

        return NotebookOrchEngine
    raise AttributeError(name)


__all__ = ["discard_kernel", "execute_in_warm_kernel", "launch_early", "shutdown_all", "warm_kernel"]
