"""``nbo impact`` (and ``%nbo impact``) and ``nbo metrics`` over a real SQLite store whose history is written
directly with chosen times (no kernel: fast): medians from past runs, the SLA a delay would miss, trigger latency,
dependency wait, failure propagation depth, SLA hit rate."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from notebook_orch import Project
from notebook_orch.faces.cli import main
from notebook_orch.scheduler.sla_views import impact, metrics
from notebook_orch.scheduler.sla_watch import SlaWatch
from notebook_orch.store.records import ConsumedInput, NewMaterialization


def make_project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.cells = [
        new_code_cell("%%asset raw --partitions daily:2024-01-01\nraw = 1"),
        new_code_cell("%%asset other --partitions daily:2024-01-01\nother = 1"),
        new_code_cell("%%asset joined --deps raw,other --partitions daily:2024-01-01 --auto --sla 06:00\n"
                      "joined = raw + other"),
        new_code_cell("%%asset report --deps joined[all]\nreport = 1"),
    ]
    nbformat.write(nb, root / "notebooks" / "pipe.ipynb")
    return root


def write(p: Project, asset: str, key: str, *, start: datetime, seconds: float, kind: str = "manual") -> None:
    spec = p.graph.spec(asset)
    inputs = []
    for dep in spec.deps:
        m = p.store.latest_materialization(dep.asset, key)
        inputs.append(ConsumedInput(dep.asset, key, m.id, m.data_version, m.id))
    run = p.store.start_run(notebook="notebooks/pipe.ipynb", targets=[(asset, key)], kind=kind, now=start)
    p.store.finalize_success(run.run_id, [NewMaterialization(
        asset=asset, partition=key, data_version=f"{asset}{key}", code_version=spec.code_version,
        deps_signature=spec.deps_signature, inputs=tuple(inputs))], now=start + timedelta(seconds=seconds))


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Three days: raw lands at 00:20, other at 00:50, joined is triggered 2 s later and takes 5 minutes;
    on the fourth day joined fails (no retries). The SLA watch judged the four deadlines."""
    root = make_project(tmp_path / "p")
    with Project(root) as p:
        watch = SlaWatch(p)
        watch.run_once(datetime(2024, 1, 1, 12, tzinfo=timezone.utc))
        for day in (1, 2, 3, 4):
            key = f"2024-01-{day:02d}"
            t = datetime(2024, 1, day + 1, 0, 10)
            write(p, "raw", key, start=t, seconds=600)
            write(p, "other", key, start=t + timedelta(minutes=30), seconds=1200 if day == 2 else 600)
            ready = t + timedelta(minutes=40 if day != 2 else 50)
            if day < 4:
                write(p, "joined", key, start=ready + timedelta(seconds=2), seconds=300, kind="trigger")
            else:
                run = p.store.start_run(notebook="notebooks/pipe.ipynb", targets=[("joined", key)], kind="trigger",
                                        now=ready + timedelta(seconds=2))
                p.store.finalize_failure(run.run_id, error="KeyError: 'x'", now=ready + timedelta(seconds=30))
        watch.run_once(datetime(2024, 1, 5, 7, tzinfo=timezone.utc))
    return root


