"""Secrets are read from the environment at run time and end up nowhere: not in parameters, output notebooks, the
store (database and WAL), value files, manifests, or what ``nbo`` prints — also when a cell fails with the secret in
its error message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execution_helpers import asset_cell, cell_text, make_project, nbo, output_cells, read_value, runs_of, setup_cell

pytestmark = pytest.mark.kernel

DAY = "2013-01-01"
SECRET = "s3cr3t-NBO-7f9a1c-do-not-store"
READ = 'import notebook_orch\ntoken = notebook_orch.secret("NBO_TEST_SECRET")\ntoken'


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("secrets")
    make_project(root, {
        "uses": [READ, asset_cell("uses_secret", 'uses_secret = {"token_length": len(token)}')],
        # The asset cell's error goes through notebook_orch's one user-code boundary ...
        "fails_in_asset": [READ, asset_cell("fails_in_asset", """
            raise PermissionError(f"login refused for {token}")
            fails_in_asset = 1
        """)],
        # ... a plain cell's error does not: papermill reports it as the kernel printed it (the cell is set-up, so
        # runs execute it although no asset needs it).
        "fails_in_plain_cell": [setup_cell(READ),
                                setup_cell('raise PermissionError(f"plain cell: login refused for {token}")'),
                                asset_cell("fails_in_plain_cell", "fails_in_plain_cell = 1")],
    })
    proc = nbo(root, "materialize", "uses_secret,fails_in_asset,fails_in_plain_cell", "--partition", DAY,
               env={"NBO_TEST_SECRET": SECRET})
    runs = {r.assets[0]: r for r in runs_of(root)}
    return {"root": root, "proc": proc, "runs": runs}


def test_the_notebook_reads_the_secret_and_uses_it(secret_run: dict) -> None:
    root, runs = secret_run["root"], secret_run["runs"]
    assert runs["uses_secret"].status == "SUCCESS"
    assert read_value(root, "uses_secret", DAY) == {"token_length": len(SECRET)}
    # Displaying the secret shows its name only.
    shown = output_cells(runs["uses_secret"])[3]["outputs"]
    assert [cell_text({"source": o["data"]["text/plain"]}) for o in shown if o["output_type"] == "execute_result"] == [
        "Secret('NBO_TEST_SECRET')"]


def test_errors_carrying_the_secret_are_stored_redacted(secret_run: dict) -> None:
    runs = secret_run["runs"]
    assert runs["fails_in_asset"].status == "FAILED"
    assert runs["fails_in_asset"].error.endswith("PermissionError: login refused for <secret NBO_TEST_SECRET>")
    assert runs["fails_in_plain_cell"].status == "FAILED"
    assert runs["fails_in_plain_cell"].error == (
        "PermissionError: plain cell: login refused for <secret NBO_TEST_SECRET>")
    assert secret_run["proc"].returncode == 1


def test_the_secret_is_in_no_file_of_the_project_and_not_in_what_nbo_printed(secret_run: dict) -> None:
    root, proc = secret_run["root"], secret_run["proc"]
    needles = [SECRET.encode(), SECRET.encode("utf-16-le"), json.dumps(SECRET).encode()]
    files = [p for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    # What must have been searched: the store (with its -wal/-shm while they exist), the values, output notebooks
    # and manifests.
    assert {"store.db", "uses.ipynb", "fails_in_asset.ipynb", "fails_in_plain_cell.ipynb", "manifest.jsonl",
            "value.json"} <= names
    leaks = [str(p) for p in files if any(n in p.read_bytes() for n in needles)]
    assert leaks == []
    assert SECRET not in proc.stdout
    assert SECRET not in proc.stderr
    for run in secret_run["runs"].values():
        assert SECRET not in Path(run.output_path).read_text(encoding="utf-8")
        assert "NBO_TEST_SECRET" not in json.dumps([c for c in output_cells(run)
                                                    if "injected-parameters" in c["metadata"].get("tags", [])])
