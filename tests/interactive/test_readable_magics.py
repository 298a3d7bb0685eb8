"""What ``%nbo`` and ``%%asset`` show a person in a notebook (issue 6, defect 6), through a real InteractiveShell
with the extension loaded: each failure once, no exit codes, no empty progress bar before an error, tracebacks
that name the cell, and a warning when the kernel ran a cell that differs from the saved notebook."""

from __future__ import annotations

import re

import pytest
from interactive_helpers import CELLS, DAILY, ProjectDir, Session, cell_index, write_notebook
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from notebook_orch.errors import DeclarationError
from notebook_orch.faces.magics import CommandFailed


def test_a_bad_selection_fails_before_any_progress_bar_is_shown(session: Session) -> None:
    with capture_output() as shown:
        result = session.shell.run_cell("%nbo materialize nosuch")
    assert not result.success and type(result.error_in_exec) is DeclarationError
    assert str(result.error_in_exec) == "No asset named 'nosuch' in the project."
    assert shown.outputs == []  # no widget before the error, and the error once, in one line:
    assert shown.stdout == "DeclarationError: No asset named 'nosuch' in the project.\n"

    with capture_output() as shown:
        result = session.shell.run_cell("%nbo materialize raw --partition 2013-01-01 --from 2013-01-02")
    assert type(result.error_in_exec) is UsageError
    assert str(result.error_in_exec) == "%nbo materialize: give --partition or --from/--to, not both"
    assert shown.outputs == []


def test_a_user_error_names_the_prompt_and_the_cells_own_line_numbers(session: Session) -> None:
    session.ok("FAIL = True")
    count = session.shell.execution_count
    result = session.cell("fragile")
    assert not result.success
    shown = session.stdout
    # The cell's lines as JupyterLab numbers them: line 1 is the %%asset line, the raise is line 3.
    assert f"Cell In[{count}], line 3" in shown and "Cell In[0]" not in shown
    assert "----> 3     raise ValueError('boom from user code')" in shown
    assert shown.count("boom from user code") == 3  # the source line, the exception, and the one-line summary
    assert f"failed in notebooks/pipeline.ipynb, cell {cell_index('fragile') + 1}:" in shown


def test_stale_warns_when_the_kernel_ran_a_cell_that_differs_from_the_saved_one(session: Session) -> None:
    session.asset("config")
    assert "warning" not in session.ok("%nbo stale")
    edited = "%%asset config\nconfig = {'scale': 11}"  # run here, not saved
    session.ok(edited)
    out = session.ok("%nbo stale")
    where = f"notebooks/pipeline.ipynb, cell {cell_index('config') + 1}"
    assert out.splitlines()[0] == (
        f"warning: config last ran here from its cell as edited in this kernel, which differs from the saved "
        f"{where}; %nbo stale reads the saved notebook: save it to compare with what ran.")
    # What was built here (its source kept with its code version) against what the saved cell says.
    assert out.splitlines()[1:3] == ["config: stale", f"  code changed in {where}"]
    assert out.splitlines()[5:] == ["    @@ -1 +1 @@", "    -config = {'scale': 11}", "    +config = {'scale': 10}",
                                    "1 stale partition in 1 asset"]
    session.ok(CELLS["config"])  # back to the saved cell: no warning
    assert "warning" not in session.ok("%nbo status")


@pytest.mark.kernel
def test_a_failed_run_is_listed_once_and_the_cell_fails_without_an_exit_code(session: Session,
                                                                             project: ProjectDir) -> None:
    write_notebook(project.root / "notebooks" / "bad.ipynb", [
        "%load_ext notebook_orch", f"%%asset doomed --partitions {DAILY}\nrows = 3\ndoomed = rows / 0"])
    with capture_output() as shown:
        result = session.shell.run_cell("%nbo materialize doomed --partition 2013-01-02 --workers 1 --wait")
    assert not result.success and type(result.error_in_exec) is CommandFailed
    assert str(result.error_in_exec) == "%nbo materialize: not every run succeeded; each failure is listed above."
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown.stdout + shown.stderr)
    assert "exit code" not in text
    assert text.count("ZeroDivisionError: division by zero") == 1, text
    [line] = [x for x in text.splitlines() if "ZeroDivisionError" in x]
    assert line.startswith("  FAILED notebooks/bad.ipynb [2013-01-02] (cell 2) run ")
    assert "failed in notebooks/bad.ipynb, cell 2: ZeroDivisionError" in line
