"""New, unsaved and broken ``%%asset`` cells in a real IPython shell with the extension loaded.

A new asset runs before it is saved (from the kernel's own declaration), an edited cell runs as written, and the
summary line says so; an unknown dependency is reported as unknown (not as "save the notebook"); and a broken
declaration saved in a scratch notebook breaks only itself: the other cells and ``%nbo`` keep working.
"""

from __future__ import annotations

import pytest
from interactive_helpers import CELLS, DAILY, ProjectDir, Session, write_notebook

from notebook_orch import Project
from notebook_orch.errors import DeclarationError, NotebookOrchError

NEW = "(new: not in any saved notebook yet)"
UNSAVED = "(unsaved: differs from notebooks/pipeline.ipynb)"


def runs(project: ProjectDir) -> list[tuple[str, ...]]:
    return [r.assets for r in reversed(project.store().list_runs())]


def assert_refused(session: Session, source: str, *says: str) -> str:
    """A declaration the project cannot run: refused as the declaration problem it is (nothing ran, so it is no
    "RunFailed"), naming the asset, in one short line."""
    result = session.run(source)
    error = result.error_in_exec
    assert not result.success and type(error) is DeclarationError, repr(error)
    assert error.problem.asset is not None
    message = str(error)
    for text in says:
        assert text in message, message
    assert session.stdout.strip() == f"DeclarationError: {message}"  # one short line, no traceback
    assert "RunFailed" not in session.stdout + session.stderr
    return message


# -- defect 3: new and unsaved assets ----------------------------------------------------------------------------
def test_a_new_asset_runs_before_it_is_saved_and_says_so(session: Session, project: ProjectDir) -> None:
    session.asset("config")
    out = session.ok("%%asset scratch_total --deps config\nscratch_total = config['scale'] * 2").strip()
    assert out.startswith("scratch_total[unpartitioned]: value in ") and out.endswith(NEW)
    assert session.ns["scratch_total"] == 20
    latest = project.store().latest_materialization("scratch_total", "unpartitioned")
    assert latest is not None and [i.asset for i in latest.inputs] == ["config"]
    assert runs(project) == [("config",), ("scratch_total",)]


def test_a_new_partitioned_asset_reads_a_new_asset_above_it(session: Session, project: ProjectDir) -> None:
    session.ok("%nbo partition 2013-01-02")
    first = session.ok("%%asset base_new --partitions daily:2013-01-01..2013-01-31\nbase_new = {'k': partition_key}")
    second = session.ok("%%asset top_new --deps base_new --partitions daily:2013-01-01..2013-01-31\n"
                        "top_new = dict(base_new, top=True)")
    assert first.strip().startswith("base_new[2013-01-02]") and first.strip().endswith(NEW)
    assert second.strip().startswith("top_new[2013-01-02]") and second.strip().endswith(NEW)
    assert session.ns["top_new"] == {"k": "2013-01-02", "top": True}
    # the saved notebooks stay the truth elsewhere: nbo status does not know these assets
    assert "base_new" not in session.ok("%nbo status")


def test_an_edited_cell_runs_as_written_and_says_it_differs_from_the_saved_one(session: Session) -> None:
    out = session.ok("%%asset config\nconfig = {'scale': 11}").strip()
    assert out.startswith("config[unpartitioned]") and out.endswith(UNSAVED)
    assert session.ns["config"] == {"scale": 11}
    saved = session.ok(CELLS["config"]).strip()  # back to what is saved: no note
    assert saved.startswith("config[unpartitioned]") and "unsaved" not in saved


@pytest.mark.parametrize("source, says", [
    ("%%asset brand_new --deps nope\nbrand_new = nope",
     ["Asset 'brand_new' depends on 'nope', which no asset declares; fix --deps, or declare 'nope' in a notebook."]),
    ("%%asset brand_new --deps rwa\nbrand_new = rwa",
     ["depends on 'rwa', which no asset declares", "Did you mean 'raw'?"]),
    ("%%asset config --deps confgi\nconfig = 1", ["depends on 'confgi', which no asset declares",
                                                  "Did you mean 'config'?"]),
])  # fmt: skip
def test_an_unknown_dependency_is_reported_as_unknown(session: Session, project: ProjectDir, source: str,
                                                      says: list[str]) -> None:
    message = assert_refused(session, source, *says)
    assert message.startswith("This cell's %%asset declaration cannot run: Asset ")  # where, then what and the fix
    assert "save" not in message and "saved notebook" not in message
    assert runs(project) == []


def test_a_new_asset_whose_mapping_does_not_fit_is_refused(session: Session, project: ProjectDir) -> None:
    assert_refused(session, "%%asset weekly_new --deps raw[-1]\nweekly_new = raw", "cannot read raw[-1]")
    assert runs(project) == []


# -- defect 2 in the kernel: a broken declaration saved in another notebook -----------------------------------------
@pytest.fixture
def scratch(project: ProjectDir) -> ProjectDir:
    write_notebook(project.root / "notebooks" / "scratch.ipynb", [
        "%load_ext notebook_orch",
        "%%asset bad --deps nope\nbad = 1",
        "%%asset worse --deps bad\nworse = bad + 1",
    ])
    return project


