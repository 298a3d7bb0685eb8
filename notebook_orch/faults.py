"""Fault injection for the crash tests (tests/reliability): a process SIGKILLs itself at a named point.

``NOTEBOOK_ORCH_FAULT=POINT[,POINT...]`` kills the process that reaches POINT; with
``NOTEBOOK_ORCH_FAULT_ONCE=DIR`` each point fires at most once among all processes sharing DIR (the first to create
``DIR/POINT`` dies, the retry passes). Unset — always, outside tests — a point costs one dictionary lookup.

Points, in the order a value goes through them (``storage/_store.py``, ``engine/lifecycle.py``):

=================  ==========================================================================================
before_publish     the value is computed; its temporary folder is not created yet
during_publish     the value file is written in ``.tmp-<run>-*`` but not verified nor renamed
after_rename       the version folder is in place, without its ``_SUCCESS`` marker
after_publish      ``_SUCCESS`` is written: the value is published, nothing is recorded yet
before_finalize    the run is about to commit its materializations and SUCCESS (the runner's process)
after_finalize     the transaction committed; the runner has not reported the outcome yet
=================  ==========================================================================================

``NOTEBOOK_ORCH_FAULT_PAUSE=DIR`` parks the process at the point instead of killing it: it writes its pid to
``DIR/POINT.<pid>`` and waits (up to 10 minutes) until a test removes that file — to kill another process (a Dask
worker whose kernel is mid-publish) at exactly that moment.

Values are published in the run's kernel and finalized in the worker (papermill runs) or both in the kernel
(interactive cells), so the same point kills a kernel or a worker depending on the run.
"""

from __future__ import annotations

import os

POINTS = ("before_publish", "during_publish", "after_rename", "after_publish", "before_finalize", "after_finalize")


def fault_point(name: str) -> None:
    """SIGKILL this process here if ``NOTEBOOK_ORCH_FAULT`` names ``name``."""
    wanted = os.environ.get("NOTEBOOK_ORCH_FAULT")
    if not wanted or name not in wanted.split(","):
        return
    once = os.environ.get("NOTEBOOK_ORCH_FAULT_ONCE")
    if once:
        try:
            os.makedirs(once, exist_ok=True)
            os.close(os.open(os.path.join(once, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    pause = os.environ.get("NOTEBOOK_ORCH_FAULT_PAUSE")
    if pause:
        _park(os.path.join(pause, f"{name}.{os.getpid()}"))
        return
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def _park(flag: str) -> None:
    import time

    os.makedirs(os.path.dirname(flag), exist_ok=True)
    with open(flag + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(flag + ".tmp", flag)
    deadline = time.monotonic() + 600
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.02)


__all__ = ["POINTS", "fault_point"]
