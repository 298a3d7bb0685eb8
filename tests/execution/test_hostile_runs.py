"""Hostile notebooks under real papermill and real kernels: secrets read under a computed name never leave the kernel
(plain papermill, no notebook_orch executor involved) and never reach the data folder; ``SystemExit`` in a cell is
reported as that, naming the cell."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from execution_helpers import FIRST_ASSET_CELL, asset_cell, make_project, nbo, runs_of, setup_cell

pytestmark = pytest.mark.kernel

DAY = "2013-01-01"
SECRET = "s3cr3t-computed-name-5d2e"
# The name is computed: nothing in the source says which variable is a secret.
READ = "import notebook_orch\nprefix = 'NBO_RUN'\ntoken = notebook_orch.secret(prefix + '_TOKEN')"
SYSTEM_EXIT_HINT = ("(the cell called sys.exit() or raised SystemExit; in a notebook that stops the cell, not the "
                    "kernel, and fails the run: raise an exception that says what went wrong instead)")


def test_the_kernel_scrubs_every_output_before_it_leaves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    monkeypatch.setenv("NBO_RUN_TOKEN", SECRET)  # the kernel inherits this process's environment
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in [
        READ,
        "print('printed', token)",                                   # stdout
        "import sys\nprint('warned', token.reveal(), file=sys.stderr)",  # stderr
        "token.reveal()",                                             # execute_result
        "from IPython.display import display, HTML\ndisplay({'auth': f'Bearer {token}'})\n"
        "display(HTML(f'<b>{token.reveal()}</b>'))",                  # display_data, text and html
        "raise PermissionError(f'login refused for {token}')",        # error and traceback
    ]]
    source, output = tmp_path / "plain.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    with pytest.raises(PapermillExecutionError) as info:
        pm.execute_notebook(str(source), str(output), kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    assert info.value.evalue == "login refused for <secret NBO_RUN_TOKEN>"
    text = output.read_text(encoding="utf-8")
    assert SECRET not in text
    cells = json.loads(text)["cells"]
    shown = [json.dumps(c["outputs"]) for c in cells if c["cell_type"] == "code"]
    assert "printed <secret NBO_RUN_TOKEN>" in shown[1]
    assert "warned <secret NBO_RUN_TOKEN>" in shown[2]
    assert "<secret NBO_RUN_TOKEN>" in shown[3] and "<secret NBO_RUN_TOKEN>" in shown[4]
    assert "<b><secret NBO_RUN_TOKEN></b>" in shown[4]
    assert "login refused for <secret NBO_RUN_TOKEN>" in shown[5]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    # Runs execute only the cells their assets need: the plain cells under test are tagged nbo-setup so they run.
    make_project(root, {
        "shows": [READ, setup_cell("print('using', token)"),
                  asset_cell("shows_it", "shows_it = {'length': len(token)}")],
        "stores": [READ, asset_cell("stores_it", "stores_it = {'header': f'Bearer {token}'}")],
        # Printed before any secret() call, so the kernel did not know it yet: the executor's scrub (by the names
        # the kernel reported afterwards) is what keeps it out of the output notebook.
        "early": [setup_cell("import os\nprint('early', os.environ['NBO_RUN_' + 'TOKEN'])"), setup_cell(READ),
                  asset_cell("early_print", "early_print = 1")],
        "plain_exit": [setup_cell("import sys\nsys.exit(4)"), asset_cell("after_exit", "after_exit = 1")],
        "asset_exit": [asset_cell("asset_exit", "raise SystemExit('bye')\nasset_exit = 1")],
    })
    proc = nbo(root, "materialize", "shows_it,stores_it,early_print,after_exit,asset_exit", "--partition", DAY,
               env={"NBO_RUN_TOKEN": SECRET})
    return {"root": root, "proc": proc, "runs": {r.assets[0]: r for r in runs_of(root)}}


def test_a_secret_read_under_a_computed_name_is_in_no_file_and_not_printed(hostile_run: dict) -> None:
    root, proc, runs = hostile_run["root"], hostile_run["proc"], hostile_run["runs"]
    assert runs["shows_it"].status == "SUCCESS"
    files = [p for p in root.rglob("*") if p.is_file()]
    needles = [SECRET.encode(), json.dumps(SECRET).encode()]
    assert [str(p) for p in files if any(n in p.read_bytes() for n in needles)] == []
    assert SECRET not in proc.stdout + proc.stderr
    output = json.loads(Path(runs["shows_it"].output_path).read_text(encoding="utf-8"))
    printed = [o.get("text") for c in output["cells"] for o in c.get("outputs", []) if o["output_type"] == "stream"]
    assert any("using <secret NBO_RUN_TOKEN>" in "".join(t) for t in printed if t)
    # The kernel reported the NAME it read to the executor, never the value.
    manifest = Path(runs["shows_it"].output_path).parent / "manifest.jsonl"
    lines = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    assert {"secret": "NBO_RUN_TOKEN"} in lines


def test_what_left_the_kernel_before_the_secret_was_read_is_scrubbed_by_the_executor(hostile_run: dict) -> None:
    run = hostile_run["runs"]["early_print"]
    assert run.status == "SUCCESS"
    text = Path(run.output_path).read_text(encoding="utf-8")
    assert SECRET not in text and "early <secret NBO_RUN_TOKEN>" in text


def test_a_value_holding_a_secret_fails_its_run_naming_the_asset(hostile_run: dict) -> None:
    root, runs = hostile_run["root"], hostile_run["runs"]
    run = runs["stores_it"]
    assert run.status == "FAILED"
    assert "Asset 'stores_it', partition '2013-01-01': the value contains the secret NBO_RUN_TOKEN" in run.error
    assert "Nothing was published." in run.error
    assert not (root / ".notebook_orch" / "data" / "stores_it").exists() or not any(
        (root / ".notebook_orch" / "data" / "stores_it").rglob("_SUCCESS"))


def test_system_exit_in_a_plain_cell_fails_the_run_naming_the_cell(hostile_run: dict) -> None:
    run = hostile_run["runs"]["after_exit"]
    assert run.status == "FAILED"
    assert run.error == f"SystemExit: 4 {SYSTEM_EXIT_HINT}"
    assert run.error_cell == FIRST_ASSET_CELL  # the sys.exit cell sits where the first asset cell would
    assert "(cell " in hostile_run["proc"].stdout and "SystemExit: 4" in hostile_run["proc"].stdout


def test_system_exit_in_an_asset_cell_fails_the_run_naming_the_asset_and_cell(hostile_run: dict) -> None:
    run = hostile_run["runs"]["asset_exit"]
    assert run.status == "FAILED"
    # Messages count cells from 1 as JupyterLab shows them; error_cell keeps nbformat's 0-based index.
    assert (f"Asset asset_exit[{DAY}] failed in notebooks/asset_exit.ipynb, cell {FIRST_ASSET_CELL + 1}: "
            f"SystemExit: 'bye' {SYSTEM_EXIT_HINT}") in run.error
    assert run.error_cell == FIRST_ASSET_CELL