def test_a_broken_scratch_notebook_breaks_nothing_else(session: Session, scratch: ProjectDir) -> None:
    assert session.asset("config").startswith("config[unpartitioned]")
    assert session.asset("raw", "2013-01-02").startswith("raw[2013-01-02]: 3 rows")
    out = session.ok("%nbo status")
    assert "config" in out and "bad: INVALID - notebooks/scratch.ipynb, cell 2: Asset 'bad' depends on 'nope'" in out
    assert "worse: INVALID" in out and "depends on invalid 'bad'" in out
    assert "INVALID: notebooks/scratch.ipynb, cell 2" in session.ok("%nbo lineage --format text")
    assert runs(scratch) == [("config",), ("raw",)]


def test_the_broken_cell_itself_is_refused_with_its_problem(session: Session, scratch: ProjectDir) -> None:
    assert_refused(session, "%%asset bad --deps nope\nbad = 1",
                   "Asset 'bad' is invalid, so it cannot run until its declaration is fixed: notebooks/scratch.ipynb, "
                   "cell 2: Asset 'bad' depends on 'nope', which no asset declares")
    assert_refused(session, "%%asset worse --deps bad\nworse = bad + 1", "Asset 'worse' is invalid",
                   "depends on invalid 'bad'")
    assert_refused(session, "%%asset newer --deps bad\nnewer = bad", "Asset 'newer' depends on 'bad', which is "
                   "invalid: notebooks/scratch.ipynb, cell 2")
    assert runs(scratch) == []


def test_fixing_the_broken_cell_in_the_kernel_runs_it_before_saving(session: Session, scratch: ProjectDir) -> None:
    session.asset("config")
    out = session.ok("%%asset bad --deps config\nbad = config['scale']").strip()
    assert out.startswith("bad[unpartitioned]") and out.endswith(
        "(unsaved: differs from notebooks/scratch.ipynb, where it is invalid)")
    assert session.ns["bad"] == 10


def test_materializing_an_invalid_asset_from_the_notebook_is_refused(session: Session, scratch: ProjectDir) -> None:
    result = session.run("%nbo materialize bad")
    assert not result.success and isinstance(result.error_in_exec, NotebookOrchError)
    shown = str(result.error_in_exec)  # the error itself, shown once (not printed first and then raised)
    assert "Asset 'bad' is invalid" in shown and "which no asset declares" in shown
    assert "Asset 'bad' is invalid" not in session.stderr
    assert runs(scratch) == []


def test_a_duplicate_cannot_be_fixed_by_editing_one_copy(session: Session, project: ProjectDir) -> None:
    write_notebook(project.root / "notebooks" / "copy.ipynb", ["%%asset config\nconfig = {'scale': 1}"])
    assert_refused(session, "%%asset config\nconfig = {'scale': 2}", "Asset 'config' is invalid", "defined twice")
    assert runs(project) == []


def test_a_new_partitioned_asset_can_choose_a_key_only_it_has(session: Session, project: ProjectDir) -> None:
    source = "%%asset future --partitions daily:2020-03-01..2020-03-05\nfuture = {'k': partition_key}"
    result = session.run(source)
    assert not result.success and "choose the partition first with '%nbo partition KEY', e.g. %nbo partition " \
        "2020-03-01" in str(result.error_in_exec)
    assert "future" in session.ok("%nbo partition 2020-03-02")  # no saved asset has this key; the kernel's does
    out = session.ok(source).strip()
    assert out.startswith("future[2020-03-02]") and out.endswith(NEW)
    assert session.ns["future"] == {"k": "2020-03-02"}


@pytest.mark.parametrize("kernel_knows_its_notebook", [True, False])
def test_a_new_asset_saved_afterwards_is_fresh_when_the_kernel_knows_its_notebook(
        session: Session, project: ProjectDir, kernel_knows_its_notebook: bool) -> None:
    """JupyterLab tells the kernel its notebook (``__session__``): a new cell is versioned with that notebook's
    helper cells (here ``make_raw`` of the knobs cell), as discovery versions it once saved — so saving it does not
    make it look code-changed. Without that, only the body is versioned and saving shows the helper as a change."""
    if kernel_knows_its_notebook:
        session.ns["__session__"] = str(project.notebook)
    source = f"%%asset raw_copy --partitions {DAILY}\nraw_copy = make_raw(partition_key)"
    session.ok("%nbo partition 2013-01-02")
    assert session.ok(source).strip().endswith(NEW)
    project.save({**CELLS, "raw_copy": source})
    with Project(project.root) as saved:
        counts = saved.status().counts("raw_copy")
    assert (counts["FRESH"], counts["STALE"]) == ((1, 0) if kernel_knows_its_notebook else (0, 1))


def test_status_of_an_asset_declared_only_in_this_kernel_says_to_save_the_notebook(session: Session) -> None:
    session.ok("%%asset only_here\nonly_here = {'k': 1}")
    result = session.run("%nbo status only_here")
    message = str(result.error_in_exec)
    assert not result.success and type(result.error_in_exec).__name__ == "UsageError"
    assert "'only_here' is declared only in this kernel" in message and "save the notebook" in message
    # a name nobody declared is still the plain "no such asset" answer
    result = session.run("%nbo status nobody_declares_this")
    assert type(result.error_in_exec) is DeclarationError
    assert "No asset named 'nobody_declares_this'" in str(result.error_in_exec)
