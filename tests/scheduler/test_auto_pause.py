"""`nbo auto pause ASSET` / `resume` (and `%nbo auto ...`): kept in the store, shown by `nbo auto preview` and
`nbo status`, honoured by the daemon; a resume acts only on what changed after it (no flood). Store-level passes
(no kernel) for the rules, and one real daemon process for the whole story."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from sched_helpers import daemon, make_project, nbo, until

from notebook_orch import Project
from notebook_orch.faces.cli import main
from notebook_orch.scheduler import Scheduler
from notebook_orch.store.records import NewMaterialization


def _write(p: Project, key: str, *, data: str = "d1") -> None:
    mats = [NewMaterialization(asset=a, partition=key, data_version=f"{a}-{data}-{key}",
                               code_version=p.graph.spec(a).code_version) for a in ("a", "b")]
    run = p.store.start_run(notebook="notebooks/pipe.ipynb", targets=[("a", key), ("b", key)], kind="manual")
    p.store.finalize_success(run.run_id, mats)


def _cli(root: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pause_drops_pending_joins_and_resume_acts_only_on_later_changes(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    root = make_project(tmp_path / "p")
    with Project(root) as p:
        sched = Scheduler(p)
        assert sched.run_once().leader
        p.store.scheduling.add_pending([("joined", "2024-02-01")])  # a join waiting from before the pause
        assert _cli(root, capsys, "auto", "pause", "joined")[0] == 0
        assert p.store.scheduling.pending() == []
        _write(p, "2024-02-02")  # while paused, read by a daemon pass: reaches nothing, starts nothing
        report = sched.run_once()
        assert report.events >= 1 and report.triggered == [] and p.store.scheduling.pending() == []
        _write(p, "2024-02-03")  # while paused, not read before the resume
        code, out, _ = _cli(root, capsys, "auto", "preview")
        assert code == 0 and "paused       joined: since " in out and "(nbo auto resume joined)" in out
        code, out, _ = _cli(root, capsys, "status")
        assert "automation paused: joined (since " in out
        status = json.loads(_cli(root, capsys, "status", "--json")[1])
        assert {r["asset"]: r["auto_paused_since"] is not None for r in status["assets"]} == {
            "a": False, "b": False, "joined": True}
        code, out, _ = _cli(root, capsys, "auto", "resume", "joined")
        assert code == 0 and "acts on what changes from now on" in out
        assert sched.preview().start == ()  # 2024-02-03 changed while paused: no flood on resume
        _write(p, "2024-02-04")
        assert sched.preview().start == (("joined", "2024-02-04"),)
        assert json.loads(_cli(root, capsys, "auto", "preview", "--json")[1])["paused"] == []
        code, out, _ = _cli(root, capsys, "auto", "resume", "joined")
        assert code == 0 and "was not paused; nothing changed" in out
        sched.sched.release_lease(sched.holder)


def test_pause_refuses_unknown_and_unautomated_assets_and_changes_nothing(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    root = make_project(tmp_path / "p")
    code, _, err = _cli(root, capsys, "auto", "pause", "joind")
    assert code == 2 and "No asset is named 'joind'" in err and "joined" in err
    code, _, err = _cli(root, capsys, "auto", "pause", "a")
    assert code == 2 and "Asset 'a' is not automated" in err
    code, _, err = _cli(root, capsys, "auto", "pause")
    assert code == 2 and "needs the asset" in err
    with Project(root) as p:
        assert p.store.scheduling.auto_pauses() == {}


def test_magic_pauses_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    root = make_project(tmp_path / "p")
    monkeypatch.chdir(root)
    monkeypatch.setenv("NBO_PROJECT", str(root))
    shell = InteractiveShell.instance()
    try:
        assert shell.run_cell("%load_ext notebook_orch").success
        assert shell.run_cell("%nbo auto pause joined").success
        with Project(root) as p:
            assert p.store.scheduling.auto_pauses()["joined"].paused
        assert not shell.run_cell("%nbo auto pause nope").success
        assert shell.run_cell("%nbo auto resume joined").success
        with Project(root) as p:
            assert not p.store.scheduling.auto_pauses()["joined"].paused
    finally:
        InteractiveShell.clear_instance()


@pytest.mark.slow
def test_the_daemon_honours_a_pause_and_a_resume_does_not_flood(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    with Project(root) as p:
        p.store.last_event_id()  # create the store before the daemon and the CLI race to

    def triggered() -> list[tuple[str, ...]]:
        with Project(root) as p:
            return sorted(r.partition_keys for r in p.store.list_runs(limit=100) if r.kind == "trigger")

    log = tmp_path / "daemon.log"
    d = daemon(root, log=log)
    try:
        with Project(root) as p:
            until(lambda: p.store.scheduling.cursor() is not None, 60)
        assert nbo(root, "auto", "pause", "joined").returncode == 0
        assert nbo(root, "materialize", "a,b", "--partition", "2024-01-03").returncode == 0
        time.sleep(3)  # several passes read both events: joined is paused
        assert triggered() == []
        assert nbo(root, "auto", "resume", "joined").returncode == 0
        time.sleep(2)
        assert triggered() == []  # what changed while paused does not run on resume
        assert nbo(root, "materialize", "a,b", "--partition", "2024-01-04").returncode == 0
        until(lambda: triggered() == [("2024-01-04",)], 180)
        time.sleep(1)
        assert triggered() == [("2024-01-04",)]
    finally:
        d.send_signal(signal.SIGTERM)
        assert d.wait(timeout=60) == 0
    assert "trigger: started joined for 2024-01-04" in log.read_text()
