"""Duplicate requests: many requests at the same moment to materialize the same (asset, partition) — `nbo`
processes, kernels running the asset's cell interactively, and the scheduler daemon firing a schedule for it.
Exactly one run happens; every other request is told which run holds the partition.

The winner's cell waits until every other request has answered, so each of them meets a held partition (no
request can slip in after the winner finished). CI: 6 processes, 1 kernel, 1 daemon; the long version
(``NBO_RELIABILITY_LONG=1``): 45 processes, 4 kernels, 1 daemon = 50.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _shared_helpers import wait_for
from reliability_helpers import WORKTREE, check_nothing_lost, env, nbo, record_figure, size, store_of, write_project

pytestmark = pytest.mark.kernel

KEY = "2013-01-15"
CLI_WAITER = """
import pathlib, sys, time
import notebook_orch.project, notebook_orch.store.metadata_store, notebook_orch.faces.cli_runs  # ready before go
from notebook_orch.faces.cli import main
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.005)
sys.exit(main(sys.argv[3:]))
"""


def asset_cell(release: Path) -> str:
    return f"""
    %%asset value --partitions daily:2013-01-01..2013-12-31
    import pathlib, time
    while not pathlib.Path({str(release)!r}).exists():
        time.sleep(0.05)
    value = {{"day": partition_key}}
    """


class Kernel:
    """A real kernel in the project's notebooks folder, running the asset's cell interactively."""

    def __init__(self, root: Path) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(root / "notebooks"), env={**env(), "NBO_PROJECT": str(root)})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.outputs: list[dict] = []
        self.reply: dict = {}

    def run(self, code: str, timeout: float = 300) -> dict:
        self.reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=self.outputs.append)
        return self.reply

    def text(self) -> str:
        parts = []
        for m in self.outputs:
            c = m["content"]
            parts += [str(c.get("text", "")), str(c.get("data", {}).get("text/plain", "")), str(c.get("evalue", ""))]
            parts += c.get("traceback", [])
        return "\n".join(parts)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def due_schedule(root: Path) -> None:
    """A schedule for value[KEY] whose tick is due now: added, then made active an hour ago (catch-up: latest)."""
    proc = nbo(root, "schedule", "add", "dup", "--cron", "* * * * *", "--select", "value", "--partition", KEY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    con = sqlite3.connect(root / ".notebook_orch" / "store.db")
    with con:
        con.execute("UPDATE schedules SET active_since = datetime('now', '-1 hour') WHERE name = 'dup'")
    con.close()


def test_simultaneous_requests_for_one_partition_make_exactly_one_run(tmp_path: Path) -> None:
    total = size("duplicate_requests", ci=8, long=50)  # nbo processes, kernels and the daemon
    n_kernels = 4 if total >= 20 else 1
    n_cli = total - n_kernels - 1
    root, release, go = tmp_path / "p", tmp_path / "release", tmp_path / "go"
    write_project(root, [asset_cell(release)], heartbeat_timeout=60)
    nbo(root, "status")  # create the store before the crowd arrives
    due_schedule(root)
    ready_dir = tmp_path / "ready"
    ready_dir.mkdir()

    def waiter(name: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", CLI_WAITER, str(ready_dir / name), str(go), "-C", str(root),
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=str(WORKTREE), env=env())

    procs = [waiter(f"cli{i}", "materialize", "value", "--partition", KEY) for i in range(n_cli)]
    procs.append(waiter("daemon", "scheduler", "--once"))
    kernels = [Kernel(root) for _ in range(n_kernels)]
    threads: list[threading.Thread] = []
    try:
        for k in kernels:
            k.run(f"%load_ext notebook_orch\n%nbo partition {KEY}")
            k.outputs.clear()
        wait_for(lambda: len(list(ready_dir.iterdir())) == len(procs), timeout=600, what="every process ready")
        cell = asset_cell(release)
        gate = f"import pathlib, time\nwhile not pathlib.Path({str(go)!r}).exists():\n    time.sleep(0.005)\n"
        for k in kernels:
            t = threading.Thread(target=lambda k=k: (k.run(gate), k.run(_dedent(cell))), daemon=True)
            threads.append(t)
            t.start()
        time.sleep(0.5)  # the kernels are in their gate loop
        go.touch()
        started = time.monotonic()

        def answered() -> int:
            return sum(p.poll() is not None for p in procs) + sum(not t.is_alive() for t in threads)

        total = len(procs) + len(threads)
        wait_for(lambda: answered() >= total - 1, timeout=600, what="every request but the winner to answer")
        collapsed_s = time.monotonic() - started
        release.touch()
        for t in threads:
            t.join(timeout=300)
        outputs = {}
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=300)
            outputs[f"proc{i}"] = (p.returncode, out + err)
        for i, k in enumerate(kernels):
            outputs[f"kernel{i}"] = (0 if k.reply["content"]["status"] == "ok" else 1, k.text())
    finally:
        release.touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        for k in kernels:
            k.close()

    store = store_of(root)
    try:
        runs = store.list_runs(limit=1000)
    finally:
        store.close()
    assert [r.status for r in runs] == ["SUCCESS"], [(r.run_id, r.kind, r.status, r.error) for r in runs]
    [winner] = runs
    # Every request but the winner's was told the winner's run id.
    daemon_log = outputs[f"proc{n_cli}"][1]
    told = {name for name, (_, text) in outputs.items() if winner.run_id in text}
    winners = {name for name, (code, text) in outputs.items() if winner.run_id not in text}
    assert len(winners) <= 1, {n: outputs[n] for n in winners}
    for name, (code, text) in outputs.items():
        if name in told and name.startswith("proc") and name != f"proc{n_cli}":
            assert code == 1 and ("already materializing it" in text or "already being materialized" in text), text
        if name in told and name.startswith("kernel"):
            assert f"value[{KEY}] is already being materialized by run {winner.run_id}" in text, text
    if f"proc{n_cli}" in told:
        assert "already" in daemon_log, daemon_log
    check_nothing_lost(root, expect_values={("value", KEY): {"day": KEY}})
    record_figure("duplicates", requests=len(outputs), runs=len(runs), told=len(told),
                  kinds={"cli": n_cli, "kernels": n_kernels, "daemon": 1}, seconds_to_collapse=round(collapsed_s, 1))


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip() + "\n"

