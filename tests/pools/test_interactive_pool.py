"""An ``%%asset`` cell run by hand in a real kernel takes a pool slot like a background run: while the only slot of
``warehouse`` is held elsewhere its run is WAITING and the cell's output says "waiting for pool warehouse (n ahead
...)", updated as the queue moves; it runs once the runs queued before it are done, and its slot is released when it
ends. Interrupting the kernel while it waits cancels the run and leaves its place in the queue."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project

pytestmark = pytest.mark.kernel
POOLS = {"pool:warehouse": 1}
CELL = "%%asset solo --pool warehouse\nsolo = {'rows': 1}"


def make_project(root: Path) -> None:
    (root / "notebooks").mkdir(parents=True)
    (root / ".notebook_orch").mkdir()
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell("%load_ext notebook_orch"), new_code_cell(CELL),
                new_code_cell("%%asset other --pool warehouse\nother = 1"),
                new_code_cell("%%asset third --pool warehouse\nthird = 1")]
    nbformat.write(nb, root / "notebooks" / "pool.ipynb")
    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n\n'
                                         "[tool.notebook_orch.concurrency]\npools = { warehouse = 1 }\n")


class Kernel:
    def __init__(self, root: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NBO_")}
        self.km = KernelManager(kernel_name="python3", shutdown_wait_time=20.0)
        self.km.start_kernel(cwd=str(root), env={**env, "NBO_PROJECT": str(root)})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.texts: list[str] = []

    def run(self, code: str) -> None:
        reply = self.kc.execute_interactive(code, timeout=120, output_hook=lambda m: None)
        assert reply["content"]["status"] == "ok", reply["content"]

    def start(self, code: str) -> str:
        return self.kc.execute(code)

    def until(self, msg_id: str, predicate: Any, timeout_s: float = 60) -> dict | None:
        """Read the cell's output until ``predicate(texts)`` holds; returns the execute reply if the cell ended."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.texts):
                return None
            try:
                msg = self.kc.get_iopub_msg(timeout=0.5)
            except Exception:  # noqa: BLE001 - queue.Empty: nothing yet
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            text = content.get("text") or content.get("data", {}).get("text/plain") or ""
            if text:
                self.texts.append(str(text))
        pytest.fail(f"timed out; the cell said: {self.texts}")

    def reply(self, msg_id: str, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = self.kc.get_shell_msg(timeout=timeout_s)
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]
        pytest.fail("no reply")

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def hold(project: Project, name: str):
    return project.store.start_run(notebook="notebooks/pool.ipynb", targets=[(name, "unpartitioned")],
                                   kind="manual", pools=POOLS)


def solo_runs(project: Project) -> list:
    return [r for r in project.store.list_runs(limit=20) if r.assets == ("solo",)]


def test_a_cell_waits_for_the_pool_says_so_and_runs_when_its_turn_comes(tmp_path: Path) -> None:
    make_project(tmp_path)
    kernel = Kernel(tmp_path)
    try:
        kernel.run("%load_ext notebook_orch")
        with Project(tmp_path) as project:
            holder = hold(project, "other")
            queued = hold(project, "third")
            assert (holder.status, queued.status) == ("RUNNING", "WAITING")
            msg = kernel.start(CELL)
            kernel.until(msg, lambda t: any("waiting for pool warehouse (1 ahead, 1 of 1 in use)" in x for x in t))
            [run] = solo_runs(project)
            assert (run.status, run.kind) == ("WAITING", "interactive")
            project.store.finalize_success(holder.run_id, [])
            # The slot is free but the run queued before the cell's gets it: the cell says it is next.
            kernel.until(msg, lambda t: any("(1 ahead, 0 of 1 in use)" in x for x in t))
            assert solo_runs(project)[0].status == "WAITING"
            assert project.store.take_pool_slots(queued.run_id, POOLS) == "RUNNING"
            kernel.until(msg, lambda t: any("(0 ahead, 1 of 1 in use)" in x for x in t))
            project.store.finalize_success(queued.run_id, [])
            kernel.until(msg, lambda t: any("got its pool slot" in x for x in t))
            assert kernel.reply(msg)["status"] == "ok"
            [run] = solo_runs(project)
            assert run.status == "SUCCESS"
            assert project.store.pool_usage() == {} and project.store.pool_waiters() == []
            events = [(e.kind, e.run_id) for e in project.store.events_after(0)]
            assert events.index(("RUN_SUCCESS", queued.run_id)) < events.index(("RUN_STARTED", run.run_id))
            # A second run of the cell with the pool free takes the slot at once and says nothing about waiting.
            kernel.texts.clear()
            msg = kernel.start(CELL)
            assert kernel.reply(msg)["status"] == "ok"
            assert not any("waiting" in x for x in kernel.texts)
            assert [r.status for r in solo_runs(project)] == ["SUCCESS", "SUCCESS"]
            assert project.store.pool_usage() == {}
    finally:
        kernel.close()


def test_interrupting_a_waiting_cell_cancels_its_run_and_frees_its_place(tmp_path: Path) -> None:
    make_project(tmp_path)
    kernel = Kernel(tmp_path)
    try:
        kernel.run("%load_ext notebook_orch")
        with Project(tmp_path) as project:
            holder = hold(project, "other")
            msg = kernel.start(CELL)
            kernel.until(msg, lambda t: any("waiting for pool warehouse" in x for x in t))
            kernel.km.interrupt_kernel()
            reply = kernel.reply(msg)
            assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
            [run] = solo_runs(project)
            assert run.status == "CANCELED"
            assert project.store.pool_waiters() == []
            assert project.store.pool_usage() == {"pool:warehouse": [holder.run_id]}
            assert ("solo", "unpartitioned") not in project.store.running()
    finally:
        kernel.close()
