"""The kernel side of a warm run sent as ONE execute request (``engine/warm_batch.py`` sends it).

A warm run used to cost one execute request per cell (reset, ``%load_ext``, parameters, injected parameters, the
asset cell): each pays ipykernel's request overhead (status busy/idle, execute_input, reply) in the kernel and a
round trip of messages in the worker. Here the worker sends the run's cells at once and the kernel runs them in
order exactly as ``ipykernel``'s ``do_execute`` would — ``shell.run_cell`` with history, or ``run_cell_async`` plus
the ``post_execute``/``post_run_cell`` events for a cell with top-level ``await`` — and after each cell sends a
``notebook_orch_cell_end`` message on IOPub with the cell's outcome. Outputs a cell produced go out before that
message (the streams are flushed first), so the worker files every output under the right cell. Like a queue of
requests sent with ``stop_on_error``, a failed cell stops the run unless the cell allows errors.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sys
from typing import Any

from notebook_orch.kernel.cell_support import reset_for_warm_run

CELL_END = "notebook_orch_cell_end"  # IOPub message type: one per executed cell, never an output


def encode_cells(*, token: str, cwd: str, cells: list[str], allow_errors: list[bool]) -> str:
    """The payload of ``run_cells`` (base64 of JSON: no IPython transform ever sees the cells' text twice)."""
    data = {"token": token, "cwd": cwd, "cells": cells, "allow_errors": allow_errors}
    return base64.b64encode(json.dumps(data).encode("utf-8")).decode("ascii")


async def run_cells(shell: Any, payload: str) -> None:
    """Reset the warm namespace (a failure is kept for the run's ``%%asset`` cells, as before), then run each cell."""
    spec = json.loads(base64.b64decode(payload))
    reset_for_warm_run(shell, cwd=spec["cwd"], record_errors=True)
    for position, (source, allow_error) in enumerate(zip(spec["cells"], spec["allow_errors"])):
        count = shell.execution_count
        result = await _run_one(shell, source)
        ok = bool(result is not None and result.success) and not getattr(
            shell, "_last_traceback_during_displayhook", False)
        err = None if result is None else (result.error_before_exec or result.error_in_exec)
        shell.payload_manager.clear_payload()  # as do_execute: a payload (pager, set_next_input) is not kept
        _send_end(shell, {"token": spec["token"], "position": position, "ok": ok, "execution_count": count,
                          "ename": type(err).__name__ if err is not None else None,
                          "evalue": str(err) if err is not None else None})
        if not ok and not allow_error:
            return


async def _run_one(shell: Any, source: str) -> Any:
    shell._last_traceback_during_displayhook = False
    if _reloads_our_extension(shell, source):
        # The warm kernel loaded the extension for an earlier run; IPython would print "The notebook_orch extension
        # is already loaded" into every output notebook, where a fresh kernel's run shows nothing.
        with contextlib.redirect_stdout(io.StringIO()):
            return shell.run_cell(source, store_history=True)
    preprocessing_exc_tuple = None
    try:
        transformed = shell.transform_cell(source)
    except Exception:  # noqa: BLE001 - run_cell reports it, as for any cell
        transformed = source
        preprocessing_exc_tuple = sys.exc_info()
    if not shell.should_run_async(source, transformed_cell=transformed,
                                  preprocessing_exc_tuple=preprocessing_exc_tuple):
        return shell.run_cell(source, store_history=True)
    result = None
    try:  # top-level await: run on the kernel's loop (this coroutine's), then the events run_cell would fire
        result = await shell.run_cell_async(source, store_history=True, silent=False, transformed_cell=transformed,
                                            preprocessing_exc_tuple=preprocessing_exc_tuple)
    finally:
        shell.events.trigger("post_execute")
        shell.events.trigger("post_run_cell", result)
    return result


def _reloads_our_extension(shell: Any, source: str) -> bool:
    return source.strip() == "%load_ext notebook_orch" and "notebook_orch" in shell.extension_manager.loaded


def _send_end(shell: Any, content: dict) -> None:
    # The cell's stream output is buffered by ipykernel: flushed first, so it reaches the worker before this message
    # (both go through the kernel's one IOPub thread, in order).
    sys.stdout.flush()
    sys.stderr.flush()
    pub = shell.display_pub
    msg = pub.session.msg(CELL_END, content, parent=pub.parent_header)
    pub.session.send(pub.pub_socket, msg, ident=getattr(pub, "topic", None))


__all__ = ["CELL_END", "encode_cells", "run_cells"]
