"""`nbo schedule ...` and `%nbo schedule ...`: validation before any write, list/pause/resume/delete/history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sched_helpers import make_project

from notebook_orch import Project
from notebook_orch.faces.cli import main


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def run(root: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_list_pause_resume_delete(root: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(root, capsys, "schedule", "add", "morning", "--cron", "0 6 * * *", "--select", "b",
                       "--param", "region=eu", "--timezone", "Europe/Berlin", "--catchup", "all:3")
    assert code == 0 and "added schedule morning" in out
    code, out, _ = run(root, capsys, "schedule", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {"a", "morning"}  # a declares --schedule on its %%asset line
    assert rows["a"]["origin"] == "asset" and rows["a"]["cron"] == "0 6 * * *"
    m = rows["morning"]
    assert (m["timezone"], m["catchup"], m["params"], m["paused"], m["partition"]) == (
        "Europe/Berlin", "all:3", {"region": "eu"}, False, "latest")
    assert m["next_tick"].endswith("06:00:00+01:00") or m["next_tick"].endswith("06:00:00+02:00")
    assert run(root, capsys, "schedule", "pause", "morning")[0] == 0
    assert run(root, capsys, "schedule", "pause", "a")[0] == 0  # a declared one is stored, then paused
    rows = {r["name"]: r for r in json.loads(run(root, capsys, "schedule", "list", "--json")[1])}
    assert rows["morning"]["paused"] and rows["a"]["paused"] and rows["a"]["next_tick"] is None
    assert run(root, capsys, "schedule", "resume", "morning")[0] == 0
    code, _, err = run(root, capsys, "schedule", "delete", "a")
    assert code == 2 and "declared by asset 'a'" in err
    assert run(root, capsys, "schedule", "delete", "morning")[0] == 0
    code, _, err = run(root, capsys, "schedule", "delete", "morning")
    assert code == 2 and "No schedule is named 'morning'" in err


def test_bad_input_names_every_problem_and_stores_nothing(root: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(root, capsys, "schedule", "add", "x", "--cron", "0 6 * *", "--select", "nope",
                       "--timezone", "Mars/Base", "--catchup", "sometimes", "--param", "1x=2")
    assert code == 2
    for part in ["--cron '0 6 * *'", "'nope'", "--timezone 'Mars/Base'", "--catchup 'sometimes'", "--param '1x=2'",
                 "Nothing was stored"]:
        assert part in err
    code, _, err = run(root, capsys, "schedule", "add", "x", "--cron", "0 6 * * *", "--select", "b",
                       "--partition", "{tick.__class__}")
    assert code == 2 and "template field" in err
    with Project(root) as p:
        assert p.store.scheduling.list_schedules() == []


def test_duplicate_name_is_refused(root: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(root, capsys, "schedule", "add", "m", "--cron", "0 6 * * *", "--select", "b")[0] == 0
    code, _, err = run(root, capsys, "schedule", "add", "m", "--cron", "0 7 * * *", "--select", "b")
    assert code == 2 and "exists already" in err


def test_magic_mirrors_the_cli(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.chdir(root)
    monkeypatch.setenv("NBO_PROJECT", str(root))
    shell = InteractiveShell.instance()
    try:
        assert shell.run_cell("%load_ext notebook_orch").success
        assert shell.run_cell("%nbo schedule add eve --cron '0 18 * * *' --select b").success
        with Project(root) as p:
            assert p.store.scheduling.get_schedule("eve").cron == "0 18 * * *"
        assert not shell.run_cell("%nbo schedule add eve --cron '0 18 * *' --select b").success
    finally:
        InteractiveShell.clear_instance()
