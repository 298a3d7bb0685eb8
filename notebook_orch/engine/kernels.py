"""Kernel managers for runs: kernels talk to their worker over IPC sockets, not TCP ports.

Kernels started in parallel on one host race for TCP ports (papermill #511): jupyter_client picks each port by
binding port 0 and closing the socket again, and between that and the kernel binding it, another process starting
a kernel may be handed the same port — the kernel dies with "Address already in use" or, worse, two clients talk to
one kernel. A worker pool, a Dask worker with several threads or two ``nbo`` commands start kernels exactly like
that. Unix domain sockets in a folder private to this process have no shared namespace to race in: each kernel gets
a fresh prefix (``<folder>/<random>``), and the sockets never leave the host (a kernel is always a child of the
worker that runs it, whichever host that is).

``NBO_KERNEL_TRANSPORT=tcp`` goes back to TCP (and Windows, which has no IPC transport in ZeroMQ, always uses it).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
import uuid
from typing import Any

_FOLDER: str | None = None
_FOLDER_PID: int | None = None
_LOCK = threading.Lock()


def kernel_transport() -> str:
    """``ipc`` unless Windows or ``NBO_KERNEL_TRANSPORT=tcp``."""
    wanted = os.environ.get("NBO_KERNEL_TRANSPORT", "").strip().lower()
    if sys.platform.startswith("win") or wanted == "tcp":
        return "tcp"
    return "ipc"


def _socket_folder() -> str:
    """This process's folder for kernel sockets: short (a socket path must stay under ~100 bytes), mode 0700,
    removed at exit. A forked child makes its own."""
    global _FOLDER, _FOLDER_PID
    with _LOCK:
        if _FOLDER is None or _FOLDER_PID != os.getpid():
            _FOLDER = tempfile.mkdtemp(prefix="nbo-k-", dir="/tmp" if os.path.isdir("/tmp") else None)
            _FOLDER_PID = os.getpid()
            atexit.register(shutil.rmtree, _FOLDER, True)
        return _FOLDER


def new_kernel_manager(kernel_name: str, **options: Any) -> Any:
    """An ``AsyncKernelManager`` for ``kernel_name`` (not started) on this host's race-free transport."""
    from jupyter_client.manager import AsyncKernelManager

    if kernel_transport() == "ipc":
        options = {"transport": "ipc", "ip": os.path.join(_socket_folder(), uuid.uuid4().hex[:12]), **options}
    return AsyncKernelManager(kernel_name=kernel_name, **options)


__all__ = ["kernel_transport", "new_kernel_manager"]
