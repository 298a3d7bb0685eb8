"""The AND join, --trigger expressions and incremental evaluation, over declarations only (no store)."""

from datetime import datetime

import pytest

from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.status import Status
from notebook_orch.core.triggers import (
    And,
    Name,
    Or,
    TriggerError,
    evaluate,
    evaluate_joins,
    join_inputs,
    parse_trigger,
    reached_joins,
    trigger_conditions,
)

NOW = datetime(2024, 3, 4, 12)  # partitions of 2024-03-01..03 exist (ended); March has not ended


def specs(*lines):
    out = {}
    for line in lines:
        s = parse_declaration(line)
        out[s.name] = s
    return out


PROJECT = specs(
    "a --partitions daily:2024-01-01",
    "b --partitions daily:2024-01-01",
    "c --partitions daily:2024-01-01",
    "joined --deps a,b --partitions daily:2024-01-01 --auto",
    "weekly_sum --deps a[-6:0] --partitions daily:2024-01-01 --auto",
    "prev --deps a[-1] --partitions daily:2024-01-01",
    "month --deps a --partitions monthly:2024-01-01 --auto",
)


def test_parse_precedence_and_parentheses():
    assert parse_trigger("a & b | c", asset="x") == Or((And((Name("a"), Name("b"))), Name("c")))
    assert parse_trigger("a & (b | c)", asset="x") == And((Name("a"), Or((Name("b"), Name("c")))))
    assert parse_trigger(" a ", asset="x") == Name("a")


@pytest.mark.parametrize(("text", "why"), [
    ("a &", "an asset name or '\\(' is missing"),
    ("(a | b", "'\\)' is missing"),
    ("a b", "unexpected 'b'"),
    ("a && b", "'&' needs an asset name"),
    ("__import__('os')", "\"'\" at position 11"),
    ("a + b", "'\\+' at position 2"),
    ("", "empty"),
])
def test_malformed_expressions_name_the_asset(text, why):
    with pytest.raises(TriggerError, match=f"Asset 'report'.*{why}"):
        parse_trigger(text, asset="report")


def test_unknown_name_is_refused_with_close_match():
    with pytest.raises(TriggerError, match="'sales_rw', which is not among its dependencies.*sales_raw"):
        parse_trigger("sales_rw & b", asset="report", known=["sales_raw", "b"])


def test_evaluate():
    expr = parse_trigger("a & (b | c)", asset="x")
    assert evaluate(expr, {"a", "c"}.__contains__) is True
    assert evaluate(expr, {"b", "c"}.__contains__) is False
    assert evaluate(expr, {"a"}.__contains__) is False


def test_join_inputs_respect_windows_offsets_and_rollups():
    assert join_inputs(PROJECT, "joined", "2024-03-02", now=NOW) == {"a": ["2024-03-02"], "b": ["2024-03-02"]}
    assert join_inputs(PROJECT, "weekly_sum", "2024-03-02", now=NOW) == {
        "a": [f"2024-02-{d}" for d in (25, 26, 27, 28, 29)] + ["2024-03-01", "2024-03-02"]}
    assert join_inputs(PROJECT, "prev", "2024-03-02", now=NOW) == {"a": ["2024-03-01"]}
    feb = join_inputs(PROJECT, "month", "2024-02", now=NOW)["a"]
    assert len(feb) == 29 and feb[0] == "2024-02-01" and feb[-1] == "2024-02-29"
    assert join_inputs(PROJECT, "month", "2024-03", now=NOW) == {}  # March has not ended: no such partition yet


def test_reached_joins_only_automated_and_only_readers():
    reached = reached_joins(PROJECT, [("a", "2024-02-29")], now=NOW, automated=lambda n: PROJECT[n].auto)
    assert reached == [("joined", "2024-02-29"), ("weekly_sum", "2024-02-29"), ("weekly_sum", "2024-03-01"),
                       ("weekly_sum", "2024-03-02"), ("weekly_sum", "2024-03-03"), ("month", "2024-02")]
    assert all(a != "prev" for a, _ in reached)  # not --auto: never started by a trigger
    assert reached_joins(PROJECT, [("c", "2024-03-01")], now=NOW, automated=lambda n: PROJECT[n].auto) == []


