"""Secrets in runs the scheduler daemon starts: a schedule and a trigger, each with an asset that succeeds (printing
and logging the secret read through ``notebook_orch.secret``) and one that fails with the secret in its message
(a final failure: the daemon hands it to the alert hook). Then the daemon's log, every project file (output
notebooks, manifests, values, the store and its WAL), every store table (runs, events, ticks, alerts, SLA rows), the
events' payloads, what the alert hook received and what ``nbo runs`` / ``nbo sla --alerts`` print are searched for
the value (also JSON-escaped and UTF-16): zero occurrences."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from _shared_helpers import wait_for
from nbformat.v4 import new_code_cell, new_notebook
from reliability_helpers import env, leaks, nbo, nbo_cmd, record_figure, store_of, store_rows

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

NAME = "NBO_DAEMON_SECRET"
SECRET = "pw-DAEMON-7f3a91c2-never-store"
READ = f"import logging\nimport notebook_orch\ntoken = notebook_orch.secret({NAME!r})\n"
DAYS = "daily:2024-01-01"
HOOK = """import pathlib, sys
pathlib.Path(sys.argv[1]).open("a").write(sys.stdin.read() + "\\n")
"""


def make_project(root: Path, hook_out: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    ok = READ + "print('using', token)\nlogging.getLogger('app').warning('token %s', token)\n"
    bad = READ + "raise PermissionError(f'login refused for {token}')\n"
    cells = [
        f"%%asset sched_ok --partitions {DAYS}\n{ok}sched_ok = {{'n': len(token), 'day': partition_key}}",
        f"%%asset sched_bad --partitions {DAYS}\n{bad}sched_bad = 1",
        f"%%asset src --partitions {DAYS}\nsrc = {{'day': partition_key}}",
        f"%%asset trig_ok --deps src --partitions {DAYS} --auto\n{ok}trig_ok = {{'n': len(token)}}",
        f"%%asset trig_bad --deps src --partitions {DAYS} --auto\n{bad}trig_bad = 1",
    ]
    for i, cell in enumerate(cells):  # one notebook each: each asset's run has its own outcome
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [new_code_cell("%load_ext notebook_orch"), new_code_cell(cell)]
        nbformat.write(nb, root / "notebooks" / f"nb{i}.ipynb")
    (root / "hook.py").write_text(HOOK)
    command = json.dumps([sys.executable, str(root / "hook.py"), str(hook_out)])
    (root / "pyproject.toml").write_text(
        f'[tool.notebook_orch]\nnotebooks = "notebooks"\nheartbeat_timeout = 120\nalert_command = {command}\n')
    return root


def statuses(root: Path) -> dict[str, list[str]]:
    store = store_of(root)
    try:
        out: dict[str, list[str]] = {}
        for r in store.list_runs(limit=1000):
            for a in r.assets:
                out.setdefault(a, []).append(r.status)
        return out
    finally:
        store.close()


def test_runs_the_daemon_starts_leave_the_secret_nowhere(tmp_path: Path) -> None:
    hook_out = tmp_path / "alerts.jsonl"
    root = make_project(tmp_path / "p", hook_out)
    from notebook_orch.project import Project

    with Project(root) as p:  # due at once: a per-minute schedule added three minutes ago, catch-up latest
        p.store.scheduling.add_schedule(name="nightly", cron="* * * * *", selection="sched_ok,sched_bad",
                                        catchup="latest", now=datetime.now(timezone.utc) - timedelta(minutes=3))
    log = tmp_path / "daemon.log"
    with open(log, "ab") as out:
        daemon = subprocess.Popen(nbo_cmd(root, "scheduler", "--interval", "0.2"), stdout=out, stderr=out,
                                  env=env(**{NAME: SECRET}))
    try:
        wait_for(lambda: "following the event log" in log.read_text(), timeout=120, what="the daemon to start")
        made = nbo(root, "materialize", "src", "--partition", "2024-01-02")
        assert made.returncode == 0, made.stdout + made.stderr

        def settled() -> bool:
            s = statuses(root)
            return all(s.get(a) for a in ("sched_ok", "sched_bad", "trig_ok", "trig_bad")) and not any(
                x == "RUNNING" for v in s.values() for x in v)

        wait_for(settled, timeout=400, every=0.5, what="the scheduled and triggered runs")
        wait_for(lambda: hook_out.exists() and len(hook_out.read_text().splitlines()) >= 2, timeout=60,
                 what="the final failures' alerts to reach the hook")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    s = statuses(root)
    assert s["sched_ok"][0] == "SUCCESS" and s["trig_ok"][0] == "SUCCESS", (s, log.read_text()[-3000:])
    assert s["sched_bad"][0] == "FAILED" and s["trig_bad"][0] == "FAILED", s
    store = store_of(root)
    try:
        runs = store.list_runs(limit=1000)
        events = store.events_after(0, limit=100_000)
    finally:
        store.close()
    kinds = {r.kind for r in runs}
    assert {"schedule", "trigger"} <= kinds, kinds
    refused = [r for r in runs if r.status == "FAILED"]
    assert all(f"login refused for <secret {NAME}>" in (r.error or "") for r in refused), [r.error for r in refused]

    printed = {"runs": nbo(root, "runs", "--json"), "alerts": nbo(root, "sla", "--alerts")}
    places: dict[str, str | bytes] = {"daemon log": log.read_bytes(), "alert hook stdin": hook_out.read_bytes()}
    files = [p for p in root.rglob("*") if p.is_file()]
    places.update({f"file {p.relative_to(root)}": p.read_bytes() for p in files})
    db = root / ".notebook_orch" / "store.db"
    tables = store_rows(db)
    places.update({f"table {t}": text for t, text in tables.items()})
    places.update({f"event {e.id}": json.dumps(e.payload, default=str) for e in events})
    places.update({f"run {r.run_id} error": r.error or "" for r in runs})
    places.update({f"nbo {k} {stream}": getattr(p, stream) for k, p in printed.items() for stream in ("stdout",
                                                                                                        "stderr")})
    assert leaks(places, SECRET) == [], leaks(places, SECRET)

    # What was searched, so an empty scan cannot pass.
    outputs = [r.output_path for r in runs if r.output_path]
    assert len(outputs) >= 4 and all(Path(o).is_file() for o in outputs), outputs
    assert "login refused for" in hook_out.read_text(), hook_out.read_text()  # the hook got the failures
    assert "scheduler started" in log.read_text() and len(events) > 10
    assert any("alert" in t for t in tables), sorted(tables)
    record_figure("secrets_daemon", places=len(places), files=len(files), tables=len(tables), events=len(events),
                  runs=len(runs), alerts=len(hook_out.read_text().splitlines()), occurrences=0)
