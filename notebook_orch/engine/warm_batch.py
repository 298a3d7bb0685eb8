"""A warm run's cells in ONE execute request: the worker's side (``kernel/batch.py`` is the kernel's).

nbclient sends one execute request per cell and waits for its reply before the next; on a warm kernel that
per-request cost (messages both ways, ipykernel's bookkeeping) was most of a run. Here the cells the run executes go
out in one request; the kernel runs them in order and ends each with a ``notebook_orch_cell_end`` message, and this
side files every IOPub message under the cell that was running when it was sent — through nbclient's own
``process_message``, so outputs, display updates, widgets and ``clear_output`` are handled as before. papermill's
per-cell bookkeeping (``cell_start`` / ``cell_exception`` / ``cell_complete``, skipped cells, cells never started
after a failure) is called in the same order as papermill's loop calls it, and the same exceptions come out:
``CellTimeoutError`` when one cell runs past the execution timeout, ``DeadKernelError`` when the kernel dies.
"""

from __future__ import annotations

import secrets
from time import monotonic
from typing import Any

from jupyter_core.utils import ensure_async
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from notebook_orch.kernel.batch import CELL_END, encode_cells

_POLL_S = 1.0  # how often the kernel's liveness is checked while no message comes


def can_batch(client: Any) -> bool:
    """nbclient options this path does not reproduce send the client back to the cell-by-cell loop."""
    return not (client.coalesce_streams or client.on_cell_start or client.on_cell_execute or client.on_cell_complete
                or client.on_cell_executed or client.on_cell_error or client.allow_error_names)


def execute_batched(client: Any, cwd: str) -> Any:
    """Execute ``client``'s notebook on its warm kernel (``client.kc``) in one request; returns the notebook."""
    from jupyter_core.utils import run_sync

    client.reset_execution_trackers()
    run_sync(_execute)(client, cwd)
    info = getattr(client.kc, "nbo_language_info", None)
    if info is None:
        info = client.wait_for_reply(client.kc.kernel_info())["content"]["language_info"]
        client.kc.nbo_language_info = info
    client.nb.metadata["language_info"] = info
    client.set_widgets_metadata()
    return client.nb


def _steps(client: Any) -> list[tuple[int, str]]:
    """(cell index, what papermill's loop does with it): "skip" (not in the run), "empty" (started and completed,
    nothing sent: nbclient does not send an empty or ``skip-execution`` cell) or "run"."""
    steps = []
    for index, cell in enumerate(client.nb.cells):
        if cell.cell_type != "code":
            continue
        if client.cell_plan is not None and not client.cell_plan.runs(index):
            steps.append((index, "skip"))
        elif not cell.source.strip() or client.skip_cells_with_tag in cell.metadata.get("tags", []):
            steps.append((index, "empty"))
        else:
            steps.append((index, "run"))
    return steps


def _allows_errors(client: Any, cell: Any) -> bool:
    return (not client.force_raise_errors) and (
        client.allow_errors or "raises-exception" in cell.metadata.get("tags", []))