def statuses(fresh, own=Status.MISSING):
    return lambda a, k: Status.FRESH if (a, k) in fresh else (own if a in ("joined", "month") else Status.MISSING)


def test_and_join_waits_for_both_then_starts_once():
    no = lambda a, k: False  # noqa: E731
    one = evaluate_joins(PROJECT, [("joined", "2024-03-02")], status_of=statuses({("a", "2024-03-02")}),
                         running=no, now=NOW)
    assert one.start == () and one.waiting[0].waiting_on == (("b", "2024-03-02"),)
    both = {("a", "2024-03-02"), ("b", "2024-03-02")}
    assert evaluate_joins(PROJECT, [("joined", "2024-03-02")], status_of=statuses(both), running=no,
                          now=NOW).start == (("joined", "2024-03-02"),)
    busy = evaluate_joins(PROJECT, [("joined", "2024-03-02")], status_of=statuses(both),
                          running=lambda a, k: True, now=NOW)
    assert busy.start == () and busy.waiting[0].reason == "a run of this partition is going"
    done = evaluate_joins(PROJECT, [("joined", "2024-03-02")], status_of=statuses(both, own=Status.FRESH),
                          running=no, now=NOW)
    assert done.start == () and done.dropped[0].reason == "already FRESH"


def test_rollup_waits_for_every_day_of_its_month():
    days = {("a", f"2024-02-{d:02d}") for d in range(1, 30)}
    no = lambda a, k: False  # noqa: E731
    partial = evaluate_joins(PROJECT, [("month", "2024-02")], status_of=statuses(days - {("a", "2024-02-17")}),
                             running=no, now=NOW)
    assert partial.start == () and partial.waiting[0].waiting_on == (("a", "2024-02-17"),)
    assert evaluate_joins(PROJECT, [("month", "2024-02")], status_of=statuses(days), running=no,
                          now=NOW).start == (("month", "2024-02"),)


def test_trigger_expression_overrides_the_and_join():
    expr = parse_trigger("a | b", asset="joined", known=["a", "b"])
    plan = evaluate_joins(PROJECT, [("joined", "2024-03-02")], status_of=statuses({("b", "2024-03-02")}),
                          running=lambda a, k: False, now=NOW, conditions={"joined": expr})
    assert plan.start == (("joined", "2024-03-02"),)


def test_bounded_pass_defers_the_rest_unchanged():
    joins = [("joined", f"2024-02-{d:02d}") for d in range(1, 11)]
    plan = evaluate_joins(PROJECT, joins, status_of=statuses(set()), running=lambda a, k: False, now=NOW, limit=4)
    assert len(plan.waiting) == 4 and plan.deferred == tuple(joins[4:])


def test_declared_trigger_is_evaluated_per_partition():
    project = {**PROJECT, **specs("either --deps a,b,c --partitions daily:2024-01-01 --trigger 'a & (b | c)'")}
    conditions = trigger_conditions(project)
    assert conditions == {"either": And((Name("a"), Or((Name("b"), Name("c")))))}
    fresh = {("a", "2024-03-01"), ("c", "2024-03-01"), ("a", "2024-03-02"), ("b", "2024-03-03")}
    joins = [("either", f"2024-03-0{d}") for d in (1, 2, 3)]
    plan = evaluate_joins(project, joins, status_of=statuses(fresh), running=lambda a, k: False, now=NOW,
                          conditions=conditions)
    assert plan.start == (("either", "2024-03-01"),)  # a & c; 03-02 lacks b and c; 03-03 lacks a
    assert [(d.partition, d.waiting_on) for d in plan.waiting] == [
        ("2024-03-02", (("b", "2024-03-02"), ("c", "2024-03-02"))),
        ("2024-03-03", (("a", "2024-03-03"), ("c", "2024-03-03")))]
