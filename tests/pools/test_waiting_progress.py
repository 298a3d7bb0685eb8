"""``%nbo materialize`` of an asset whose pool is full: the notebook's progress line says how many of its runs wait
for a pool slot (the handle reads their WAITING status from the store), and stops saying so once they run. A real
local executor and kernel run the notebook."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_interactive_pool import POOLS, hold, make_project

from notebook_orch import Project
from notebook_orch.faces.progress import RunProgressView

pytestmark = pytest.mark.kernel


def until(condition, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail("timed out")


def test_the_progress_line_counts_runs_waiting_for_a_pool_slot(tmp_path: Path, monkeypatch) -> None:
    make_project(tmp_path)
    for var in ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    with Project(tmp_path) as project:
        holder = hold(project, "other")
        handle = project.submit("solo", workers=1)
        view = RunProgressView(handle)
        try:
            until(lambda: handle.waiting() == 1)
            view._refresh()  # noqa: SLF001 - what the one-second ticker calls
            assert "1 waiting for a pool slot" in view._label.value  # noqa: SLF001
            project.store.finalize_success(holder.run_id, [])
            report = handle.wait(120)
            assert [o.status for o in report.outcomes] == ["SUCCESS"]
            assert handle.waiting() == 0
            view._refresh(finished=True)  # noqa: SLF001
            assert "waiting" not in view._label.value and view._label.value.startswith("done")  # noqa: SLF001
            assert project.store.pool_usage() == {} and POOLS == {"pool:warehouse": 1}
        finally:
            if not handle.done():
                handle.cancel()
