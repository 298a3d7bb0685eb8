"""The real daemon process: an SLA deadline passes while it runs, the miss is recorded once as an event and the
alert hook (a script writing its stdin to a file) receives the right JSON. No kernel starts: nothing is --auto."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sched_helpers import daemon

from notebook_orch import Project
from notebook_orch.store.sla import EV_SLA_MISSED

pytestmark = pytest.mark.slow

HOOK = """import json, pathlib, sys
payload = json.loads(sys.stdin.read())
pathlib.Path(sys.argv[1]).open("a").write(json.dumps(payload) + "\\n")
"""


def test_an_sla_miss_reaches_the_alert_hook_with_the_right_json(tmp_path: Path):
    root = tmp_path / "p"
    (root / "notebooks").mkdir(parents=True)
    # The hourly partition that ended at the top of this hour gets a deadline 3 s from now.
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    hour = now.replace(minute=0, second=0, microsecond=0)
    key = (hour - timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    offset = int((now - hour).total_seconds()) + 3
    nb = new_notebook()
    nb.cells = [new_code_cell(f"%%asset hourly --partitions hourly:{key} --sla '+{offset}s' --owner ops\n"
                              "hourly = 1")]
    nbformat.write(nb, root / "notebooks" / "h.ipynb")
    (tmp_path / "hook.py").write_text(HOOK)
    received = tmp_path / "received.jsonl"
    command = json.dumps([sys.executable, str(tmp_path / "hook.py"), str(received)])
    (root / "pyproject.toml").write_text(f"[tool.notebook_orch]\nalert_command = {command}\n")
    with Project(root) as p:
        # As if a daemon had been watching this SLA already: the deadline is judged however late this one starts
        # on a loaded machine (a daemon that first sees an SLA after a deadline does not judge that deadline).
        p.store.sla.start_watch("hourly", f"+{offset}s", now=now)
    log = tmp_path / "daemon.log"
    proc = daemon(root, log=log)
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end and not received.exists():
            time.sleep(0.2)
        time.sleep(1.0)  # a few more passes: the miss must not be sent twice
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert received.exists(), log.read_text()
    lines = received.read_text().splitlines()
    assert len(lines) == 1, lines
    payload = json.loads(lines[0])
    deadline = hour + timedelta(seconds=offset)
    assert {k: payload[k] for k in ("kind", "asset", "partition", "sla", "deadline", "status", "reason", "owner",
                                    "materialized_at")} == {
        "kind": "SLA_MISSED", "asset": "hourly", "partition": key, "sla": f"+{offset}s",
        "deadline": deadline.replace(tzinfo=timezone.utc).isoformat(), "status": "MISSING", "reason": "MISSING",
        "owner": "ops", "materialized_at": None}
    detected = datetime.fromisoformat(payload["detected_at"]).replace(tzinfo=None)
    assert deadline <= detected < deadline + timedelta(seconds=120)
    assert payload["project"] == str(root.resolve())
    with Project(root) as p:
        events = [e for e in p.store.events_after(0, limit=1000) if e.kind == EV_SLA_MISSED]
        assert [(e.asset, e.partition) for e in events] == [("hourly", key)]
        assert [a.state for a in p.store.sla.alerts()] == ["SENT"]
    assert "SLA missed: hourly[" in log.read_text()