def test_metrics_from_the_store(history: Path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with Project(history) as p:
        m = metrics(p, since=timedelta(days=10), now=datetime(2024, 1, 6))
    assert m.runs == {"total": 12, "SUCCESS": 11, "FAILED": 1}
    assert m.runs_by_kind == {"manual": 8, "trigger": 4}
    # Trigger latency: 2 s after the last new input landed, for the three runs that consumed inputs.
    assert (m.trigger_latency_s.count, m.trigger_latency_s.p50, m.trigger_latency_s.max) == (3, 2.0, 2.0)
    # Blocked: raw landed at 00:20, other at 00:50 (01:00 on day 2): 30 min, 40 min.
    assert m.blocked_runs == 3
    assert (m.dependency_wait_s.p50, m.dependency_wait_s.max) == (1800.0, 2400.0)
    # joined[2024-01-04] failed for good: report (one level down, reading joined[all]) is not fresh.
    assert (m.final_failures, m.failure_depth.max) == (1, 1.0)
    assert (m.sla_met, m.sla_missed, m.sla_hit_rate) == (3, 1, 0.75)
    assert main(["-C", str(history), "metrics", "--since", "3650d", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sla_hit_rate"] == 0.75 and out["blocked_runs"] == 3 and out["trigger_latency_s"]["p50"] == 2.0
    assert main(["-C", str(history), "metrics", "--since", "3650d"]) == 0
    text = capsys.readouterr().out
    assert "SLA hit rate: 75.0 % (3 met, 1 missed)" in text
    assert "trigger latency (last new input landed -> run started): p50 2.00 s" in text
    assert "dependency wait: p50 30m" in text


def test_impact_of_a_delay_names_the_sla_it_breaks(history: Path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # tables and lines unfolded, whatever the terminal of the test run
    with Project(history) as p:
        now = datetime(2024, 1, 4, 0, 5)
        short = impact(p, "raw", partition="2024-01-03", delay=timedelta(hours=2), now=now)
        long = impact(p, "raw", partition="2024-01-03", delay=timedelta(hours=6), now=now)
    # raw[2024-01-03] is FRESH: a delay is a late re-delivery; joined takes its median 300 s after it.
    j = short.node("joined", "2024-01-03")
    assert j.done == now + timedelta(hours=2, seconds=300) and j.duration_s == 300.0 and j.has_history
    assert j.deadline == datetime(2024, 1, 4, 6) and not j.misses
    assert [(n.asset, n.partition) for n in short.downstream] == [("joined", "2024-01-03"), ("report", "unpartitioned")]
    assert short.sla_misses == ()
    assert [(n.asset, n.partition) for n in long.sla_misses] == [("joined", "2024-01-03")]
    assert long.critical_path() == (("raw", "2024-01-03"), ("joined", "2024-01-03"), ("report", "unpartitioned"))

    assert main(["-C", str(history), "impact", "raw", "--partition", "2024-01-03", "--delay", "2h", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == ["raw", "2024-01-03"] and out["delay_s"] == 7200
    assert [a["asset"] for a in out["affected"]] == ["joined", "report"]
    # From the CLI (the real clock): today's partition lands after midnight plus raw's median (10 min); joined
    # then takes 5 min, due at 06:00: a 2 h delay is absorbed, a day's delay breaks the SLA.
    today = datetime.now(timezone.utc).date().isoformat()
    assert main(["-C", str(history), "impact", "raw", "--partition", today, "--delay", "2h"]) == 0
    text = capsys.readouterr().out
    assert "no SLA would be missed because of this delay" in text and "slack 3h45m" in text
    assert main(["-C", str(history), "impact", "raw", "--partition", today, "--delay", "1d"]) == 0
    text = capsys.readouterr().out
    assert "SLAs this delay would miss (1)" in text and f"joined[{today}] --sla '06:00'" in text
    assert "(18h15m late)" in text
    assert f"critical path: raw[{today}] -> joined[{today}] -> report[unpartitioned]" in text


def test_impact_refuses_bad_input_naming_it(history: Path, capsys):
    assert main(["-C", str(history), "impact", "rwa"]) == 2
    err = capsys.readouterr().err
    assert "No asset named 'rwa'" in err and "Did you mean 'raw'" in err
    assert main(["-C", str(history), "impact", "raw", "--partition", "2024-13-01"]) == 2
    assert "2024-13-01" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["-C", str(history), "impact", "raw", "--delay", "two hours"])
    assert "--delay 'two hours' is not a duration" in capsys.readouterr().err


def test_the_magic_mirrors_the_cli(history: Path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    monkeypatch.delenv("NBO_PROJECT", raising=False)
    monkeypatch.setenv("JUPYTER_COLUMNS", "200")
    monkeypatch.chdir(history)
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    try:
        assert shell.run_cell("%load_ext notebook_orch").success
        with capture_output() as out:
            today = datetime.now(timezone.utc).date().isoformat()
            result = shell.run_cell(f"%nbo impact raw --partition {today} --delay 1d")
        assert result.success, result.error_in_exec
        assert "SLAs this delay would miss (1)" in out.stdout
        with capture_output():
            bad = shell.run_cell("%nbo impact raw --delay soon")
        assert not bad.success and type(bad.error_in_exec).__name__ == "UsageError"
        with capture_output() as out:
            assert shell.run_cell("%nbo metrics --since 3650d").success
        assert "SLA hit rate: 75.0 %" in out.stdout
    finally:
        shell.extension_manager.unload_extension("notebook_orch")
        InteractiveShell.clear_instance()
    assert os.getcwd() == str(history)
