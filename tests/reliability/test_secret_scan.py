"""Secrets read through ``notebook_orch.secret`` end up nowhere, whichever way a run goes.

One project, three ways to run its assets — each asset reads the secret, and one succeeds (printing and logging the
secret on the way), one raises an error that carries it, one tries to store it as its value:

- in the background from the command line (``nbo materialize``: papermill in a warm kernel, local process pool);
- interactively in a real kernel (the ``%%asset`` cells run as a person runs them, the secret printed and
  displayed, then ``%nbo materialize --wait`` in the background from the kernel);
- on a real Dask cluster on 127.0.0.1 (``nbo materialize --executor dask``).

Then every place a secret could land is scanned for its value (also UTF-16 and JSON-escaped): every file under the
project (output notebooks, manifests, value files, the store with its WAL), every row of every table of the store
(the runs' errors, the event log's payloads), what ``nbo`` printed, every message the kernel sent, and the Dask
scheduler's and workers' logs. Zero occurrences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _dask_cluster import LocalDaskCluster
from nbformat.v4 import new_code_cell, new_notebook
from reliability_helpers import leaks, record_figure, store_rows

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

WORKTREE = Path(__file__).resolve().parents[2]
NAME = "NBO_RELIABILITY_SECRET"
SECRET = "pw-RELIAB-5e1d0c7b-never-store"
READ = f"import logging\nimport notebook_orch\ntoken = notebook_orch.secret({NAME!r})\n"
CELLS = {
    "used": READ + "print('using', token)\nprint(f'token={token}')\nlogging.getLogger('app').warning('token %s', "
                   "token)\nused = {'length': len(token), 'key': partition_key}",
    "refused": READ + "raise PermissionError(f'login refused for {token}')\nrefused = 1",
    "leaked": READ + "leaked = {'token': token.reveal()}",
}
PARTITIONS = "static:cli,kernel,background,dask"

@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process's environment before the cluster starts (autouse fixtures come first), so the Dask workers
    and the kernels they start have it."""
    monkeypatch.setenv(NAME, SECRET)


@pytest.fixture
def dask_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real Dask cluster on 127.0.0.1 (tests/_dask_cluster.py), as tests/dask uses."""
    cluster = LocalDaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster
    finally:
        cluster.stop()


def make_project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    for name, body in CELLS.items():  # one notebook each: one run per asset and partition, each with its outcome
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [new_code_cell("%load_ext notebook_orch"),
                    new_code_cell(f"%%asset {name} --partitions {PARTITIONS}\n{body}")]
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    (root / "pyproject.toml").write_text("[tool.notebook_orch]\nheartbeat_timeout = 300\n")
    return root


def env(root: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NBO_")}
    return {**clean, "PYTHONPATH": str(WORKTREE), "NBO_PROJECT": str(root), NAME: SECRET}


def nbo(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=600, env=env(root))


def run_in_kernel(root: Path) -> list[dict]:
    """The cells run interactively, the secret shown on purpose, then a background materialize from the kernel;
    returns every message the kernel sent on IOPub and every reply."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3", shutdown_wait_time=20.0)
    km.start_kernel(cwd=str(root), env=env(root))
    kc = km.client()
    kc.start_channels()
    sent: list[dict] = []
    try:
        kc.wait_for_ready(timeout=120)

        def run(code: str, *, ok: bool = True) -> None:
            reply = kc.execute_interactive(code, timeout=300, output_hook=sent.append)
            sent.append(reply)
            assert (reply["content"]["status"] == "ok") is ok, (code, reply["content"])

        run("%load_ext notebook_orch")
        run("%nbo partition kernel")
        run(f"%%asset used --partitions {PARTITIONS}\n{CELLS['used']}")
        run(f"%%asset refused --partitions {PARTITIONS}\n{CELLS['refused']}", ok=False)
        run(f"%%asset leaked --partitions {PARTITIONS}\n{CELLS['leaked']}", ok=False)
        run("token")  # displayed by accident
        run("print(token, repr(token), str(token), token.upper().lower())")
        run("raise RuntimeError('plain cell: ' + token)", ok=False)
        run("view = %nbo materialize used,refused,leaked --partition background --wait", ok=False)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return sent


def test_a_secret_is_in_no_output_log_store_row_event_value_or_message(dask_cluster, tmp_path: Path,
                                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    root = make_project(tmp_path / "project")
    printed = {"cli": nbo(root, "materialize", "used,refused,leaked", "--partition", "cli")}
    sent = run_in_kernel(root)
    printed["dask"] = nbo(root, "materialize", "used,refused,leaked", "--partition", "dask", "--executor", "dask",
                          "--address", dask_cluster.address)

    # The runs happened as they should: the secret was read and used; the errors are there, redacted.
    from notebook_orch.store import open_store

    db = root / ".notebook_orch" / "store.db"
    with open_store(f"sqlite:///{db}") as store:
        runs = store.list_runs(limit=1000)
        events = store.events_after(0, limit=100_000)
        used = {m.partition for m in store.materializations("used")}
    by = {(r.assets[0], r.partition_keys[0]): r for r in runs if len(r.assets) == 1}
    for where in ("cli", "background", "dask"):
        assert by[("used", where)].status == "SUCCESS", (where, by[("used", where)].error)
        assert by[("refused", where)].status == "FAILED"
        assert f"login refused for <secret {NAME}>" in by[("refused", where)].error, by[("refused", where)].error
        assert by[("leaked", where)].status == "FAILED"
    assert {"cli", "kernel", "background", "dask"} <= used, used
    assert all(p.returncode == 1 for p in printed.values()), {k: p.stderr[-2000:] for k, p in printed.items()}

    # Scan every place.
    places: dict[str, str | bytes] = {}
    files = [p for p in root.rglob("*") if p.is_file()]
    places.update({f"file {p.relative_to(root)}": p.read_bytes() for p in files})
    places.update({f"table {t}": text for t, text in store_rows(db).items()})
    places.update({f"nbo {k} stdout": p.stdout for k, p in printed.items()})
    places.update({f"nbo {k} stderr": p.stderr for k, p in printed.items()})
    places.update({f"kernel message {i}": json.dumps(m, default=str) for i, m in enumerate(sent)})
    places.update({f"run {r.run_id} error": r.error or "" for r in runs})
    places.update({f"event {e.id}": json.dumps(e.payload, default=str) for e in events})
    dask_logs = sorted(tmp_path_factory.getbasetemp().glob("dask*/logs/*.log"))  # the fixture's folder
    places.update({f"dask log {p.name}": p.read_bytes() for p in dask_logs})
    assert leaks(places, SECRET) == [], leaks(places, SECRET)

    # What was searched, so an empty scan cannot pass: output notebooks of every way, manifests, values, the store.
    names = {p.name for p in files}
    outputs = [r.output_path for r in runs if r.output_path]
    assert len(outputs) >= 9 and all(Path(o).is_file() and Path(o).is_relative_to(root) for o in outputs), outputs
    assert {"store.db", "manifest.jsonl"} <= names and any(n.startswith("value") for n in names), sorted(names)
    assert len(sent) > 20 and dask_logs and len(events) > 10
    record_figure("secrets", places=len(places), files=len(files), tables=len(store_rows(db)), events=len(events),
                  kernel_messages=len(sent), runs=len(runs), occurrences=0)
