"""The daemon's SLA duty with an injected clock on a real SQLite store (store writes directly, no kernel: fast):
verdicts once, misses as events and alerts, the hook gets JSON on stdin, failures after the last retry alert."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.scheduler.sla_watch import SlaWatch
from notebook_orch.store.records import ConsumedInput, NewMaterialization
from notebook_orch.store.sla import EV_SLA_MISSED

HOOK = "import sys, pathlib; pathlib.Path(sys.argv[1]).open('a').write(sys.stdin.read())"


def make_project(root: Path, *, hook: Path | None = None, retries: int = 1) -> Path:
    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.cells = [
        new_code_cell("%%asset raw --partitions daily:2024-01-01\nraw = 1"),
        new_code_cell(f"%%asset daily --deps raw --partitions daily:2024-01-01 --retries {retries} "
                      "--sla '06:00 Europe/Berlin' --owner ana\ndaily = raw"),
    ]
    nbformat.write(nb, root / "notebooks" / "pipe.ipynb")
    if hook is not None:
        command = json.dumps([sys.executable, "-c", HOOK, str(hook)])
        (root / "pyproject.toml").write_text(f"[tool.notebook_orch]\nalert_command = {command}\n")
    return root


def write(p: Project, asset: str, key: str, *, at: datetime) -> None:
    inputs = []
    for dep in p.graph.spec(asset).deps:  # identity mappings: the same key upstream, consumed as it is now
        m = p.store.latest_materialization(dep.asset, key)
        inputs.append(ConsumedInput(dep.asset, key, m.id, m.data_version, m.id))
    spec = p.graph.spec(asset)
    run = p.store.start_run(notebook="notebooks/pipe.ipynb", targets=[(asset, key)], kind="manual", now=at)
    p.store.finalize_success(run.run_id, [NewMaterialization(
        asset=asset, partition=key, data_version=f"{asset}{key}", code_version=spec.code_version,
        deps_signature=spec.deps_signature, inputs=tuple(inputs))], now=at)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_misses_are_recorded_once_as_events_and_reach_the_hook(tmp_path: Path):
    hook = tmp_path / "alerts.jsonl"
    root = make_project(tmp_path / "p", hook=hook)
    with Project(root) as p:
        watch = SlaWatch(p)
        # First sight of the SLA (2024-01-04 12:00): nothing before it is judged, however old.
        assert watch.run_once(utc(2024, 1, 4, 12)).judged == 0
        write(p, "raw", "2024-01-04", at=datetime(2024, 1, 5, 1))
        write(p, "daily", "2024-01-04", at=datetime(2024, 1, 5, 2))  # before 06:00 Berlin (05:00 UTC)
        write(p, "raw", "2024-01-05", at=datetime(2024, 1, 6, 1))  # daily[2024-01-05] never comes
        r = watch.run_once(utc(2024, 1, 5, 4, 59))
        assert r.judged == 0  # the first deadline (2024-01-05 05:00 UTC) has not passed
        r = watch.run_once(utc(2024, 1, 6, 5, 0, 1))
        assert r.judged == 2 and r.missed == [("daily", "2024-01-05")] and r.sent == 1
        again = watch.run_once(utc(2024, 1, 6, 5, 1))
        assert (again.judged, again.missed, again.sent) == (0, [], 0)
        # A second watcher (another daemon, or a restart) sees the watermark and records nothing twice.
        assert SlaWatch(p).run_once(utc(2024, 1, 6, 5, 2)).judged == 0

        verdicts = {(v.partition, v.verdict, v.reason) for v in p.store.sla.verdicts(asset="daily")}
        assert verdicts == {("2024-01-04", "MET", ""), ("2024-01-05", "MISSED", "MISSING")}
        events = [e for e in p.store.events_after(0, limit=100) if e.kind == EV_SLA_MISSED]
        assert [(e.asset, e.partition) for e in events] == [("daily", "2024-01-05")]
        sent = [json.loads(line) for line in hook.read_text().splitlines()]
        assert len(sent) == 1
        assert {k: sent[0][k] for k in ("kind", "asset", "partition", "sla", "deadline", "status", "reason",
                                        "owner")} == {
            "kind": "SLA_MISSED", "asset": "daily", "partition": "2024-01-05", "sla": "06:00 Europe/Berlin",
            "deadline": "2024-01-06T05:00:00+00:00", "status": "MISSING", "reason": "MISSING", "owner": "ana"}
        assert sent[0]["detected_at"] == "2024-01-06T05:00:01+00:00"
        assert [a.state for a in p.store.sla.alerts()] == ["SENT"]


def test_changing_the_sla_restarts_the_watch_and_a_failing_hook_is_retried_then_given_up(tmp_path: Path):
    root = make_project(tmp_path / "p")
    (root / "pyproject.toml").write_text(
        f"[tool.notebook_orch]\nalert_command = {json.dumps([sys.executable, '-c', 'import sys; sys.exit(3)'])}\n")
    with Project(root) as p:
        watch = SlaWatch(p)
        watch.run_once(utc(2024, 1, 4, 12))
        r = watch.run_once(utc(2024, 1, 6, 12))
        assert r.missed == [("daily", "2024-01-04"), ("daily", "2024-01-05")] and r.hook_errors == 2
        watch.run_once(utc(2024, 1, 6, 12, 1))
        watch.run_once(utc(2024, 1, 6, 12, 2))
        states = [(a.state, a.attempts) for a in p.store.sla.alerts()]
        assert states == [("FAILED", 3), ("FAILED", 3)]
        assert "exit code 3" in p.store.sla.alerts()[0].last_error
        assert watch.run_once(utc(2024, 1, 6, 12, 3)).hook_errors == 0  # given up: not retried forever


def test_a_failure_after_the_last_retry_alerts_and_an_earlier_attempt_does_not(tmp_path: Path):
    hook = tmp_path / "alerts.jsonl"
    root = make_project(tmp_path / "p", hook=hook, retries=1)
    with Project(root) as p:
        watch = SlaWatch(p)
        watch.run_once(utc(2024, 1, 4, 12))  # starts following the event log here
        for attempt in (1, 2):
            run = p.store.start_run(notebook="notebooks/pipe.ipynb", targets=[("daily", "2024-01-03")],
                                    kind="trigger", attempt=attempt)
            p.store.finalize_failure(run.run_id, error=f"ValueError: boom {attempt}\ntraceback")
        interactive = p.store.start_run(notebook=None, targets=[("raw", "2024-01-03")], kind="interactive")
        p.store.finalize_failure(interactive.run_id, error="NameError: x")
        r = watch.run_once(utc(2024, 1, 4, 12, 1))
        assert (r.failures, r.sent) == (1, 1)
        sent = [json.loads(line) for line in hook.read_text().splitlines()]
        assert [(s["kind"], s["assets"], s["partitions"], s["attempt"], s["retries"], s["error"]) for s in sent] == [
            ("RUN_FAILED", ["daily"], ["2024-01-03"], 2, 1, "ValueError: boom 2")]
        assert SlaWatch(p).run_once(utc(2024, 1, 4, 12, 2)).failures == 0  # the cursor was saved with it


def test_without_a_hook_alerts_are_kept_as_no_hook_and_status_and_sla_show_the_miss(tmp_path: Path, capsys):
    from notebook_orch.faces.cli import main

    root = make_project(tmp_path / "p")
    with Project(root) as p:
        watch = SlaWatch(p)
        watch.run_once(utc(2024, 1, 4, 12))
        watch.run_once(utc(2024, 1, 5, 12))
        assert [a.state for a in p.store.sla.alerts()] == ["NO_HOOK"]
    assert main(["-C", str(root), "status", "--json"]) == 0
    rows = {r["asset"]: r for r in json.loads(capsys.readouterr().out)["assets"]}
    assert rows["daily"]["sla"] == {"sla": "06:00 Europe/Berlin", "met": 0, "missed": 1}
    assert rows["raw"]["sla"] is None
    assert main(["-C", str(root), "status"]) == 0
    assert "SLA misses: daily 1 of 1" in capsys.readouterr().out
    assert main(["-C", str(root), "sla", "--json", "--since", "1100d"]) == 0
    rows = json.loads(capsys.readouterr().out)["partitions"]
    recorded = [r for r in rows if r["recorded"]]
    assert [(r["partition"], r["verdict"], r["reason"]) for r in recorded] == [("2024-01-04", "MISSED", "MISSING")]
    unjudged = [r for r in rows if not r["recorded"] and r["verdict"] == "MISSED"]
    assert unjudged and all(r["reason"] == "MISSING" for r in unjudged)  # deadlines no daemon saw
    assert [r for r in rows if r["verdict"] == "OPEN"][0]["at_risk"] is True
    assert main(["-C", str(root), "sla", "--alerts"]) == 0
    assert "NO_HOOK  SLA_MISSED  daily[2024-01-04] was MISSING" in capsys.readouterr().out


def test_the_widget_panel_shows_the_recorded_misses(tmp_path: Path):
    from notebook_orch.widgets import LineageGraph
    from notebook_orch.widgets._panel_html import panel_html

    root = make_project(tmp_path / "p")
    with Project(root) as p:
        watch = SlaWatch(p)
        watch.run_once(utc(2024, 1, 4, 12))
        write(p, "raw", "2024-01-04", at=datetime(2024, 1, 5, 1))
        write(p, "daily", "2024-01-04", at=datetime(2024, 1, 5, 2))
        watch.run_once(utc(2024, 1, 6, 12))  # 2024-01-04 met, 2024-01-05 missed
        g = LineageGraph(p, live=False)
        view = g.panel_view("daily")
        assert view["sla"] == "06:00 Europe/Berlin"
        assert view["sla_record"] == {"text": "06:00 Europe/Berlin", "met": 1, "missed": 1, "last_missed": {
            "partition": "2024-01-05", "reason": "MISSING", "deadline": "2024-01-06 05:00"}}
        assert "met 1, missed 1" in panel_html(view)
        assert g.panel_view("raw")["sla_record"] is None


def test_a_slow_hook_spreads_delivery_over_passes(tmp_path: Path, monkeypatch):
    import notebook_orch.scheduler.sla_watch as sla_watch

    monkeypatch.setattr(sla_watch, "DELIVERY_BUDGET_S", 0.05)
    hook = tmp_path / "alerts.jsonl"
    root = make_project(tmp_path / "p")
    slow = "import sys, time, pathlib; time.sleep(0.2); pathlib.Path(sys.argv[1]).open('a').write(sys.stdin.read())"
    (root / "pyproject.toml").write_text(
        f"[tool.notebook_orch]\nalert_command = {json.dumps([sys.executable, '-c', slow, str(hook)])}\n")
    with Project(root) as p:
        watch = SlaWatch(p)
        watch.run_once(utc(2024, 1, 4, 12))
        first = watch.run_once(utc(2024, 1, 6, 12))
        assert len(first.missed) == 2 and first.sent == 1  # the budget was spent on the first alert
        assert watch.run_once(utc(2024, 1, 6, 12, 1)).sent == 1
        assert [json.loads(line)["partition"] for line in hook.read_text().splitlines()] == ["2024-01-04",
                                                                                            "2024-01-05"]
