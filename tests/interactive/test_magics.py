"""The magics as a user meets them: argument errors, ``%%asset?`` help, ``%nbo`` mirroring the ``nbo`` CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date

import pytest
from interactive_helpers import CELLS, DAILY, ProjectDir, Session, write_notebook
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from notebook_orch.errors import NotebookOrchError
from notebook_orch.faces.cli import main as cli_main
from notebook_orch.faces.magics import NotebookOrchMagics


def assert_usage_error(session: Session, source: str, *fragments: str) -> None:
    result = session.run(source)
    assert not result.success
    assert type(result.error_in_exec) is UsageError, repr(result.error_in_exec)  # a subclass prints a traceback
    for fragment in fragments:
        assert fragment in str(result.error_in_exec)
    assert "Traceback" not in session.stdout + session.stderr


# -- bad %%asset lines -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line, says", [
    ("%%asset", "the asset NAME is missing"),
    ("%%asset raw --bogus", "unrecognized arguments: --bogus"),
    ("%%asset 1raw", "is not a Python identifier"),
    ("%%asset ../raw", "is path-like"),
    ("%%asset raw --deps 'clean[x]'", "is not an offset, a window or 'all'"),
    ("%%asset raw --deps raw", "lists itself"),
    ("%%asset raw --deps 'a[0:-2]'", "is reversed"),
    ("%%asset raw --partitions daily:2013-13-01", "is not a date"),
    ("%%asset raw --partitions dialy:2013-01-01", "Did you mean 'daily'?"),
    ("%%asset raw --retries -1", "argument --retries: expected a whole number from 0 to 100"),
    ("%%asset raw --check 'len(('", "is not a Python expression"),
    ("%%asset raw --io feather", "invalid choice: 'feather'"),
    ("%%asset raw --schedule 'every day'", "not a valid cron expression"),
    ("%%asset raw --sla 25:00", "not a time of day"),
    ("%%asset raw --description 'unclosed", "cannot split the line"),
])  # fmt: skip
def test_bad_asset_line_is_a_plain_usage_error_and_runs_nothing(session: Session, project: ProjectDir, line: str,
                                                                 says: str) -> None:
    session.ok("%nbo partition 2013-01-02")
    assert_usage_error(session, f"{line}\nraw = make_raw(partition_key)", says)
    assert says in session.stderr  # what the user sees: "UsageError: ..." in one line
    assert "raw" not in session.ns
    assert project.store().list_runs() == []
    assert not (project.config.data_dir / "raw").exists()


def test_asset_help_shows_the_one_parser(session: Session) -> None:
    doc = NotebookOrchMagics.asset.__doc__
    assert doc is not None
    for option in ("--partitions", "--deps", "--check", "--io", "--retries", "--schedule", "NAME"):
        assert option in doc
    session.ok("%%asset?")
    assert "--partitions" in session.stdout and "--deps" in session.stdout
    assert "daily:2013-01-01[..2013-12-31]" in session.stdout


# -- %nbo partition -------------------------------------------------------------------------------------------
def test_nbo_partition_sets_the_active_partition(session: Session) -> None:
    out = session.ok("%nbo partition 2013-01-05").strip()
    head, _, names = out.partition(" (assets with this partition: ")
    assert head == "active partition: 2013-01-05"
    assert sorted(names.rstrip(")").split(", ")) == sorted(
        ["raw", "clean", "rolling", "prev", "scaled", "counts", "count_window", "seen_day"])
    assert session.ns["partition_key"] == "2013-01-05" and session.runtime.active_partition == "2013-01-05"
    assert session.ns["partition_date"] == date(2013, 1, 5)  # helper cells before the asset cell see it too
    session.ok("%nbo partition us")
    assert session.ns["partition_key"] == "us" and "partition_date" not in session.ns
    assert session.asset("seen").startswith("seen[us]")
    session.ok("%nbo partition 2013-01")
    assert session.runtime.active_partition == "2013-01" and session.ns["partition_date"] == date(2013, 1, 1)


@pytest.mark.parametrize("args, says", [
    ("2014-02-01", "is not a partition of any asset in the project; the partitioned assets are "),
    ("2014-02-01", f"raw ({DAILY})"),
    ("2014-02-01", "monthly (monthly:2013-01..2013-01)"),
    ("../../etc/passwd", "path-like"),
    ("..", "path-like"),
    ("unpartitioned", "is not a partition of any asset"),
    (".hidden", "path-like"),
    ("", "takes one KEY"),
    ("2013-01-01 2013-01-02", "takes one KEY"),
])  # fmt: skip
def test_nbo_partition_refuses_bad_keys(session: Session, args: str, says: str) -> None:
    session.ok("%nbo partition 2013-01-03")
    assert_usage_error(session, f"%nbo partition {args}", says)
    assert session.runtime.active_partition == "2013-01-03"  # unchanged
    assert session.ns["partition_key"] == "2013-01-03"


# -- %nbo mirrors the CLI ----------------------------------------------------------------------------------------
def cli_output(project: ProjectDir, *argv: str) -> tuple[int, str]:
    with capture_output() as out:
        code = cli_main(["-C", str(project.root), *argv])
    return code, out.stdout


@pytest.mark.parametrize("command", ["status", "status --json", "stale", "stale --json", "runs", "runs --json",
                                     "lineage --format text", "lineage --format mermaid", "lineage --json",
                                     "status raw+", "validate"])
def test_nbo_subcommand_prints_what_the_cli_prints(session: Session, project: ProjectDir, command: str) -> None:
    for day in ("2013-01-01", "2013-01-02"):
        session.asset("raw", day)
    session.asset("clean", "2013-01-02")
    session.ok("OFFSET = 1")
    session.asset("raw", "2013-01-02")  # clean[2013-01-02] is stale now

    shown = session.ok(f"%nbo {command}")
    code, printed = cli_output(project, *command.split())
    assert code == 0
    assert shown == printed
    assert shown.strip()


def test_nbo_lineage_shows_the_picture_with_the_text_as_fallback(session: Session, project: ProjectDir) -> None:
    session.asset("raw", "2013-01-01")
    session.asset("raw", "2013-01-02")
    with capture_output() as out:
        result = session.shell.run_cell("%nbo lineage")
    assert result.success, result.error_in_exec
    assert out.stdout == ""  # nothing printed: one rich output instead
    [shown] = out.outputs
    code, printed = cli_output(project, "lineage")
    assert code == 0 and shown.data["text/plain"] == printed.rstrip("\n")  # what a terminal shows
    picture = shown.data["text/html"]
    assert picture.count("<svg") == 1 and "src=" not in picture and "<script" not in picture
    assert 'data-asset="raw" data-status="FRESH"' in picture  # 2 days of many built: fresh, not grey
    assert 'data-asset="clean" data-status="MISSING"' in picture
    # A plain terminal IPython prints the text part of the same bundle.
    with capture_output(display=False) as out:
        assert session.shell.run_cell("%nbo lineage").success
    assert out.stdout == printed
    with capture_output() as out:  # --format html draws too; --no-status draws without colours
        assert session.shell.run_cell("%nbo lineage --format html --no-status").success
    assert 'data-asset="raw" data-status=""' in out.outputs[0].data["text/html"]


def test_nbo_stale_shows_the_reasons(session: Session) -> None:
    session.asset("raw", "2013-01-02")
    session.asset("clean", "2013-01-02")
    assert session.ok("%nbo stale").strip() == "Nothing is stale."
    session.ok("OFFSET = 1")
    session.asset("raw", "2013-01-02")
    out = session.ok("%nbo stale")
    assert out == ("clean 2013-01-02: 1 stale\n"
                   "  upstream data changed: raw 2013-01-02: 1 with new data\n"
                   "1 stale partition in 1 asset\n")


@pytest.mark.parametrize("line, says", [
    ("%nbo", "needs a subcommand"),
    ("%nbo bogus", "invalid arguments"),
    ("%nbo runs --status DONE", "invalid arguments"),
    ("%nbo status 'unclosed", "cannot split"),
])  # fmt: skip
def test_bad_nbo_usage_is_a_plain_usage_error(session: Session, line: str, says: str) -> None:
    assert_usage_error(session, line, says)


def test_nbo_help_is_not_an_error(session: Session) -> None:
    out = session.ok("%nbo status --help")
    assert "usage: nbo status" in out


def test_a_duplicate_name_breaks_only_itself(session: Session, project: ProjectDir) -> None:
    write_notebook(project.root / "notebooks" / "copy.ipynb", ["%%asset raw\nraw = 1"])  # a duplicate name
    out = session.ok("%nbo status")  # the rest of the project keeps working
    assert "config" in out and "INVALID" in out and "raw: INVALID" in out and "defined twice" in out

    assert session.asset("config").startswith("config[unpartitioned]")  # other cells run as before
    result = session.run(CELLS["raw"])  # the duplicate itself is refused, naming its problem
    assert not result.success and isinstance(result.error_in_exec, NotebookOrchError)
    assert "Asset 'raw' is invalid" in str(result.error_in_exec) and "defined twice" in str(result.error_in_exec)
    assert [r.assets for r in project.store().list_runs()] == [("config",)]


# -- the project as the kernel finds it ---------------------------------------------------------------------------
def test_runtime_finds_the_project_from_the_notebooks_folder(new_session: Callable[[], Session],
                                                             project: ProjectDir) -> None:
    os.chdir(project.root / "notebooks")  # where Jupyter starts a notebook's kernel
    session = new_session()
    assert session.asset("config").startswith("config[unpartitioned]")
    assert project.store().latest_materialization("config", "unpartitioned") is not None


def test_runtime_uses_nbo_project_from_anywhere(new_session: Callable[[], Session], project: ProjectDir,
                                                tmp_path_factory: pytest.TempPathFactory,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    monkeypatch.setenv("NBO_PROJECT", str(project.root))
    session = new_session()
    assert session.asset("config").startswith("config[unpartitioned]")
    assert project.store().latest_materialization("config", "unpartitioned") is not None


def test_a_newly_saved_asset_is_found_without_restarting(session: Session, project: ProjectDir,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import notebook_orch.discovery as discovery

    session.asset("config")  # the session's first cell reads the notebooks
    reads: list[str] = []
    original = discovery.discover
    monkeypatch.setattr(discovery, "discover", lambda *a, **k: reads.append("read") or original(*a, **k))
    source = "%%asset extra --deps config\nextra = config['scale'] + 1"
    assert session.ok(source).strip().endswith("(new: not in any saved notebook yet)")  # runs before saving
    session.asset("config")
    assert reads == []  # nothing changed on disk since the session started: no notebook read again
    project.save({**CELLS, "extra": source})
    session.asset("config")
    saved = session.ok(source).strip()
    assert saved.startswith("extra[unpartitioned]") and "(new" not in saved and "unsaved" not in saved
    assert session.ns["extra"] == 11
    assert reads == ["read"]  # the save was seen once


def test_unloading_the_extension_closes_the_runtime(session: Session) -> None:
    session.asset("config")
    runtime = session.runtime
    assert runtime._project is not None
    session.ok("%unload_ext notebook_orch")
    assert runtime._project is None
    session.ok("%load_ext notebook_orch")
    assert session.runtime is not runtime


def test_nbo_takes_dollar_and_braces_literally(session: Session) -> None:
    """IPython expands $name and {expr} in line magics; %nbo must see what was typed, as nbo in a terminal does."""
    session.ok("day = '2013-01-07'")
    assert_usage_error(session, "%nbo partition $day", "'$day' is not a partition of any asset")
    assert_usage_error(session, "%nbo partition {day}", "'{day}' is not a partition of any asset")
    assert session.runtime.active_partition != "2013-01-07"
