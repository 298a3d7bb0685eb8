"""Concurrency pools from the user's side: limits declared in pyproject.toml, assets tagged ``--pool warehouse``, two
``nbo materialize`` commands started at once from two terminals (real processes, real kernels). One run executes,
the other is WAITING — shown by ``nbo runs`` and ``nbo status`` — and starts when the first ends; the event log
shows they never overlapped. A ``--pool`` no config declares is refused before anything is stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from notebook_orch.store import open_store

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
_OUR_ENV = ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT")


def notebook(path: Path, asset_source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("%load_ext notebook_orch"), nbformat.v4.new_code_cell(asset_source)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def project(root: Path, *, pools: str) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f'[tool.notebook_orch]\nnotebooks = "notebooks"\n\n[tool.notebook_orch.concurrency]\n{pools}\n')
    for name in ("load_a", "load_b"):
        notebook(root / "notebooks" / f"{name}.ipynb",
                 f"%%asset {name} --pool warehouse\nimport time\ntime.sleep(3)\n{name} = {{'rows': 1}}\n")
    return root


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in _OUR_ENV}
    return {**clean, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def nbo(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=120, env={**env(), "COLUMNS": "200"})


def test_two_terminals_share_a_pool_of_one_and_the_second_waits_visibly(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", pools="pools = { warehouse = 1 }")
    first, second = (subprocess.Popen([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root),
                                       "materialize", name], env=env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
                     for name in ("load_a", "load_b"))
    try:
        deadline = time.monotonic() + 90
        while True:
            runs = json.loads(nbo(root, "runs", "--json").stdout or "[]")
            if {r["status"] for r in runs} == {"RUNNING", "WAITING"}:
                break
            assert time.monotonic() < deadline, f"never one RUNNING and one WAITING: {runs}"
            time.sleep(0.2)
        shown = nbo(root, "runs")
        assert "WAITING" in shown.stdout and "waiting for a pool slot (full: pool warehouse 1/1 in use)" in shown.stdout
        assert "; 0 ahead in pool warehouse" in shown.stdout  # its place in the first-come, first-served queue
        [waiting] = [r for r in runs if r["status"] == "WAITING"]
        assert waiting["pool_queue"] == {"position": 1, "ahead": {"pool:warehouse": 0}}
        status = nbo(root, "status")
        assert "pools: pool warehouse 1/1 in use; 1 run(s) WAITING for a slot" in status.stdout
        assert json.loads(nbo(root, "status", "--json").stdout)["pools"][0] | {"holders": None} == {
            "pool": "pool:warehouse", "limit": 1, "in_use": 1, "holders": None}
        for proc in (first, second):
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    with open_store(f"sqlite:///{root}/.notebook_orch/store.db") as store:
        runs = store.list_runs()
        assert sorted(r.status for r in runs) == ["SUCCESS", "SUCCESS"]
        events = store.events_after(0)
        live, peak = set(), 0
        for e in events:  # ids follow commit order: a sweep counts the runs executing at once
            if e.kind == "RUN_STARTED":
                live.add(e.run_id)
                peak = max(peak, len(live))
            elif e.kind.startswith("RUN_") and e.kind not in ("RUN_WAITING",):
                live.discard(e.run_id)
        assert peak == 1
        [waited] = [e for e in events if e.kind == "RUN_WAITING"]
        assert waited.payload["waiting_for"] == [{"pool": "pool:warehouse", "limit": 1, "in_use": 1, "ahead": 0}]
        # The waiting run started only after the other one ended.
        ended = next(e.id for e in events if e.kind == "RUN_SUCCESS")
        started_late = next(e.id for e in events if e.kind == "RUN_STARTED" and e.run_id == waited.run_id)
        assert started_late > ended


def test_an_undeclared_pool_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    root = project(tmp_path / "proj", pools="pools = { warehous = 1 }")
    result = nbo(root, "materialize", "load_a")
    assert result.returncode != 0
    assert "runs in pool 'warehouse', which" in result.stderr and "did you mean 'warehous'?" in result.stderr
    assert "load_a.ipynb, cell 2" in result.stderr
    store_file = root / ".notebook_orch" / "store.db"
    if store_file.exists():
        with open_store(f"sqlite:///{store_file}") as store:
            assert store.list_runs() == []
