"""Impact analysis, pure: affected partitions through every mapping, projected completions, critical path, and
which SLAs a delay makes miss (versus those missed anyway)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from notebook_orch.core.graph import build_graph
from notebook_orch.core.impact import median, project_impact
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.status import Status

LINES = [
    "raw --partitions daily:2024-01-01",
    "daily --deps raw --partitions daily:2024-01-01 --sla 03:00",
    "rolling --deps daily[-6:0] --partitions daily:2024-01-01",
    "monthly --deps daily --partitions monthly:2024-01 --sla '+2h'",
    "report --deps daily[all]",
    "other --partitions daily:2024-01-01",
]
NOW = datetime(2024, 1, 6, 0, 30)


def graph():
    return build_graph([parse_declaration(line) for line in LINES])


def run(source=("raw", "2024-01-05"), *, delay=timedelta(hours=2), status=None, durations=None, **kw):
    g = graph()
    specs = {n: g.spec(n) for n in g.names}
    durations = {"raw": 600.0, "daily": 1800.0, "rolling": 60.0, "monthly": 300.0} if durations is None else durations
    status = status or {}
    return project_impact(specs, g.order, source, delay=delay, now=NOW, durations=durations,
                          status_of=lambda a, k: status.get((a, k), Status.MISSING), **kw)


def test_every_mapping_reaches_its_partitions():
    report = run()
    got = {}
    for n in report.downstream:
        got.setdefault(n.asset, []).append(n.partition)
    assert got == {
        "daily": ["2024-01-05"],
        "rolling": [f"2024-01-{d:02d}" for d in range(5, 12)],  # each of the next 7 days reads 2024-01-05
        "monthly": ["2024-01"],
        "report": ["unpartitioned"],
    }
    assert "other" not in got
    assert [n.depth for n in report.nodes if n.asset in ("raw", "daily", "report")] == [0, 1, 2]


def test_projection_critical_path_and_sla_misses_caused_by_the_delay():
    report = run()
    src = report.node("raw", "2024-01-05")
    # MISSING: its window ended at 00:00, so it is due now + its median (10 min); the delay adds 2 h.
    assert (src.done_without_delay, src.done) == (datetime(2024, 1, 6, 0, 40), datetime(2024, 1, 6, 2, 40))
    daily = report.node("daily", "2024-01-05")
    assert (daily.done_without_delay, daily.done) == (datetime(2024, 1, 6, 1, 10), datetime(2024, 1, 6, 3, 10))
    assert daily.deadline == datetime(2024, 1, 6, 3, 0) and daily.misses and not daily.misses_anyway
    assert daily.slack_s == -600
    # The month's roll-up cannot start before January has ended: the delay does not move it, its SLA holds.
    monthly = report.node("monthly", "2024-01")
    assert monthly.done == monthly.done_without_delay == datetime(2024, 2, 1, 0, 5) and monthly.via is None
    assert not monthly.misses
    # report (no history) counts 0 s and is flagged.
    rep = report.node("report", "unpartitioned")
    assert rep.done == daily.done and not rep.has_history and rep.via == ("daily", "2024-01-05")
    assert [(n.asset, n.partition) for n in report.sla_misses] == [("daily", "2024-01-05")]
    assert report.missed_anyway == ()
    # The last completion the delay moves: rolling[2024-01-05] (its median 60 s after daily).
    assert report.critical_path() == (("raw", "2024-01-05"), ("daily", "2024-01-05"), ("rolling", "2024-01-05"))
    to_report = report.critical_path(("report", "unpartitioned"))
    assert to_report[-2:] == (("daily", "2024-01-05"), ("report", "unpartitioned"))


def test_a_miss_without_the_delay_is_told_apart():
    report = run(delay=timedelta(0), durations={"raw": 600.0, "daily": 4 * 3600.0})
    daily = report.node("daily", "2024-01-05")
    assert daily.misses and daily.misses_anyway and report.sla_misses == ()
    assert [(n.asset, n.partition) for n in report.missed_anyway] == [("daily", "2024-01-05")]


def test_a_fresh_source_is_redelivered_late_and_a_running_one_finishes_its_median():
    fresh = run(status={("raw", "2024-01-05"): Status.FRESH}).node("raw", "2024-01-05")
    assert (fresh.done_without_delay, fresh.done) == (NOW, NOW + timedelta(hours=2))
    since = {("raw", "2024-01-05"): NOW - timedelta(minutes=8)}
    running = run(status={("raw", "2024-01-05"): Status.RUNNING}, running_since=since).node("raw", "2024-01-05")
    assert running.done_without_delay == NOW + timedelta(minutes=2)


def test_an_input_not_affected_is_taken_as_ready_and_the_latest_affected_input_decides():
    # rolling[2024-01-11] reads daily 01-05..01-11; only 01-05 is affected, and its own window ends on 01-12.
    node = run().node("rolling", "2024-01-11")
    assert node.done == datetime(2024, 1, 12, 0, 1) and node.via is None
    early = run().node("rolling", "2024-01-05")
    assert early.done == datetime(2024, 1, 6, 3, 11) and early.via == ("daily", "2024-01-05")


def test_the_limit_guards_huge_fan_outs():
    with pytest.raises(ValueError, match="more than 3 partitions are downstream"):
        run(limit=3)


def test_median():
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5


def test_a_deadline_already_behind_us_is_history_not_a_projected_miss():
    g = graph()
    specs = {n: g.spec(n) for n in g.names}
    later = datetime(2024, 1, 9)
    report = project_impact(specs, g.order, ("raw", "2024-01-05"), delay=timedelta(hours=2), now=later,
                            durations={}, status_of=lambda a, k: Status.MISSING)
    daily = report.node("daily", "2024-01-05")
    assert daily.deadline_passed and not daily.misses and not daily.misses_anyway
    assert report.sla_misses == () and report.missed_anyway == ()
