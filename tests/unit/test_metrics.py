"""nbo metrics, pure: trigger latency, blocked runs and dependency wait, failure depth, SLA hit rate."""

from __future__ import annotations

from datetime import datetime, timedelta

from notebook_orch.core.metrics import Stats, TriggerSample, compute_metrics, quantile, stats

T = datetime(2024, 1, 2)


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def test_metrics():
    m = compute_metrics(
        since=T - timedelta(days=7), now=s(7200),
        runs=[("SUCCESS", "trigger"), ("SUCCESS", "trigger"), ("FAILED", "trigger"), ("SUCCESS", "schedule"),
              ("SUCCESS", "trigger")],
        triggers=[
            TriggerSample("r1", s(100.5), (s(100),)),  # one input: latency 0.5 s, not blocked
            TriggerSample("r2", s(1900), (s(100), s(1800))),  # waited 1700 s for the second input, latency 100 s
            TriggerSample("r3", s(50), ()),  # no new input (a retry): no sample
            TriggerSample("r4", s(3000), (s(2999), s(2999))),  # both together: not blocked
        ],
        pending_since=[s(3600), s(6000)],
        failure_depths=[0, 2, 1],
        verdicts=["MET", "MET", "MISSED", "MET"],
    )
    assert m.runs == {"total": 5, "SUCCESS": 4, "FAILED": 1}
    assert m.runs_by_kind == {"trigger": 4, "schedule": 1}
    assert (m.trigger_latency_s.count, m.trigger_latency_s.p50, m.trigger_latency_s.max) == (3, 1.0, 100.0)
    assert (m.blocked_runs, m.dependency_wait_s.max) == (1, 1700.0)
    assert (m.blocked_now, m.oldest_blocked_s) == (2, 3600.0)
    assert (m.final_failures, m.failure_depth.max, m.failure_depth.mean) == (3, 2.0, 1.0)
    assert (m.sla_met, m.sla_missed, m.sla_hit_rate) == (3, 1, 0.75)


def test_empty_window():
    m = compute_metrics(since=T, now=s(1), runs=[], triggers=[], pending_since=[], failure_depths=[], verdicts=[])
    assert m.sla_hit_rate is None and m.trigger_latency_s == Stats() and m.oldest_blocked_s is None


def test_nearest_rank_quantiles():
    values = [float(v) for v in range(1, 101)]
    assert (quantile(values, 0.5), quantile(values, 0.99), quantile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert stats([2.0]).p99 == 2.0