async def _execute(client: Any, cwd: str) -> None:
    from nbclient.client import timestamp

    nb, nb_man = client.nb, client.nb_man
    steps = _steps(client)
    runs = [index for index, kind in steps if kind == "run"]
    token = secrets.token_hex(8)
    payload = encode_cells(token=token, cwd=cwd, cells=[nb.cells[i].source for i in runs],
                           allow_errors=[_allows_errors(client, nb.cells[i]) for i in runs])
    code = f"await __import__('notebook_orch.kernel.batch').kernel.batch.run_cells(get_ipython(), {payload!r})"

    pos = 0  # next step of ``steps``

    def advance() -> int | None:
        """papermill's loop up to the next cell sent to the kernel: that cell's index (started), or None."""
        nonlocal pos
        while pos < len(steps):
            index, kind = steps[pos]
            pos += 1
            cell = nb.cells[index]
            if kind == "skip":
                client.mark_skipped(cell)
                continue
            nb_man.cell_start(cell, index)
            if kind == "empty":
                nb_man.cell_complete(nb.cells[index], cell_index=index)
                continue
            cell.outputs = []
            client.clear_before_next_output = False
            if client.record_timing:
                cell["metadata"]["execution"] = {}
            return index
        return None

    current = advance()
    if current is None:
        return
    msg_id = client.kc.execute(code, store_history=False, stop_on_error=True, allow_stdin=False)
    client.code_cells_executed += len(runs)
    failed = False
    started_at: str | None = None
    deadline = _deadline(client, nb.cells[current])
    while True:
        msg = await _next_iopub(client, deadline, nb.cells[current] if current is not None else None)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msg_type, content = msg["msg_type"], msg["content"]
        if msg_type == "status":
            if content.get("execution_state") == "busy":
                started_at = timestamp(msg)
            elif content.get("execution_state") == "idle":
                break
            continue
        if msg_type == "execute_input":  # the request's own input, not a cell's
            continue
        if msg_type == CELL_END and content.get("token") == token:
            if current is None:
                continue
            cell = nb.cells[current]
            cell.execution_count = content.get("execution_count")
            if client.record_timing:
                now = timestamp(msg)
                cell["metadata"]["execution"].update({
                    "iopub.status.busy": started_at or now, "iopub.execute_input": started_at or now,
                    "shell.execute_reply": now, "iopub.status.idle": now})
                started_at = now
            if not content.get("ok") and not _allows_errors(client, cell):
                _fail(nb_man, cell, current, content)
                failed, current, deadline = True, None, None
                continue
            nb_man.cell_complete(nb.cells[current], cell_index=current)
            current = advance()
            if current is not None:
                deadline = _deadline(client, nb.cells[current])
            continue
        if current is not None:
            client.process_message(msg, nb.cells[current], current)
    if current is not None and not failed:
        # The request ended while a cell ran: the driver itself stopped (an interrupt, say); that cell failed.
        _fail(nb_man, nb.cells[current], current, {"ename": "CellExecutionError", "evalue": ""})
    await _reply(client, msg_id)


def _fail(nb_man: Any, cell: Any, index: int, content: dict) -> None:
    error = CellExecutionError.from_cell_and_msg(cell, {"ename": content.get("ename") or "CellExecutionError",
                                                        "evalue": content.get("evalue") or "", "traceback": []})
    nb_man.cell_exception(cell, cell_index=index, exception=error)
    nb_man.cell_complete(cell, cell_index=index)


def _timeout(client: Any, cell: Any) -> float | None:
    """nbclient's per-cell timeout (``timeout_func`` or ``timeout``; none when unset or not positive)."""
    timeout = client.timeout_func(cell) if client.timeout_func is not None else client.timeout
    return timeout if timeout and timeout > 0 else None


def _deadline(client: Any, cell: Any) -> float | None:
    timeout = _timeout(client, cell)
    return None if timeout is None else monotonic() + timeout


async def _next_iopub(client: Any, deadline: float | None, cell: Any) -> dict:
    from queue import Empty

    while True:
        wait = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - monotonic()))
        try:
            return await ensure_async(client.kc.iopub_channel.get_msg(timeout=wait))
        except Empty:
            pass
        if deadline is not None and monotonic() >= deadline and cell is not None:
            raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", _timeout(client, cell), cell)
        if not await _alive(client):
            raise DeadKernelError("Kernel died")


async def _reply(client: Any, msg_id: str) -> None:
    """Take the request's reply off the shell channel (replies to earlier requests are passed over)."""
    from queue import Empty

    while True:
        try:
            msg = await ensure_async(client.kc.shell_channel.get_msg(timeout=_POLL_S))
        except Empty:
            if not await _alive(client):
                raise DeadKernelError("Kernel died") from None
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return


async def _alive(client: Any) -> bool:
    """The kernel process is running (the manager polls it: no heartbeat period to wait out)."""
    if client.km is not None:
        return bool(await ensure_async(client.km.is_alive()))
    return bool(await ensure_async(client.kc.is_alive()))


__all__ = ["can_batch", "execute_batched"]
