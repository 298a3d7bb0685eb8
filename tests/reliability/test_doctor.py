"""``nbo doctor``: every kind of inconsistency between the store and the value folders is found, named with what
to do, and ``--fix`` repairs exactly what is safe — on a real SQLite store and real value folders (no kernel)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from doctor_helpers import codes, doctor_cli, make_project, open_project, published_run

from notebook_orch.storage import ValueStore


def test_a_healthy_project_is_consistent_and_exits_0(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        published_run(p, "a", "2024-01-01", {"v": 1})
        published_run(p, "a", "2024-01-02", {"v": 2})
    code, out, _ = doctor_cli(root)
    assert code == 0, out
    assert "consistent (2 runs, 2 materializations, 2 value_folders, 0 locks)" in out


def test_a_record_whose_value_is_gone_is_reported_and_not_invented(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        _, published = published_run(p, "a", "2024-01-01", {"v": 1})
    shutil.rmtree(published.path)
    code, out, _ = doctor_cli(root)
    assert code == 1
    assert "VALUE_MISSING a[2024-01-01]" in out and "this is the partition's current value" in out
    assert "nbo materialize a --partition 2024-01-01" in out
    code, out, _ = doctor_cli(root, "--fix")  # nothing safe to do: still inconsistent, nothing created
    assert code == 1 and not published.path.exists()


def test_a_replaced_value_file_is_a_data_version_mismatch(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        _, published = published_run(p, "a", "2024-01-01", {"v": 1})
    marker = json.loads((published.path / "_SUCCESS").read_text())
    marker["data_version"] = "0" * 64  # what a hand-copied older version carries
    (published.path / "_SUCCESS").write_text(json.dumps(marker))
    with open_project(root) as p:
        assert codes(p.doctor().before) == ["VALUE_MISMATCH"]


def test_values_published_without_a_record_are_withdrawn_or_quarantined(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        _, failed_value = published_run(p, "a", "2024-01-01", {"v": 1}, finalize=False, end="FAILED")
        # a value whose run the store does not know (the store was replaced by an older copy, say)
        stranger = ValueStore(p.config.data_dir).publish("b", "2024-01-01", {"v": 2}, run_id="0000feedbeef0001")
        report = p.doctor().before
        assert codes(report) == ["UNRECORDED_VALUE", "UNRECORDED_VALUE"]
        assert {f.repair for f in report.findings} == {"remove", "quarantine"}
        result = p.doctor(fix=True)
        assert result.consistent and all(r.done for r in result.repairs)
    assert not failed_value.path.exists()
    moved = list(Path(result.quarantine).rglob("_SUCCESS"))
    assert [m.parent.name for m in moved] == [stranger.path.name]
    assert not stranger.path.exists()
    assert not (root / ".notebook_orch" / "data" / "b").exists()  # empty asset folder pruned


def test_leftover_temporary_files_of_dead_writers_are_cleaned(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        life, published = published_run(p, "a", "2024-01-01", {"v": 1})
        part = published.path.parent
        (part / f".tmp-{life.run_id}-0123456789ab").mkdir()  # a staging folder of the (ended) run
        (part / f"{life.run_id}.1").mkdir()  # renamed into place, killed before its marker
        (published.path / "_SUCCESS.tmp-1a2b3c4d").write_text("{")  # killed while writing a marker
        (part / ".tmp-0000000000000unknown-0123456789ab").mkdir()  # staged by a run no store knows
        report = p.doctor().before
        assert codes(report) == ["LEFTOVER_TEMP"] * 4
        result = p.doctor(fix=True)
        assert result.consistent, result.after
    left = sorted(x.name for x in part.iterdir())
    assert left == [published.path.name]
    assert sorted(x.name for x in published.path.iterdir()) == ["_SUCCESS", "value.json"]
    assert [x.name for x in Path(result.quarantine).rglob(".tmp-*")] == [".tmp-0000000000000unknown-0123456789ab"]


def test_a_running_run_with_a_dead_heartbeat_is_reaped_and_its_value_withdrawn(tmp_path: Path) -> None:
    root = make_project(tmp_path, heartbeat_timeout=5)
    with open_project(root) as p:
        life, published = published_run(p, "a", "2024-01-01", {"v": 1}, finalize=False)
        other, _ = published_run(p, "a", "2024-01-02", {"v": 2}, finalize=False)
        now = datetime.now(timezone.utc)
        assert p.doctor(now=now).consistent  # alive: its published-but-unrecorded value is in flight
        later = now + timedelta(seconds=30)
        report = p.doctor(now=later).before
        assert codes(report) == ["DEAD_RUN", "DEAD_RUN", "UNRECORDED_VALUE", "UNRECORDED_VALUE"]
        assert "its process is gone" in report.findings[0].message
        result = p.doctor(fix=True, now=later)
        assert result.consistent
        assert [(r.finding.target, r.done) for r in result.repairs] == [(life.run_id, True), (other.run_id, True)]
        assert p.store.get_run(life.run_id).status == "FAILED"
    assert not published.path.exists()


def test_what_is_not_ours_is_reported_but_never_touched(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        published_run(p, "a", "2024-01-01", {"v": 1})
    data = root / ".notebook_orch" / "data"
    (data / "notes.txt").write_text("mine")
    (data / "a" / "2024-01-01" / "export.csv").write_text("x,y\n")
    (data / "a" / "2024-01-01" / "my folder").mkdir()
    code, out, _ = doctor_cli(root, "--fix")
    assert code == 0, out  # warnings only
    assert out.count("FOREIGN_FILE") == 3 and "doctor never touches it" in out
    assert (data / "notes.txt").read_text() == "mine" and (data / "a" / "2024-01-01" / "export.csv").exists()
    assert (data / "a" / "2024-01-01" / "my folder").is_dir()


def test_an_orphan_lock_is_released_and_events_of_unknown_runs_are_reported(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        life, _ = published_run(p, "a", "2024-01-01", {"v": 1})
        db = p.config.store_url.removeprefix("sqlite:///")
    con = sqlite3.connect(db)
    with con:  # what a hand edit or a half-restored backup leaves
        con.execute("INSERT INTO partition_locks VALUES ('a', '2024-01-02', ?)", (life.run_id,))
        con.execute("INSERT INTO events (kind, run_id, timestamp, payload) VALUES ('RUN_STARTED', 'gone', "
                    "'2024-01-01 00:00:00', '{}')")
    con.close()
    code, out, _ = doctor_cli(root, "--fix")
    assert code == 1
    assert "fixed: ORPHAN_LOCK a[2024-01-02]: lock released" in out
    assert "EVENT_WITHOUT_RUN" in out and "1 event(s) name runs the store does not hold" in out
    with open_project(root) as p:
        assert p.store.running() == {}
        assert codes(p.doctor().before) == ["EVENT_WITHOUT_RUN"]


def test_an_unreadable_store_is_reported_clearly_and_nothing_changes(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        published_run(p, "a", "2024-01-01", {"v": 1})
        db = Path(p.config.store_url.removeprefix("sqlite:///"))
    for extra in db.parent.glob("store.db-*"):
        extra.unlink()
    db.write_bytes(b"this is not a database" * 100)
    before = sorted(str(x) for x in (root / ".notebook_orch" / "data").rglob("*"))
    code, out, err = doctor_cli(root, "--fix")
    assert code == 1
    assert "STORE_UNREADABLE" in out and "restore the store file from a backup" in out
    assert sorted(str(x) for x in (root / ".notebook_orch" / "data").rglob("*")) == before


def test_json_output_lists_findings_repairs_and_the_state_after(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with open_project(root) as p:
        published_run(p, "a", "2024-01-01", {"v": 1}, finalize=False, end="CANCELED")
    code, out, _ = doctor_cli(root, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["consistent"] is False
    assert [f["code"] for f in doc["before"]["findings"]] == ["UNRECORDED_VALUE"]
    code, out, _ = doctor_cli(root, "--json", "--fix")
    doc = json.loads(out)
    assert code == 0 and doc["consistent"] and doc["repairs"][0]["done"] and doc["after"]["findings"] == []
