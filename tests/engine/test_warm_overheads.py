"""What a warm run no longer pays for: the output notebook rewritten at every cell, a value store (and its entry
point scan) per run, the kernel's language_info asked for every run, IPython's history database in run kernels."""

from __future__ import annotations

import json
from pathlib import Path

from notebook_orch.engine.executor import KERNEL_ARGUMENTS
from notebook_orch.engine.papermill_engine import ThrottledSaves
from notebook_orch.kernel.runtime import AssetRuntime


class FakeManager:
    def __init__(self) -> None:
        self.nb = "nb"
        self.writes: list[object] = []

    def save(self, **kwargs: object) -> None:
        self.writes.append(self.nb)


def test_saves_within_the_interval_are_deferred_and_flushed_once() -> None:
    now = [0.0]
    man = FakeManager()
    saves = ThrottledSaves(man, every_s=2.0, clock=lambda: now[0])  # papermill's notebook_start just wrote
    for t in (0.1, 0.5, 1.9):  # the cells of a quick run: nothing written yet
        now[0] = t
        man.save()
    assert man.writes == []
    now[0] = 2.5  # a long cell: the next save goes through, with what was deferred
    man.save(nb="newer")
    assert man.writes == ["newer"]
    saves.flush()
    assert man.writes == ["newer"]  # nothing pending: flush writes nothing
    now[0] = 2.6
    man.save()
    saves.flush()  # a dead kernel: what was deferred is written
    assert man.writes == ["newer", "newer"]
    saves.restore()
    man.save()
    assert len(man.writes) == 3  # papermill's own save again


def test_a_run_kernel_keeps_its_value_store_while_the_data_folder_stays(tmp_path: Path) -> None:
    runtime = AssetRuntime(tmp_path)
    stores = []
    for run_id, data in (("r1", "d1"), ("r2", "d1"), ("r3", "d2")):
        context = tmp_path / f"{run_id}.json"
        context.write_text(json.dumps({"run_id": run_id, "data_dir": str(tmp_path / data), "assets": {}}))
        runtime._run_context({"run_id": run_id, "context": str(context)})
        stores.append(runtime.values())
    assert stores[0] is stores[1]
    assert stores[2] is not stores[1] and stores[2].root == tmp_path / "d2"


def test_run_kernels_start_without_ipython_history() -> None:
    assert "--HistoryManager.enabled=False" in KERNEL_ARGUMENTS


def test_a_reset_sent_without_waiting_keeps_its_failure_for_the_runs_asset_cells(tmp_path: Path, monkeypatch) -> None:
    from types import SimpleNamespace

    import pytest

    monkeypatch.chdir(tmp_path)  # the reset changes the folder; the test's folder is restored afterwards
    from notebook_orch.errors import RunFailed
    from notebook_orch.kernel.runtime import RESET_ERROR, reset_for_warm_run

    shell = SimpleNamespace(user_ns={"In": []})
    reset_for_warm_run(shell)  # the kernel's first reset takes the baseline
    shell.user_ns["left_over"] = 1
    reset_for_warm_run(shell, cwd=str(tmp_path / "gone"), record_errors=True)
    assert "left_over" not in shell.user_ns
    assert "FileNotFoundError" in shell.user_ns[RESET_ERROR]
    ns = {**shell.user_ns, "nbo_run": {"run_id": "r1", "partition_key": "p", "assets": ["a"]}}
    with pytest.raises(RunFailed, match="could not be prepared for run r1"):
        AssetRuntime(tmp_path).execute_cell("a", "a = 1", ns, lambda: None)
    reset_for_warm_run(shell, cwd=str(tmp_path), record_errors=True)  # the next run's reset clears it
    assert RESET_ERROR not in shell.user_ns
